"""Golden files for the Gateway API: each `<case>.in.yaml` holds Gateway API objects (and any
Istio and core objects beside them); `<case>.out.yaml` holds the Istio objects they convert to,
the findings of the build, and the status written for each Gateway and HTTPRoute. Each case
names the fragments it is there to show (`expect`), checked whatever the golden says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bastion.api.admission import admit_all
from bastion.api.base import dump
from bastion.build import Inputs
from bastion.translate.gatewayapi import converted
from bastion.translate.gatewayapi.status import gateway_status, route_status
from tests.golden.cases import case_build, objects

CASES = Path(__file__).parent / "gatewayapi"


def render(case: dict[str, Any]) -> str:
    gateway, refused = case_build(case)
    models, _ = admit_all(objects(case))
    res = Inputs.of(models).resources
    made = converted(res)
    configs = [gateway.ir.config]
    doc = {
        "refused": refused,
        "istio": [dump(m, by_alias=True, exclude_defaults=True, mode="json")
                  for m in (*made.gateways, *made.virtual_services)],
        "diagnostics": [str(d) + f" [{d.severity}]" for d in gateway.ir.diagnostics],
        "gateways": {f"{ns}/{name}": gateway_status(res, (ns, name), configs,
                                                    gateway.ir.diagnostics, "127.0.0.1")
                     for ns, name in sorted(res.gtw_gateways)},
        "routes": {f"{kind} {ns}/{name}": route_status(res, (ns, name), kind)
                   for kind, routes in (("HTTPRoute", res.http_routes),
                                        ("TLSRoute", res.tls_routes))
                   for ns, name in sorted(routes)},
    }
    return yaml.safe_dump(doc, sort_keys=True, default_flow_style=False, width=100)


def case_files() -> list[Path]:
    return sorted(CASES.glob("*.in.yaml"))


@pytest.mark.parametrize("path", case_files(), ids=lambda p: p.name.removesuffix(".in.yaml"))
def test_golden(path: Path, update_goldens: bool) -> None:
    case = yaml.safe_load(path.read_text())
    out = path.with_name(path.name.replace(".in.yaml", ".out.yaml"))
    rendered = render(case)
    for fragment in case["expect"]:
        assert fragment in rendered, fragment
    if update_goldens:
        out.write_text(rendered)
        return
    assert out.exists(), f"missing golden {out.name}: run pytest --update-goldens"
    assert rendered == out.read_text()
