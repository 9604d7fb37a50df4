"""Golden-file helpers: the dump views come from the package (`bastion translate` prints the
same); test cases name generated certificates with placeholders."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bastion.dataplane.envoy.dump import snapshot_to_data
from bastion.translate.dump import ir_to_data

PLACEHOLDER = re.compile(r"^@(cert|key|ca|chain):(.+)$")

__all__ = ["PLACEHOLDER", "check_golden", "ir_to_data", "snapshot_to_data"]


def check_golden(path: Path, render: Callable[[dict[str, Any]], str], update: bool) -> None:
    """Render the case in `path` and compare it with its `.out.yaml` (or rewrite that)."""
    case = yaml.safe_load(path.read_text())
    out_path = path.with_name(path.name.replace(".in.yaml", ".out.yaml"))
    rendered = render(case)
    if update:
        out_path.write_text(rendered)
        return
    assert out_path.exists(), f"missing golden {out_path.name}: run pytest --update-goldens"
    assert rendered == out_path.read_text()
