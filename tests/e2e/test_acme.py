"""ACME against a real ACME server (Pebble), end to end with real Envoy and curl: an ACME
Issuer's Certificate is issued by HTTP-01 through bastion's own gateway on port 80, served, and
verified with Pebble's root; a short duration renews it with no failed handshake meanwhile;
the account key and the order survive a control-plane restart; a challenge made to fail is
reported in status and events while the old certificate keeps serving."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Bastion, curl, handshake_serial
from tests.e2e.loops import HandshakeLoop
from tests.e2e.pebble import Pebble

HOST = "httpbin.example.com"


def issuer(pebble: Pebble) -> str:
    return f"""
apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {{name: pebble, namespace: istio-system}}
spec:
  acme:
    server: {pebble.directory}
    email: ops@example.com
    caBundle: {pebble.ca_bundle}
    privateKeySecretRef: {{name: pebble-account}}
    solvers: [{{http01: {{ingress: {{ingressClassName: istio}}}}}}]
"""


def certificate(hosts: list[str], renew_before: str = "20m") -> str:
    return f"""
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {{name: httpbin, namespace: istio-system}}
spec:
  secretName: httpbin-credential
  dnsNames: {json.dumps(hosts)}
  duration: 1h
  renewBefore: {renew_before}
  privateKey: {{algorithm: ECDSA}}
  issuerRef: {{name: pebble}}
"""


def gateway(hosts: list[str]) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: mygateway}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 443, name: https, protocol: HTTPS}}
    tls: {{mode: SIMPLE, credentialName: httpbin-credential}}
    hosts: {json.dumps(hosts)}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: httpbin}}
spec:
  hosts: {json.dumps(hosts)}
  gateways: [mygateway]
  http: [{{directResponse: {{status: 200, body: {{string: issued-by-pebble}}}}}}]
"""


@pytest.fixture
def acme(tmp_path: Path) -> Iterator[tuple[Bastion, Pebble]]:
    bastion = Bastion(tmp_path, serve_args=("--certificate-backoff", "1"))
    pebble = Pebble(tmp_path / "pebble", bastion.http_port)
    pebble.start()
    try:
        bastion.start()
        try:
            yield bastion, pebble
        finally:
            bastion.stop()
    finally:
        pebble.stop()


def conditions(bastion: Bastion) -> dict[str, dict[str, str]]:
    body = json.loads(bastion.cli("get", "certificate", "httpbin", "-n", "istio-system", "-o",
                                  "json").stdout)
    return {c["type"]: c for c in body.get("status", {}).get("conditions", [])}


def ready(bastion: Bastion, pebble: Pebble) -> None:
    waited = bastion.cli("wait", "--for=condition=Ready", "certificate/httpbin", "-n",
                         "istio-system", "--timeout", "60s", check=False)
    assert waited.returncode == 0, (waited.stderr, conditions(bastion), pebble.log()[-2000:])


def serving(bastion: Bastion, root: Path, host: str = HOST) -> int:
    deadline = time.monotonic() + 15
    while (answer := curl(host, bastion.secure_port, "/", root)).stdout != "issued-by-pebble":
        assert time.monotonic() < deadline, answer.stderr
        time.sleep(0.1)
    return handshake_serial(host, bastion.secure_port, root)


def issued(bastion: Bastion, pebble: Pebble, tmp_path: Path) -> tuple[Path, int]:
    """The Certificate issued and served: (Pebble's root, the serial served), verified with
    the root through the chain Pebble sent."""
    bastion.cli("apply", "-f", "-", input="---\n".join(
        [issuer(pebble), certificate([HOST]), gateway([HOST])]))
    ready(bastion, pebble)
    root = tmp_path / "pebble-root.crt"
    root.write_bytes(pebble.root())
    return root, serving(bastion, root)


