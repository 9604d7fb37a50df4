"""The Gateway TLS settings beyond the task, each through real Envoy and real clients:
`credentialNames` (RSA and ECDSA), protocol versions, client-certificate SAN/SPKI/hash checks,
`caCertCredentialName`, `httpsRedirect` and OCSP stapling."""

from __future__ import annotations

import base64
import hashlib
import socket
import ssl
import subprocess
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests import certs
from tests.e2e.harness import Bastion
from tests.manifests import secret_json, tls_secret_json

ROUTES = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {name}}}
spec:
  hosts: [{host}]
  gateways: [tls-settings]
  http:
  - directResponse: {{status: 200, body: {{string: ok-{name}}}}}
"""


def gateway(servers: list[tuple[str, str, str]]) -> str:
    """(port name, host, tls block) servers on port 443."""
    body = "".join(f"""
  - port: {{number: 443, name: {name}, protocol: HTTPS}}
    hosts: [{host}]
    tls: {tls}""" for name, host, tls in servers)
    return f"""
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: tls-settings}}
spec:
  selector: {{istio: ingressgateway}}
  servers:{body}
"""


def apply(bastion: Bastion, servers: list[tuple[str, str, str]], *extra: str) -> None:
    routes = [ROUTES.format(name=name, host=host) for name, host, _ in servers]
    bastion.cli("apply", "-f", "-", input="\n---\n".join([*extra, gateway(servers), *routes]))
    bastion.cli("wait", "--timeout", "10s", "vs", servers[-1][0])


def context(cafile: Path, client: tuple[Path, Path] | None = None,
            version: ssl.TLSVersion | None = None, ciphers: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cafile))
    ctx.check_hostname = False
    if client is not None:
        ctx.load_cert_chain(str(client[0]), str(client[1]))
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    return ctx


def peer(host: str, port: int, ctx: ssl.SSLContext) -> x509.Certificate:
    """The certificate the gateway presents on a new connection (raises if refused)."""
    with socket.create_connection(("127.0.0.1", port), 5) as raw, \
            ctx.wrap_socket(raw, server_hostname=host) as tls:
        if tls.version() == "TLSv1.3":
            # With TLS 1.3 the server checks a client certificate after the handshake: a
            # refusal shows on the first read.
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            if not tls.recv(1):
                raise ssl.SSLError("connection closed")
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def refused(host: str, port: int, ctx: ssl.SSLContext) -> bool:
    try:
        peer(host, port, ctx)
    except (ssl.SSLError, OSError):
        return True
    return False


def eventually(check, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (ssl.SSLError, OSError, AssertionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def root_file(tmp_path: Path, root: str = "root1") -> Path:
    path = tmp_path / f"{root}.crt"
    path.write_bytes(certs.ca(root)[0].cert)
    return path


def test_credential_names_serve_rsa_or_ecdsa_by_client(bastion: Bastion, tmp_path: Path) -> None:
    rsa_pair = certs.leaf("dual.example.com", 51)
    ec_pair = certs.leaf("dual.example.com", 52, kind="ec")
    apply(bastion, [("dual", "dual.example.com",
                     "{mode: SIMPLE, credentialNames: [dual-rsa, dual-ecdsa]}")],
          tls_secret_json("dual-rsa", rsa_pair), tls_secret_json("dual-ecdsa", ec_pair))
    cafile = tmp_path / "roots.crt"
    cafile.write_bytes(certs.ca("root1")[0].cert + certs.ca("root1", "ec")[0].cert)
    port = bastion.secure_port
    rsa_only = context(cafile, version=ssl.TLSVersion.TLSv1_2,
                       ciphers="ECDHE-RSA-AES128-GCM-SHA256")
    ecdsa_only = context(cafile, version=ssl.TLSVersion.TLSv1_2,
                         ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
    got = eventually(lambda: peer("dual.example.com", port, rsa_only))
    assert isinstance(got.public_key(), rsa.RSAPublicKey) and got.serial_number == 51
    got = peer("dual.example.com", port, ecdsa_only)
    assert isinstance(got.public_key(), ec.EllipticCurvePublicKey) and got.serial_number == 52
    # A TLS 1.3 client that can verify both is given the ECDSA one.
    got = peer("dual.example.com", port, context(cafile))
    assert isinstance(got.public_key(), ec.EllipticCurvePublicKey)


def test_protocol_versions(bastion: Bastion, tmp_path: Path) -> None:
    pairs = {h: certs.leaf(f"{h}.example.com", n) for n, h in enumerate(("v13", "v12", "dflt"), 60)}
    apply(bastion, [
        ("v13", "v13.example.com", "{mode: SIMPLE, credentialName: v13, minProtocolVersion: TLSV1_3}"),
        ("v12", "v12.example.com", "{mode: SIMPLE, credentialName: v12, maxProtocolVersion: TLSV1_2}"),
        ("dflt", "dflt.example.com", "{mode: SIMPLE, credentialName: dflt}")],
        *(tls_secret_json(h, p) for h, p in pairs.items()))
    cafile = root_file(tmp_path)
    port = bastion.secure_port
    tls12, tls13 = (context(cafile, version=v) for v in (ssl.TLSVersion.TLSv1_2,
                                                         ssl.TLSVersion.TLSv1_3))
    eventually(lambda: peer("dflt.example.com", port, tls13))
    assert refused("v13.example.com", port, tls12)
    assert peer("v13.example.com", port, tls13).serial_number == 60
    assert refused("v12.example.com", port, tls13)
    assert peer("v12.example.com", port, tls12).serial_number == 61
    assert peer("dflt.example.com", port, tls12).serial_number == 62
    # TLS 1.1 is refused by default (openssl, since Python's ssl no longer offers it).
    result = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                             "-servername", "dflt.example.com", "-tls1_1", "-cipher",
                             "DEFAULT@SECLEVEL=0"], input="", capture_output=True, text=True,
                            timeout=30)
    assert "BEGIN CERTIFICATE" not in result.stdout


def _spki(pair: certs.Pair) -> str:
    cert = x509.load_pem_x509_certificate(pair.cert)
    der = cert.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def _hash(pair: certs.Pair) -> str:
    cert = x509.load_pem_x509_certificate(pair.cert)
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def test_client_certificate_san_spki_and_hash(bastion: Bastion, tmp_path: Path) -> None:
    root = certs.ca("root1")[0].cert
    client = certs.leaf("client.example.com", 70, sans=("client.example.com",))
    other = certs.leaf("other.example.com", 71, sans=("other.example.com",))
    servers = [
        ("san", "san.example.com", "{mode: MUTUAL, credentialName: m, "
                                   "subjectAltNames: [client.example.com]}"),
        ("spki", "spki.example.com", f"{{mode: MUTUAL, credentialName: m, "
                                     f"verifyCertificateSpki: [\"{_spki(client)}\"]}}"),
        ("hash", "hash.example.com", f"{{mode: MUTUAL, credentialName: m, "
                                     f"verifyCertificateHash: [\"{_hash(client)}\"]}}"),
    ]
    server = certs.leaf("m.example.com", 72,
                        sans=("san.example.com", "spki.example.com", "hash.example.com"))
    apply(bastion, servers, tls_secret_json("m", server, ca=root))
    cafile = root_file(tmp_path)
    good = context(cafile, certs.write(client, tmp_path, "client"))
    bad = context(cafile, certs.write(other, tmp_path, "other"))
    port = bastion.secure_port
    for _, host, _ in servers:
        assert eventually(lambda h=host: peer(h, port, good)).serial_number == 72, host
        assert refused(host, port, bad), host
        assert refused(host, port, context(cafile)), host  # no certificate at all


def test_ca_cert_credential_name_is_used_for_mutual(bastion: Bastion, tmp_path: Path) -> None:
    apply(bastion, [("ca", "ca.example.com",
                     "{mode: MUTUAL, credentialName: server-cred, "
                     "caCertCredentialName: client-ca}")],
          tls_secret_json("server-cred", certs.leaf("ca.example.com", 80)),
          secret_json("client-ca", ca_crt=certs.ca("root2")[0].cert))
    cafile = root_file(tmp_path)
    from_root2 = context(cafile, certs.write(certs.leaf("c.example.com", 81, "root2"),
                                             tmp_path, "c2"))
    from_root1 = context(cafile, certs.write(certs.leaf("c.example.com", 82), tmp_path, "c1"))
    port = bastion.secure_port
    assert eventually(lambda: peer("ca.example.com", port, from_root2)).serial_number == 80
    assert refused("ca.example.com", port, from_root1)


def test_https_redirect_answers_301(bastion: Bastion) -> None:
    bastion.cli("apply", "-f", "-", input="""
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: redirect}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [r.example.com]
    tls: {httpsRedirect: true}
