"""Golden files for the Istio -> IR -> xDS seams, through the one build and the Envoy driver:
each `<case>.in.yaml` holds the Istio objects (and per-case options); `<case>.out.yaml` holds
the diagnostics, the IR, and the Envoy resources.

Certificates are generated at test time (`tests/golden/cases.py`). Goldens describe
certificates by subject and serial and never contain a private key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bastion.dataplane.envoy.driver import render as render_snapshot
from bastion.dataplane.envoy.snapshot import consistency_problems
from bastion.memo import Memo
from tests.golden.cases import case_build
from tests.golden.render import check_golden, ir_to_data, snapshot_to_data

CASES = Path(__file__).parent / "translate"


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
