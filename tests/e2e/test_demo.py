"""The README's main job: `bastion demo` runs the whole task and every step gives the task's
result (it checks the status lines and the teapot itself, not just exit codes)."""

from __future__ import annotations

import subprocess
import sys


def test_demo_runs_the_whole_task() -> None:
    result = subprocess.run([sys.executable, "-m", "bastion", "demo"], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Every step gave the task's result." in result.stdout
    assert "UNEXPECTED" not in result.stdout
    assert "HTTP/2 418" in result.stdout and "-=[ teapot ]=-" in result.stdout
