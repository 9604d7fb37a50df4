"""Talking to `bastion serve`: over its local API socket, or over TCP with mutual TLS
(`--server`)."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bastion.errors import ServerUnavailable


def default_state_dir() -> Path:
    override = os.environ.get("BASTION_STATE_DIR")
    if override:
        return Path(override)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "bastion"


@dataclass(frozen=True)
class Remote:
    """A control plane's remote API and the operator's certificate files for it, as kubectl's
    --server, --client-certificate, --client-key and --certificate-authority."""

    server: str
    certificate: Path
    key: Path
    authority: Path

    def connect(self, timeout: float) -> socket.socket:
        # Here, not at the top: every command imports this module, and these load ssl and
        # cryptography (tens of milliseconds a command).
        import ssl

        from bastion.identity import CONTROL_PLANE_NAME

        context = ssl.create_default_context(cafile=str(self.authority))
        context.load_cert_chain(str(self.certificate), str(self.key))
        host, _, port = self.server.rpartition(":")
        raw = socket.create_connection((host.strip("[]"), int(port)), timeout)
        try:
            return context.wrap_socket(raw, server_hostname=CONTROL_PLANE_NAME)
        except BaseException:
            raw.close()
            raise


def call(state_dir: Path, request: dict[str, Any], timeout: float = 120.0,
         remote: Remote | None = None) -> dict[str, Any]:
    path = state_dir / "api.sock"
    where = remote.server if remote is not None else str(path)
    if remote is not None:
        try:
            sock = remote.connect(timeout)
        except (OSError, ValueError) as exc:
            raise ServerUnavailable(f"cannot reach bastion at {remote.server}: {exc}") from None
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except OSError:
            sock.close()
            raise ServerUnavailable(
                f"cannot reach bastion at {path}: is `bastion serve` running with "
                f"--state-dir {state_dir}?") from None
    try:
        sock.sendall(json.dumps(request).encode() + b"\n")
        chunks = []
        while True:
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    except TimeoutError:
        raise ServerUnavailable(f"bastion at {where} did not answer in {timeout:g}s") from None
    finally:
        sock.close()
    data = b"".join(chunks)
    if not data:
        raise ServerUnavailable(f"bastion at {where} closed the connection without an answer")
    return json.loads(data)
