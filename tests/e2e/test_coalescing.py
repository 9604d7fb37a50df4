"""HTTP/2 connection coalescing: servers of one port with the same credential share one
connection, so a client that reuses it for the other host is routed; servers with credentials
of their own tell such a client the request is misdirected (421), so it retries on a connection
of its own, instead of getting 404; a host that no server serves still gets 404."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests import certs
from tests.e2e.harness import Bastion
from tests.manifests import gateway_yaml
from tests.manifests import tls_secret_json as secret


def routes(name: str, host: str) -> str:
    return (f"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}}}"
            f"\nspec:\n  hosts: [{host}]\n  gateways: [shared]\n  http:\n"
            f"  - directResponse: {{status: 200, body: {{string: inside-{name}}}}}\n")


def statuses_on_one_connection(port: int, cafile: Path, hosts: list[str]
                               ) -> tuple[list[str], str, str]:
    """curl's requests for `hosts` (as Host:) on one HTTP/2 connection made for a.example.com."""
    one_connection = ["--http2", "--resolve", f"a.example.com:{port}:127.0.0.1", "--cacert",
                      str(cafile)]
    args = ["curl", "-sS", "-v"]
    for i, host in enumerate(hosts):
        args += (["--next"] if i else []) + [*one_connection, "-H", f"Host: {host}",
                                             f"https://a.example.com:{port}/"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert "Re-using existing connection" in result.stderr or "Reusing existing" in result.stderr
    statuses = [line.split()[2] for line in result.stderr.splitlines()
                if line.startswith("< HTTP/2 ")]
    return statuses, result.stdout, result.stderr


def serve_two(bastion: Bastion, tmp_path: Path, credentials: tuple[str, str]) -> Path:
    """Servers for a.example.com and b.example.com on one port, with the credentials named (the
    same name twice: one credential), each holding one certificate for both hosts, as
    browsers need to coalesce."""
    both = certs.leaf("a.example.com", 6, sans=("a.example.com", "b.example.com"))
    bastion.cli("apply", "-f", "-", input="\n---\n".join([
        *(secret(name, both) for name in sorted(set(credentials))),
        gateway_yaml("shared", [("https-a", "SIMPLE", credentials[0], ["a.example.com"]),
                                ("https-b", "SIMPLE", credentials[1], ["b.example.com"])]),
        routes("a", "a.example.com"), routes("b", "b.example.com")]))
    bastion.cli("wait", "--timeout", "10s", "vs", "b")
    cafile = tmp_path / "root.crt"
    cafile.write_bytes(certs.ca("root1")[0].cert)
    return cafile


def test_servers_sharing_a_credential_route_a_coalesced_request(bastion: Bastion,
                                                                tmp_path: Path) -> None:
    cafile = serve_two(bastion, tmp_path, ("shared-credential", "shared-credential"))
    statuses, body, stderr = statuses_on_one_connection(
        bastion.secure_port, cafile, ["a.example.com", "b.example.com", "c.example.com"])
    assert statuses == ["200", "200", "404"], stderr[-3000:]
    assert body == "inside-ainside-b"


def test_misdirected_request_gets_421_and_unknown_host_404(bastion: Bastion,
                                                          tmp_path: Path) -> None:
    cafile = serve_two(bastion, tmp_path, ("a-credential", "b-credential"))
    port = bastion.secure_port
    statuses, body, stderr = statuses_on_one_connection(
        port, cafile, ["a.example.com", "b.example.com", "c.example.com"])
    assert statuses == ["200", "421", "404"], stderr[-3000:]
    assert body.startswith("inside-a") and "inside-b" not in body
    # On its own connection, B is served.
    own = subprocess.run(["curl", "-sS", "--http2", "--resolve", f"b.example.com:{port}:127.0.0.1",
                          "--cacert", str(cafile), f"https://b.example.com:{port}/"],
                         capture_output=True, text=True, timeout=15)
    assert own.stdout == "inside-b", own.stderr
