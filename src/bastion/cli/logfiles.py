"""Reading log files as `kubectl logs` shows them: the last N lines, the lines since a moment
(by the timestamp each line starts with), and following what is appended."""

from __future__ import annotations

import re
import sys
import time
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

# Envoy writes `[2026-12-01 10:53:13.909]`, bastion `2026-12-01 10:53:13,909`; both local time.
STAMP = re.compile(r"^\[?(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2})")
FOLLOW_POLL_S = 0.25


def _when(line: str) -> float | None:
    match = STAMP.match(line)
    if match is None:
        return None
    moment = datetime.strptime(match.group(1).replace("T", " "), "%Y-%m-%d %H:%M:%S")
    return moment.timestamp() if moment.tzinfo is None else moment.astimezone(UTC).timestamp()


def read(path: Path, tail: int = -1, since: float | None = None) -> list[str]:
    """The file's lines: the last `tail` (-1: all), of those written at `since` or later (a
    line without a timestamp goes with the one before it)."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines: Iterable[str] = handle
        if since is not None:
            lines = _since(lines, since)
        return list(deque(lines, maxlen=tail)) if tail >= 0 else list(lines)


def _since(lines: Iterable[str], since: float) -> Iterable[str]:
    keep = False
    for line in lines:
        moment = _when(line)
        if moment is not None:
            keep = moment >= since - 1  # the stamps have second precision
        if keep:
            yield line


def follow(paths: list[Path]) -> None:
    """Print what is appended to the files until interrupted (Ctrl-C)."""
    offsets = {p: p.stat().st_size if p.exists() else 0 for p in paths}
    try:
        while True:
            for path in paths:
                if not path.exists():
                    continue
                size = path.stat().st_size
                if size < offsets[path]:
                    offsets[path] = 0  # rotated or truncated
                if size > offsets[path]:
                    with open(path, encoding="utf-8", errors="replace") as handle:
                        handle.seek(offsets[path])
                        sys.stdout.write(handle.read())
                        offsets[path] = handle.tell()
                    sys.stdout.flush()
            time.sleep(FOLLOW_POLL_S)
    except KeyboardInterrupt:
        return
