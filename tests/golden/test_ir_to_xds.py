"""Golden files for the Envoy driver alone: hand-written IR (`tests/golden/ir/<case>.in.yaml`)
to the xDS snapshot it renders (`<case>.out.yaml`), checked for consistency. The IR is what any
config source produces, so these cases pin the seam without going through Istio's objects.

Certificates are generated at test time from the case's `certificates:` section (values
`@cert:NAME`, `@key:NAME`, `@ca:ROOT`), and print by subject and serial; keys as [redacted]."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bastion.build import GatewayBuild
from bastion.dataplane.envoy.driver import render
from bastion.dataplane.envoy.dump import snapshot_to_data
from bastion.dataplane.envoy.snapshot import consistency_problems
from bastion.ir.model import GatewayConfig
from bastion.ir.workload import Workload
from bastion.memo import Memo
from bastion.translate.istio import IrResult
from tests.golden.cases import materialise
from tests.golden.ir_loader import load
from tests.golden.render import check_golden

CASES = Path(__file__).parent / "ir"


def _placeholders(value: Any, specs: dict[str, dict[str, Any]]) -> Any:
    if isinstance(value, dict):
        return {k: _placeholders(v, specs) for k, v in value.items()}
    if isinstance(value, list):
        return [_placeholders(v, specs) for v in value]
    if isinstance(value, str) and value.startswith("@"):
        return materialise(value, specs)
    return value


def config_of(case: dict[str, Any]) -> GatewayConfig:
    data = _placeholders(case["ir"], case.get("certificates", {}))
    config = load(GatewayConfig, data)
    assert isinstance(config, GatewayConfig)
    return config


def render_case(case: dict[str, Any]) -> str:
    gateway = GatewayBuild(Workload(), IrResult(config_of(case), ()))
    snapshot = render(None, gateway, 0, Memo())
    doc = {"consistency": consistency_problems(snapshot), "xds": snapshot_to_data(snapshot)}
    return yaml.safe_dump(doc, sort_keys=True, default_flow_style=False, width=100)


def case_files() -> list[Path]:
    return sorted(CASES.glob("*.in.yaml"))


@pytest.mark.parametrize("path", case_files(), ids=lambda p: p.name.removesuffix(".in.yaml"))
def test_golden(path: Path, update_goldens: bool) -> None:
    check_golden(path, render_case, update_goldens)


def test_cases_exist_and_hold_no_private_key() -> None:
    assert len(case_files()) >= 3
    for out in CASES.glob("*.out.yaml"):
        assert "PRIVATE KEY" not in out.read_text(), out.name
