"""Mutual TLS at the gateway: client certificates required and verified, revocation by CRL,
OPTIONAL_MUTUAL, and X-Forwarded-Client-Cert to the backend (never from the client)."""

from __future__ import annotations

import json
from pathlib import Path

from tests import certs
from tests.e2e.harness import Backend, Bastion, curl
from tests.manifests import sample_manifest
from tests.manifests import secret_json as secret

GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https-m, protocol: HTTPS}
    tls: {mode: MUTUAL, credentialName: m-credential}
    hosts: [m.example.com]
  - port: {number: 443, name: https-o, protocol: HTTPS}
    tls: {mode: OPTIONAL_MUTUAL, credentialName: o-credential}
    hosts: [o.example.com]
  - port: {number: 443, name: https-s, protocol: HTTPS}
    tls: {mode: SIMPLE, credentialName: s-credential}
    hosts: [s.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: all}
spec:
  hosts: [m.example.com, o.example.com, s.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: httpbin, port: {number: 8000}}}]
"""




def headers_seen(result) -> dict[str, str]:  # type: ignore[no-untyped-def]
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["headers"]


def test_mutual_tls(bastion: Bastion, httpbin: Backend, tmp_path: Path) -> None:
    manifest = sample_manifest(bastion.cli("samples", "manifest", "httpbin").stdout,
                               httpbin.port)
    root = certs.ca("root1")[0].cert
    bundle = root + certs.ca("root3")[0].cert  # cacert may hold several CAs
    revoked_list = certs.crl("root1", (7,))
    server = {h: certs.leaf(f"{h}.example.com", n) for n, h in enumerate("mos", 1)}
    bastion.cli("apply", "-f", "-", input="\n---\n".join([
        manifest, GATEWAY,
        secret("m-credential", tls_crt=server["m"].cert, tls_key=server["m"].key,
               ca_crt=root, ca_crl=revoked_list),
        secret("o-credential", cert=server["o"].cert, key=server["o"].key, cacert=bundle),
        secret("s-credential", cert=server["s"].cert, key=server["s"].key)]))
    bastion.cli("wait", "--timeout", "10s", "vs", "all")
    cafile = tmp_path / "root.crt"
    cafile.write_bytes(root)
    good = certs.write(certs.leaf("client.example.com", 8), tmp_path, "good")
    revoked = certs.write(certs.leaf("client.example.com", 7), tmp_path, "revoked")
    stranger = certs.write(certs.leaf("client.example.com", 8, "root2"), tmp_path, "stranger")
    other_ca = certs.write(certs.leaf("client.example.com", 9, "root3"), tmp_path, "other")

    def call(host: str, client: tuple[Path, Path] | None = None, *extra: str):  # type: ignore[no-untyped-def]
        args = ("--cert", str(client[0]), "--key", str(client[1])) if client else ()
        return curl(f"{host}.example.com", bastion.secure_port, "/headers", cafile,
                    (*args, *extra))

    # MUTUAL: no certificate, a revoked one, one from an untrusted CA: all refused.
    for client in (None, revoked, stranger):
        result = call("m", client)
        assert result.returncode != 0, result.stderr
        assert "< HTTP/2" not in result.stderr
    # A valid certificate gets through, and the backend learns who the client is; a header of
    # that name sent by the client is replaced, never passed on.
    seen = headers_seen(call("m", good, "-H", "X-Forwarded-Client-Cert: By=spoofed;Hash=0"))
    xfcc = seen["X-Forwarded-Client-Cert"]
    assert "spoofed" not in xfcc
    assert 'Subject="CN=client.example.com,O=organization"' in xfcc
    assert "Hash=" in xfcc and "Cert=" in xfcc

    # OPTIONAL_MUTUAL: no certificate is fine; a certificate is verified if given (the bundle
    # trusts root1 and root3, not root2).
    seen = headers_seen(call("o", None, "-H", "X-Forwarded-Client-Cert: By=spoofed"))
    assert "X-Forwarded-Client-Cert" not in seen
    assert "CN=client.example.com" in headers_seen(call("o", other_ca))[
        "X-Forwarded-Client-Cert"]
    assert call("o", stranger).returncode != 0

    # SIMPLE: a client-sent header never reaches the backend.
    seen = headers_seen(call("s", None, "-H", "X-Forwarded-Client-Cert: By=spoofed"))
    assert "X-Forwarded-Client-Cert" not in seen

    proxy = bastion.cli("proxy-config", "secret").stdout
    assert "kubernetes://m-credential-cacert" in proxy
    assert "kubernetes://o-credential-cacert" in proxy
    assert "kubernetes://s-credential-cacert" not in proxy