""")

    def answer() -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
             "-H", "Host: r.example.com", f"http://127.0.0.1:{bastion.http_port}/some/path?q=1"],
            capture_output=True, text=True, timeout=15)
        assert result.stdout.startswith("301"), result.stdout + result.stderr
        return result

    result = eventually(answer)
    assert result.stdout == "301 https://r.example.com/some/path?q=1"


def _staple_status(host: str, port: int) -> str:
    result = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                             "-servername", host, "-status"], input="", capture_output=True,
                            text=True, timeout=30)
    return result.stdout


def test_ocsp_staple_is_served_and_an_expired_one_is_not(bastion: Bastion,
                                                         tmp_path: Path) -> None:
    fresh = certs.leaf("fresh.example.com", 90)
    stale = certs.leaf("stale.example.com", 91)
    apply(bastion, [("fresh", "fresh.example.com", "{mode: SIMPLE, credentialName: fresh}"),
                    ("stale", "stale.example.com", "{mode: SIMPLE, credentialName: stale}")],
          secret_json("fresh", secret_type="kubernetes.io/tls", tls_crt=fresh.cert,
                      tls_key=fresh.key, **{"tls_ocsp-staple": certs.ocsp_staple(fresh)}),
          secret_json("stale", secret_type="kubernetes.io/tls", tls_crt=stale.cert,
                      tls_key=stale.key,
                      **{"tls_ocsp-staple": certs.ocsp_staple(stale, valid_hours=(-48, -24))}))
    port = bastion.secure_port
    fresh_out = eventually(lambda: _check_contains(_staple_status("fresh.example.com", port),
                                                   "OCSP Response Status: successful"))
    assert "Cert Status: good" in fresh_out
    stale_out = _staple_status("stale.example.com", port)
    assert "BEGIN CERTIFICATE" in stale_out  # the certificate is still served
    assert "OCSP response: no response sent" in stale_out
    diagnostics = [d for d in bastion.status()["diagnostics"] if d["code"] == "OcspStapleExpired"]
    assert [d["name"] for d in diagnostics] == ["stale"], diagnostics
    assert "expired at" in diagnostics[0]["message"]


def _check_contains(text: str, fragment: str) -> str:
    assert fragment in text, text[-2000:]
    return text
