"""mTLS cannot be bypassed, weak TLS is refused, and secrets stay secret."""

from __future__ import annotations

import base64
import stat
import subprocess
from pathlib import Path

import pytest

from tests import certs
from tests.e2e.harness import Backend, Bastion, curl
from tests.manifests import sample_manifest
from tests.manifests import tls_secret_json as secret

GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https-a, protocol: HTTPS}
    tls: {mode: SIMPLE, credentialName: a-credential}
    hosts: [a.example.com]
  - port: {number: 443, name: https-b, protocol: HTTPS}
    tls: {mode: MUTUAL, credentialName: b-credential}
    hosts: [b.example.com]
  - port: {number: 443, name: https-c, protocol: HTTPS}
    tls: {mode: MUTUAL, credentialName: c-credential, subjectAltNames: [client.example.com]}
    hosts: [c.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a}
spec:
  hosts: [a.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: httpbin, port: {number: 8000}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b}
spec:
  hosts: [b.example.com, c.example.com]
  gateways: [gw]
  http:
  - match: [{uri: {prefix: /secret-b}}]
    directResponse: {status: 200, body: {string: "inside b"}}
"""



@pytest.fixture
def guarded(bastion: Bastion, httpbin: Backend, tmp_path: Path) -> Path:
    root = certs.ca("root1")[0].cert
    manifest = sample_manifest(bastion.cli("samples", "manifest", "httpbin").stdout,
                               httpbin.port)
    bastion.cli("apply", "-f", "-", input="\n---\n".join([
        manifest, GATEWAY,
        secret("a-credential", certs.leaf("a.example.com", 1)),
        secret("b-credential", certs.leaf("b.example.com", 2), root,
               certs.crl("root1", (66,))),
        secret("c-credential", certs.leaf("c.example.com", 3), root)]))
    bastion.cli("wait", "--timeout", "10s", "vs", "b")
    cafile = tmp_path / "root.crt"
    cafile.write_bytes(root)
    return cafile


def test_mutual_tls_cannot_be_bypassed(bastion: Bastion, guarded: Path,
                                       tmp_path: Path) -> None:
    cafile, port = guarded, bastion.secure_port
    good = certs.write(certs.leaf("client.example.com", 60, sans=("client.example.com",)),
                       tmp_path, "good")
    with_cert = ("--cert", str(good[0]), "--key", str(good[1]))
    ok = curl("b.example.com", port, "/secret-b", cafile, with_cert)
    assert ok.returncode == 0 and "inside b" in ok.stdout, ok.stderr

    # A handshake for A without a certificate, then Host: B, over HTTP/1.1 and HTTP/2.
    for version in ("--http1.1", "--http2"):
        result = subprocess.run(
            ["curl", "-sS", "-v", version, "--resolve", f"a.example.com:{port}:127.0.0.1",
             "--cacert", str(cafile), "-H", "Host: b.example.com",
             f"https://a.example.com:{port}/secret-b"], capture_output=True, text=True,
            timeout=15)
        assert "inside b" not in result.stdout
        # B is another server's host: misdirected (421), so a client retries on its own
        # connection, where B's mutual TLS applies.
        assert " 421" in result.stderr, result.stderr
    # A reused HTTP/2 connection: the first request is A's, the second claims B.
    reuse = subprocess.run(
        ["curl", "-sS", "-v", "--http2", "--resolve", f"a.example.com:{port}:127.0.0.1",
         "--cacert", str(cafile), f"https://a.example.com:{port}/status/200",
         "--next", "--http2", "--resolve", f"a.example.com:{port}:127.0.0.1", "--cacert",
         str(cafile), "-H", "Host: b.example.com", f"https://a.example.com:{port}/secret-b"],
        capture_output=True, text=True, timeout=15)
    assert "Re-using existing connection" in reuse.stderr or "Reusing existing" in reuse.stderr
    assert "inside b" not in reuse.stdout
    assert "< HTTP/2 421" in reuse.stderr

    # No SNI, and an unknown SNI: no server matches, the handshake is refused.
    no_sni = subprocess.run(["curl", "-sS", "-k", "-H", "Host: b.example.com",
                             f"https://127.0.0.1:{port}/secret-b"],
                            capture_output=True, text=True, timeout=15)
    assert no_sni.returncode == 35 and "inside b" not in no_sni.stdout
    unknown = curl("z.example.com", port, "/secret-b", cafile, ("-k", "-H", "Host: b.example.com"))
    assert unknown.returncode == 35

    # Certificates that must not pass: expired, not yet valid, revoked, from another CA, and
    # (where SANs are required) for another name.
    bad = {
        "expired": certs.leaf("client.example.com", 61, valid_days=(-30, -1)),
        "not yet valid": certs.leaf("client.example.com", 62, valid_days=(2, 30)),
        "revoked": certs.leaf("client.example.com", 66),
        "wrong CA": certs.leaf("client.example.com", 63, "root2"),
    }
    for label, pair in bad.items():
        cert, key = certs.write(pair, tmp_path, label.replace(" ", "-"))
        result = curl("b.example.com", port, "/secret-b", cafile,
                      ("--cert", str(cert), "--key", str(key)))
        assert result.returncode != 0, label
        assert "inside b" not in result.stdout, label
    other_san = certs.write(certs.leaf("client.example.com", 64, sans=("other.example.com",)),
                            tmp_path, "other-san")
    refused = curl("c.example.com", port, "/secret-b", cafile,
                   ("--cert", str(other_san[0]), "--key", str(other_san[1])))
    assert refused.returncode != 0 and "inside b" not in refused.stdout
    accepted = curl("c.example.com", port, "/secret-b", cafile, with_cert)
    assert accepted.returncode == 0 and "inside b" in accepted.stdout, accepted.stderr


def _s_client(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                           "-servername", "a.example.com", *args],
                          input="", capture_output=True, text=True, timeout=15)


def test_weak_tls_is_refused(bastion: Bastion, guarded: Path) -> None:
    port = bastion.secure_port
    modern = _s_client(port, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
    assert modern.returncode == 0 and "Cipher is ECDHE-RSA-AES128-GCM-SHA256" in modern.stdout
    for version in ("-tls1", "-tls1_1"):
        old = _s_client(port, version, "-cipher", "DEFAULT@SECLEVEL=0")
        assert old.returncode != 0
        # The server answered with a protocol alert: the client did offer the old version.
        assert "alert protocol version" in old.stderr, old.stderr
    for weak in ("AES128-SHA", "AES256-SHA", "ECDHE-RSA-AES128-SHA"):
        result = _s_client(port, "-tls1_2", "-cipher", f"{weak}@SECLEVEL=0")
        assert result.returncode != 0, weak
        assert "alert handshake failure" in result.stderr, result.stderr


def test_sockets_and_admin_are_private(bastion: Bastion, guarded: Path) -> None:
    assert stat.S_IMODE(bastion.state_dir.stat().st_mode) == 0o700
    for name in ("xds.sock", "api.sock"):
        mode = (bastion.state_dir / name).stat().st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600, name
    admin = bastion.status()["envoy"]["admin"]
    assert admin.startswith("127.0.0.1:")


def test_private_keys_appear_in_no_output(bastion: Bastion, guarded: Path,
                                          tmp_path: Path) -> None:
    keys = [certs.leaf(h, n).key for h, n in (("a.example.com", 1), ("b.example.com", 2),
                                              ("c.example.com", 3))]
    manifest = tmp_path / "all.yaml"
    manifest.write_text("\n---\n".join(
        [GATEWAY, secret("a-credential", certs.leaf("a.example.com", 1))]))
    outputs = {
        "get -o yaml": bastion.cli("get", "secrets", "-n", "istio-system", "-o", "yaml").stdout,
        "get -o json": bastion.cli("get", "secret", "a-credential", "-n", "istio-system",
                                   "-o", "json").stdout,
        "status": bastion.cli("status").stdout + bastion.cli("status", "-o", "json").stdout,
        "proxy-config": bastion.cli("proxy-config", "secret").stdout
        + bastion.cli("proxy-config", "secret", "-o", "json").stdout,
        "translate": bastion.cli("translate", "-f", str(manifest), "--to", "all").stdout,
        "logs": bastion.cli("logs").stdout,
        "describe": bastion.cli("describe", "secret", "a-credential", "-n",
                                "istio-system").stdout,
        "serve output": bastion.serve_log(),
    }
    for key in keys:
        lines = [line for line in key.decode().splitlines() if "PRIVATE KEY" not in line]
        needles = [lines[1], lines[5], base64.b64encode(key).decode()[40:100]]
        for label, text in outputs.items():
            assert "PRIVATE KEY" not in text, label
            for needle in needles:
                assert needle not in text, label
    assert "[redacted]" in outputs["get -o yaml"] and "[redacted]" in outputs["translate"]
