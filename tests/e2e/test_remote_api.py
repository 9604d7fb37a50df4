"""The API for operators on other hosts: kubectl-shaped commands with `--server` over mutual
TLS work as on the local socket; a gateway's certificate, or none, gets nothing."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
from pathlib import Path

from tests.e2e.harness import Bastion, free_port
from tests.e2e.remote import control_plane

GATEWAY = ("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\n"
           "spec:\n  selector: {istio: ingressgateway}\n  servers:\n"
           "  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ['*']\n")


def remote(cp: Bastion, certs: Path, *args: str, input: str | None = None
           ) -> subprocess.CompletedProcess[str]:
    """The CLI on "another host": no state directory of the control plane's, only --server."""
    env = {k: v for k, v in cp.env.items() if k != "BASTION_STATE_DIR"}
    env["BASTION_STATE_DIR"] = str(cp.workdir / "elsewhere")
    return subprocess.run(
        [sys.executable, "-m", "bastion", "--server", cp.api_address,  # type: ignore[attr-defined]
         "--client-certificate", str(certs / "tls.crt"), "--client-key", str(certs / "tls.key"),
         "--certificate-authority", str(certs / "ca.crt"), *args],
        input=input, capture_output=True, text=True, env=env, timeout=60)


def test_operators_use_the_cli_remotely_and_nobody_else_can(tmp_path: Path) -> None:
    port = free_port()
    cp = control_plane(tmp_path / "cp", free_port(), "--api-address", f"127.0.0.1:{port}")
    cp.api_address = f"127.0.0.1:{port}"  # type: ignore[attr-defined]
    try:
        made = cp.cli("certs", "admin", "ops", "--out", str(tmp_path / "ops"))
        assert "spiffe://bastion/admin/ops" in made.stdout
        applied = remote(cp, tmp_path / "ops", "apply", "-f", "-", input=GATEWAY)
        assert applied.returncode == 0 and "gateway.networking.istio.io/gw created" in \
            applied.stdout, applied.stderr
        listed = remote(cp, tmp_path / "ops", "get", "gateway")
        assert listed.returncode == 0 and "gw" in listed.stdout
        assert "gw" in cp.cli("get", "gateway").stdout  # the same store as the local socket
        assert "remote API: apply by admin ops" in cp.serve_log()

        # A gateway's certificate is for xDS only.
        cp.cli("certs", "gateway", "g1", "--out", str(tmp_path / "g1"))
        refused = remote(cp, tmp_path / "g1", "get", "gateway")
        assert refused.returncode != 0
        assert "permission denied: the client certificate is not an operator's" in \
            refused.stderr
        # No client certificate: the handshake itself fails.
        bare = tmp_path / "bare"
        bare.mkdir()
        (bare / "ca.crt").write_bytes((tmp_path / "ops" / "ca.crt").read_bytes())
        context = ssl.create_default_context(cafile=str(bare / "ca.crt"))
        try:
            with socket.create_connection(("127.0.0.1", port), 5) as raw, \
                    context.wrap_socket(raw, server_hostname="xds.bastion-system.svc") as tls:
                tls.sendall(b'{"op": "get", "kind": "gateway"}\n')
                answered = tls.recv(100)
        except (ssl.SSLError, ConnectionError):
            answered = b""
        assert answered == b""
        bad = cp.cli("certs", "admin", "Not_A_Name", "--out", str(tmp_path / "x"), check=False)
        assert bad.returncode != 0 and "not a valid name" in bad.stderr
    finally:
        cp.stop()