def test_issued_served_renewed_and_kept_across_a_restart(acme: tuple[Bastion, Pebble],
                                                         tmp_path: Path) -> None:
    bastion, pebble = acme
    root, first = issued(bastion, pebble, tmp_path)
    account = bastion.cli("get", "secret", "pebble-account", "-n", "istio-system", "-o",
                          "jsonpath={.metadata.resourceVersion}").stdout
    orders = json.loads(bastion.cli("get", "orders", "-n", "istio-system", "-o",
                                    "json").stdout)["items"]
    assert [o["status"]["state"] for o in orders] == ["valid"]
    assert orders[0]["status"]["url"].startswith(f"https://localhost:{pebble.port}/")
    assert bastion.cli("get", "challenges", "-n", "istio-system").stdout == ""  # withdrawn

    # The account key and the order survive a restart; nothing is issued again.
    bastion.kill_control_plane()
    bastion.start()
    ready(bastion, pebble)
    assert handshake_serial(HOST, bastion.secure_port, root) == first
    assert bastion.cli("get", "secret", "pebble-account", "-n", "istio-system", "-o",
                       "jsonpath={.metadata.resourceVersion}").stdout == account
    assert len(json.loads(bastion.cli("get", "orders", "-n", "istio-system", "-o",
                                      "json").stdout)["items"]) == 1

    # renewBefore 59m55s of a 1h certificate: due 5 s after issuance.
    loop = HandshakeLoop(HOST, bastion.secure_port, root, max_count=20000, max_seconds=60)
    loop.start()
    bastion.cli("apply", "-f", "-", input=certificate([HOST], renew_before="59m55s"))
    deadline = time.monotonic() + 45
    while handshake_serial(HOST, bastion.secure_port, root) == first:
        assert time.monotonic() < deadline, (conditions(bastion), pebble.log()[-2000:])
        time.sleep(0.2)
    tally = loop.finish()
    assert tally.errors == [], tally.errors[:5]
    assert tally.ok > 10 and len(set(tally.serials)) >= 2
    assert bastion.cli("get", "secret", "pebble-account", "-n", "istio-system", "-o",
                       "jsonpath={.metadata.resourceVersion}").stdout == account
    # No key material anywhere a person (or a scraper) reads.
    shown = [bastion.serve_log(), bastion.envoy_log(), bastion.cli("status").stdout,
             bastion.cli("get", "events", "-A", "-o", "yaml").stdout,
             bastion.cli("get", "certificates", "-A", "-o", "yaml").stdout,
             bastion.cli("get", "secrets", "-A", "-o", "yaml").stdout,
             bastion.cli("describe", "certificate", "httpbin", "-n", "istio-system").stdout]
    assert all("PRIVATE KEY" not in text for text in shown)


def test_a_failing_challenge_is_reported_and_the_old_certificate_serves(
        acme: tuple[Bastion, Pebble], tmp_path: Path) -> None:
    bastion, pebble = acme
    root, first = issued(bastion, pebble, tmp_path)

    broken = "broken.example.com"
    pebble.point(broken, "127.0.0.2")  # Pebble looks for the gateway where it is not
    bastion.cli("apply", "-f", "-", input="---\n".join(
        [certificate([HOST, broken]), gateway([HOST, broken])]))
    deadline = time.monotonic() + 60
    while conditions(bastion).get("Issuing", {}).get("reason") != "Failed":
        assert time.monotonic() < deadline, (conditions(bastion), pebble.log()[-2000:])
        time.sleep(0.2)
    issuing = conditions(bastion)["Issuing"]
    assert broken in issuing["message"], issuing
    events = bastion.cli("describe", "certificate", "httpbin", "-n", "istio-system").stdout
    assert "Failed" in events and broken in events
    # The old certificate keeps serving, and the order is kept as invalid.
    assert handshake_serial(HOST, bastion.secure_port, root) == first
    assert curl(HOST, bastion.secure_port, "/", root).stdout == "issued-by-pebble"
    states = sorted(o["status"]["state"] for o in json.loads(bastion.cli(
        "get", "orders", "-n", "istio-system", "-o", "json").stdout)["items"])
    assert "invalid" in states


def test_an_order_pending_at_a_crash_is_carried_on(acme: tuple[Bastion, Pebble],
                                                   tmp_path: Path) -> None:
    """No Gateway names the host yet, so the challenge cannot be answered and the order stays
    pending: the control plane is killed then, and the one started after it carries that
    order on (same URL, one Order) once the Gateway exists."""
    bastion, pebble = acme
    bastion.cli("apply", "-f", "-", input="---\n".join([issuer(pebble), certificate([HOST])]))
    deadline = time.monotonic() + 30
    while True:
        orders = json.loads(bastion.cli("get", "orders", "-n", "istio-system", "-o",
                                        "json").stdout)["items"]
        if orders and orders[0].get("status", {}).get("url"):
            break
        assert time.monotonic() < deadline, (orders, pebble.log()[-2000:])
        time.sleep(0.05)
    assert orders[0]["status"]["state"] == "pending"
    url = orders[0]["status"]["url"]
    bastion.kill_control_plane()
    bastion.start()
    bastion.cli("apply", "-f", "-", input=gateway([HOST]))
    ready(bastion, pebble)
    orders = json.loads(bastion.cli("get", "orders", "-n", "istio-system", "-o",
                                    "json").stdout)["items"]
    assert [(o["status"]["url"], o["status"]["state"]) for o in orders] == [(url, "valid")]
    assert "carrying on order " + url in bastion.serve_log()
    root = tmp_path / "pebble-root.crt"
    root.write_bytes(pebble.root())
    serving(bastion, root)
