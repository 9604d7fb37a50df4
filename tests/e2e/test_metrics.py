"""The Prometheus endpoint of a running gateway, scraped: the expiry gauges carry the served
certificate's serial and validity, the push and ACK counters move when a credential rotates,
objects are counted by validity, and no key material is in it."""

from __future__ import annotations

import socket
import ssl
import time

from cryptography import x509

from tests import certs
from tests.e2e.harness import Bastion
from tests.e2e.scrape import scrape, value
from tests.manifests import HTTPBIN_GATEWAY, tls_secret_json

HOST = "httpbin.example.com"
LABELS = {"namespace": "istio-system", "secret": "httpbin-credential",
          "resource": "httpbin-credential"}


def served_certificate(port: int) -> x509.Certificate:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=HOST) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def test_metrics_follow_what_the_gateway_serves(bastion: Bastion) -> None:
    bastion.cli("apply", "-f", "-", input=tls_secret_json(
        "httpbin-credential", certs.leaf(HOST, 11)) + "\n---\n" + HTTPBIN_GATEWAY)
    bastion.cli("wait", "--timeout", "10s", "gateway", "mygateway")
    served = served_certificate(bastion.secure_port)
    text, before = scrape(bastion)
    serial = format(served.serial_number, "x")
    assert value(before, "bastion_certificate_not_after_seconds", **LABELS, serial=serial) == \
        served.not_valid_after_utc.timestamp()
    assert value(before, "bastion_certificate_not_before_seconds", **LABELS, serial=serial) == \
        served.not_valid_before_utc.timestamp()
    assert value(before, "bastion_gateways_connected") == 1
    # The credential, and the session-ticket keys the control plane keeps (bastion-system).
    assert value(before, "bastion_config_objects", kind="Secret", valid="true") == 2
    assert (value(before, "bastion_build_seconds_count") or 0) >= 1
    assert "PRIVATE KEY" not in text
    status = bastion.cli("status").stdout
    assert (f"serial {serial}" in status and "not before 2026-01-01T00:00:00Z" in status
            and "not after 2035-12-30T00:00:00Z" in status), status

    bastion.cli("apply", "-f", "-", input=tls_secret_json("httpbin-credential",
                                                          certs.leaf(HOST, 22)))
    bastion.cli("wait", "--timeout", "10s", "-n", "istio-system", "secret", "httpbin-credential")
    deadline = time.monotonic() + 10
    while True:  # the ACK reaches the control plane a moment after `wait` returns
        text, after = scrape(bastion)
        acks = value(after, "bastion_xds_acks_total", type="SDS") or 0
        if acks > (value(before, "bastion_xds_acks_total", type="SDS") or 0):
            break
        assert time.monotonic() < deadline, "no SDS ACK counted after the rotation"
        time.sleep(0.05)
    assert value(after, "bastion_xds_pushes_total", type="SDS") > \
        value(before, "bastion_xds_pushes_total", type="SDS")
    assert value(after, "bastion_xds_pushes_total", type="LDS") == \
        value(before, "bastion_xds_pushes_total", type="LDS")  # only the secret was pushed
    assert value(after, "bastion_xds_push_seconds_count", type="SDS") > \
        value(before, "bastion_xds_push_seconds_count", type="SDS")
    assert value(after, "bastion_certificate_not_after_seconds", **LABELS, serial="16") is not None
    assert value(after, "bastion_certificate_not_after_seconds", **LABELS, serial=serial) is None

    bastion.cli("apply", "-f", "-", input=HTTPBIN_GATEWAY.replace("httpbin-credential",
                                                                  "missing-credential"))
    deadline = time.monotonic() + 10
    while value(scrape(bastion)[1], "bastion_config_objects", kind="Gateway", valid="false") != 1:
        assert time.monotonic() < deadline, "the Gateway's error is not counted"
        time.sleep(0.05)
