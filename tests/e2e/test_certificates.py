"""cert-manager's API served by bastion, through real Envoy and curl: a selfSigned ClusterIssuer
makes a root CA Certificate, a CA ClusterIssuer signs the gateway's Certificate with it, the
Gateway serves the Secret it is issued into, and a renewal (a short renewBefore) is a Secret
update that new handshakes see with no failed one meanwhile; a Certificate whose issuer cannot
sign reports it in status and events."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.e2e.harness import Bastion, curl, handshake_serial
from tests.e2e.loops import HandshakeLoop
from tests.e2e.scrape import scrape, value
from tests.manifests import HTTPBIN_GATEWAY

HOST = "httpbin.example.com"
ISSUERS = """
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata: {name: selfsigned}
spec: {selfSigned: {}}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: root-ca, namespace: cert-manager}
spec:
  isCA: true
  commonName: bastion test root
  secretName: root-ca
  duration: 8760h
  privateKey: {algorithm: ECDSA, size: 256}
  issuerRef: {name: selfsigned, kind: ClusterIssuer}
---
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata: {name: ca}
spec: {ca: {secretName: root-ca}}
"""
CERTIFICATE = """
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {{name: httpbin, namespace: istio-system}}
spec:
  secretName: httpbin-credential
  dnsNames: [httpbin.example.com]
  duration: {duration}
  renewBefore: {renew_before}
  issuerRef: {{name: {issuer}, kind: ClusterIssuer}}
"""
ROUTE = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin.example.com]
  gateways: [mygateway]
  http: [{directResponse: {status: 200, body: {string: issued-by-cert-manager-api}}}]
"""


def certificate(bastion: Bastion, name: str, namespace: str = "istio-system") -> dict:
    return json.loads(bastion.cli("get", "certificate", name, "-n", namespace, "-o",
                                  "json").stdout)


def test_selfsigned_and_ca_issuers_serve_and_renew(bastion: Bastion, tmp_path: Path) -> None:
    bastion.cli("apply", "-f", "-", input=ISSUERS)
    bastion.cli("wait", "--for=condition=Ready", "certificate/root-ca", "-n", "cert-manager",
                "--timeout", "20s")
    root = tmp_path / "root.crt"
    root.write_bytes(bastion.shell(
        "bastion get secret root-ca -n cert-manager -o jsonpath='{.data.ca\\.crt}' "
        "| base64 -d").stdout.encode())
    assert b"BEGIN CERTIFICATE" in root.read_bytes()

    # duration 1h, renewBefore 59m55s: due 5 s after issuance.
    bastion.cli("apply", "-f", "-", input=CERTIFICATE.format(
        duration="1h", renew_before="59m55s", issuer="ca") + "---\n" + HTTPBIN_GATEWAY
        + "---\n" + ROUTE)
    waited = bastion.cli("wait", "--for=condition=Ready", "certificate/httpbin", "-n",
                         "istio-system", "--timeout", "20s")
    assert waited.stdout.strip() == "certificate.cert-manager.io/httpbin condition met"
    deadline = time.monotonic() + 10
    while (served := curl(HOST, bastion.secure_port, "/", root)).stdout != \
            "issued-by-cert-manager-api":
        assert time.monotonic() < deadline, served.stderr
        time.sleep(0.1)
    status = certificate(bastion, "httpbin")["status"]
    first = handshake_serial(HOST, bastion.secure_port, root)
    assert {"notBefore", "notAfter", "renewalTime"} <= status.keys()
    listed = bastion.cli("get", "certificate", "-n", "istio-system").stdout
    assert listed.split("\n")[0].split() == ["NAME", "READY", "SECRET", "AGE"]
    assert listed.split("\n")[1].split()[:3] == ["httpbin", "True", "httpbin-credential"]

    loop = HandshakeLoop(HOST, bastion.secure_port, root, max_count=20000, max_seconds=30)
    loop.start()
    deadline = time.monotonic() + 20
    while handshake_serial(HOST, bastion.secure_port, root) == first:  # renewed when due
        assert time.monotonic() < deadline, "not renewed"
        time.sleep(0.2)
    tally = loop.finish()
    assert tally.errors == [], tally.errors[:5]
    assert tally.ok > 10 and len(set(tally.serials)) >= 2
    described = bastion.cli("describe", "certificate", "httpbin", "-n", "istio-system").stdout
    assert "The certificate has been successfully issued" in described
    assert "Renewing certificate as renewal was scheduled at" in described
    _, samples = scrape(bastion)
    assert (value(samples, "bastion_certificate_renewals_total", namespace="istio-system",
                  certificate="httpbin") or 0) >= 1


def test_an_issuer_that_cannot_sign_is_reported(bastion: Bastion) -> None:
    bastion.cli("apply", "-f", "-", input="""
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata: {name: broken}
spec: {ca: {secretName: no-such-ca}}
""" + "---\n" + CERTIFICATE.format(duration="2160h", renew_before="360h", issuer="broken"))
    deadline = time.monotonic() + 10
    while True:
        conditions = {c["type"]: c for c in
                      certificate(bastion, "httpbin").get("status", {}).get("conditions", [])}
        if conditions.get("Issuing", {}).get("reason") == "Failed":
            break
        assert time.monotonic() < deadline, conditions
        time.sleep(0.1)
    assert conditions["Ready"]["status"] == "False"
    assert "the CA Secret cert-manager/no-such-ca does not exist" in \
        conditions["Issuing"]["message"]
    issuer = json.loads(bastion.cli("get", "clusterissuer", "broken", "-o", "json").stdout)
    assert issuer["status"]["conditions"][0]["status"] == "False"
    events = bastion.cli("get", "events", "-n", "istio-system", "-o", "json").stdout
    assert "will be retried: the CA Secret cert-manager/no-such-ca does not exist" in events
    described = bastion.cli("describe", "certificate", "httpbin", "-n", "istio-system").stdout
    assert "Warning" in described and "Failed" in described
    _, samples = scrape(bastion)
    assert (value(samples, "bastion_certificate_failures_total", namespace="istio-system",
                  certificate="httpbin") or 0) >= 1
