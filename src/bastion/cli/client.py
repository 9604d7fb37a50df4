"""Talking to `bastion serve` over its local API socket."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from bastion.errors import ServerUnavailable


def default_state_dir() -> Path:
    override = os.environ.get("BASTION_STATE_DIR")
    if override:
        return Path(override)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "bastion"


def call(state_dir: Path, request: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
    path = state_dir / "api.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(str(path))
        except OSError:
            raise ServerUnavailable(
                f"cannot reach bastion at {path}: is `bastion serve` running with "
                f"--state-dir {state_dir}?") from None
        sock.sendall(json.dumps(request).encode() + b"\n")
        chunks = []
        while True:
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    except TimeoutError:
        raise ServerUnavailable(f"bastion at {path} did not answer in {timeout:g}s") from None
    finally:
        sock.close()
    data = b"".join(chunks)
    if not data:
        raise ServerUnavailable(f"bastion at {path} closed the connection without an answer")
    return json.loads(data)
