"""Golden outputs of `bastion analyze`, one case per finding: each `<case>.in.yaml` holds the
objects (certificates made at test time, see `tests/golden/cases.py`) and the instant analysed
at (`options.now`); `<case>.out.txt` holds what `analyze` prints."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from bastion.analysis import analyze
from bastion.build import Inputs, build
from bastion.cli.analyze import log_lines, report
from bastion.translate.istio import Options, Workload
from tests.golden.cases import objects

CASES = Path(__file__).parent / "analyze"


def render(case: dict[str, Any]) -> str:
    from bastion.api.admission import admit_all

    options = case.get("options", {})
    models, refused = admit_all(objects(case))
    inputs = Inputs.of(models)
    workload = Workload(namespace=options.get("gatewayNamespace", "istio-system"))
    result = build(None, inputs, 0, [workload], Options())
    now = dt.datetime.fromisoformat(options.get("now", "2026-06-01T00:00:00+00:00"))
    found = [d.to_dict() for d in analyze(inputs.resources, result, now)]
    return "\n".join(log_lines(report(refused, found), "the files")) + "\n"


def case_files() -> list[Path]:
    return sorted(CASES.glob("*.in.yaml"))


@pytest.mark.parametrize("path", case_files(), ids=lambda p: p.name.removesuffix(".in.yaml"))
def test_golden(path: Path, update_goldens: bool) -> None:
    case = yaml.safe_load(path.read_text())
    out = path.with_name(path.name.replace(".in.yaml", ".out.txt"))
    rendered = render(case)
    for fragment in case["expect"]:  # what the case is there to show, whatever the golden says
        assert fragment in rendered, fragment
    if update_goldens:
        out.write_text(rendered)
        return
    assert out.exists(), f"missing golden {out.name}: run pytest --update-goldens"
    assert rendered == out.read_text()


def test_goldens_hold_no_private_key() -> None:
    for out in CASES.glob("*.out.txt"):
        assert "PRIVATE KEY" not in out.read_text(), out.name
