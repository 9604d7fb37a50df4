"""`bastion certs` end to end: a root, an intermediate, a server certificate stored as the
gateway's Secret and a client certificate, all verified by `openssl verify`; the Secret serves
through real Envoy (the chain through the intermediate verifies with curl), and the CRL it
makes refuses the revoked client while the other one gets through."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.e2e.harness import Bastion, curl
from tests.manifests import gateway_yaml

HOST = "httpbin.example.com"
ROUTE = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin.example.com]
  gateways: [mygateway]
  http: [{directResponse: {status: 200, body: {string: made-by-bastion-certs}}}]
"""


def verify(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", "verify", *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=30)


def test_certs_made_verified_and_served(bastion: Bastion, tmp_path: Path) -> None:
    def certs(*args: str) -> str:
        done = bastion.shell("bastion certs " + " ".join(args), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return done.stdout

    certs("root", "--out", "root")
    certs("intermediate", "--ca", "root", "--cn", "'example intermediate'", "--out", "inter")
    out = certs("server", "--ca", "inter", "--host", HOST, "--host", "www.example.com",
                "--out", "httpbin", "--secret", "httpbin-credential", "-n", "istio-system")
    assert "DNS httpbin.example.com, www.example.com" in out and "PRIVATE" not in out
    certs("client", "--ca", "root", "--cn", "good.example.com", "--rsa", "--out", "good")
    certs("client", "--ca", "root", "--cn", "revoked.example.com", "--out", "revoked")
    certs("crl", "--ca", "root", "--revoke", "revoked.crt", "--out", "root.crl")

    assert verify(tmp_path, "-CAfile", "root.crt", "-untrusted", "httpbin.crt",
                  "httpbin.crt").returncode == 0
    assert verify(tmp_path, "-CAfile", "root.crt", "good.crt").returncode == 0
    assert verify(tmp_path, "-crl_check", "-CAfile", "root.crt", "-CRLfile", "root.crl",
                  "good.crt").returncode == 0
    refused = verify(tmp_path, "-crl_check", "-CAfile", "root.crt", "-CRLfile", "root.crl",
                     "revoked.crt")
    assert refused.returncode != 0 and "certificate revoked" in refused.stdout + refused.stderr
    assert (tmp_path / "httpbin.key").stat().st_mode & 0o077 == 0

    bastion.cli("apply", "-f", "-", input=gateway_yaml(
        "mygateway", [("https", "SIMPLE", "httpbin-credential", [HOST])]) + "---\n" + ROUTE)
    bastion.cli("wait", "--timeout", "10s", "gateway", "mygateway")
    served = curl(HOST, bastion.secure_port, "/", tmp_path / "root.crt")
    assert served.stdout == "made-by-bastion-certs", served.stderr

    made = bastion.shell("bastion create -n istio-system secret generic "
                         "httpbin-credential-cacert --from-file=ca.crt=root.crt "
                         "--from-file=ca.crl=root.crl", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    bastion.cli("apply", "-f", "-", input=gateway_yaml(
        "mygateway", [("https", "MUTUAL", "httpbin-credential", [HOST])]))
    bastion.cli("wait", "--timeout", "10s", "gateway", "mygateway")
    good = curl(HOST, bastion.secure_port, "/", tmp_path / "root.crt",
                ("--cert", str(tmp_path / "good.crt"), "--key", str(tmp_path / "good.key")))
    assert good.stdout == "made-by-bastion-certs", good.stderr
    bad = curl(HOST, bastion.secure_port, "/", tmp_path / "root.crt",
               ("--cert", str(tmp_path / "revoked.crt"), "--key",
                str(tmp_path / "revoked.key")))
    assert bad.returncode != 0 and bad.stdout == "", bad.stderr
