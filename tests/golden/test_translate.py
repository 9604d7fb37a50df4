"""Golden files for the Istio -> IR -> xDS seams, through the one build and the Envoy driver:
each `<case>.in.yaml` holds the Istio objects (and per-case options); `<case>.out.yaml` holds
the diagnostics, the IR, and the Envoy resources.

Certificates are generated at test time: a Secret value `@cert:NAME`, `@key:NAME` or `@ca:ROOT`
is replaced by fresh PEM for the leaf or root named in the case's `certificates:` section. Goldens
describe certificates by subject and serial and never contain a private key.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from bastion.api.admission import admit_all
from bastion.build import GatewayBuild, Inputs, build
from bastion.dataplane.envoy.driver import render as render_snapshot
from bastion.dataplane.envoy.snapshot import consistency_problems
from bastion.memo import Memo
from bastion.translate.istio import Options, Workload
from tests import certs
from tests.golden.render import PLACEHOLDER, check_golden, ir_to_data, snapshot_to_data

CASES = Path(__file__).parent / "translate"


def _materialise(value: str, specs: dict[str, dict[str, Any]]) -> bytes:
    match = PLACEHOLDER.match(value)
    if not match:
        return value.encode()
    what, name = match.groups()
    if what == "ca":
        return certs.ca(name, specs.get(name, {}).get("kind", "rsa"))[0].cert
    spec = specs[name]
    pair = certs.leaf(spec["cn"], spec.get("serial", 1), spec.get("root", "root1"),
                      spec.get("kind", "rsa"))
    if what == "key":
        return pair.key
    if what == "chain":
        return pair.cert + certs.ca(spec.get("root", "root1"))[0].cert
    return pair.cert


def _objects(case: dict[str, Any]) -> list[Any]:
    specs = case.get("certificates", {})
    out = []
    for obj in case["resources"]:
        if obj.get("kind") == "Secret" and "stringData" in obj:
            data = {k: base64.b64encode(_materialise(v, specs)).decode()
                    for k, v in obj.pop("stringData").items()}
            obj = {**obj, "data": {**obj.get("data", {}), **data}}
        out.append(obj)
    return out


def case_build(case: dict[str, Any], bind_address: str | None = None
               ) -> tuple[GatewayBuild, list[str]]:
    """The build of a case with its options (`gatewayNamespace`, `bindAddress`, `portMap`,
    `http3`), and the objects admission refused."""
    options = case.get("options", {})
    models, refused = admit_all(_objects(case))
    workload = Workload(namespace=options.get("gatewayNamespace", "istio-system"))
    port_map = tuple(sorted((int(k), int(v)) for k, v in options.get("portMap", {}).items()))
    gateway = build(None, Inputs.of(models), 0, [workload], Options(
        bind_address=bind_address or options.get("bindAddress", "0.0.0.0"), port_map=port_map,
        http3=bool(options.get("http3")))).gateways[workload]
    return gateway, refused


def render(case: dict[str, Any]) -> str:
    gateway, refused = case_build(case)
    result = gateway.ir
    snapshot = render_snapshot(None, gateway, 0, Memo())
    doc = {
        "refused": refused,
        "diagnostics": [str(d) + f" [{d.severity}]" for d in result.diagnostics],
        "consistency": consistency_problems(snapshot),
        "ir": ir_to_data(result.config),
        "xds": snapshot_to_data(snapshot),
    }
    return yaml.safe_dump(doc, sort_keys=True, default_flow_style=False, width=100)


def case_files() -> list[Path]:
    return sorted(CASES.glob("*.in.yaml"))


@pytest.mark.parametrize("path", case_files(), ids=lambda p: p.name.removesuffix(".in.yaml"))
def test_golden(path: Path, update_goldens: bool) -> None:
    check_golden(path, render, update_goldens)


def test_no_orphan_goldens(update_goldens: bool) -> None:
    inputs = {p.name.removesuffix(".in.yaml") for p in case_files()}
    for out in CASES.glob("*.out.yaml"):
        if out.name.removesuffix(".out.yaml") not in inputs:
            if update_goldens:
                out.unlink()
            else:
                pytest.fail(f"orphan golden {out.name}")


def test_goldens_hold_no_private_key() -> None:
    for out in CASES.glob("*.out.yaml"):
        assert "PRIVATE KEY" not in out.read_text(), out.name
