"""The TLS posture, checked by real scanners: sslyze finds a default server compliant with
Mozilla's "intermediate" profile and a `minProtocolVersion: TLSV1_3` server compliant with
"modern"; testssl.sh reports no vulnerability. Certificate-trust findings are set aside: the test
CAs are private."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests import certs
from tests.e2e.harness import Bastion, curl
from tests.manifests import tls_secret_json

GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: scanned}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https-default, protocol: HTTPS}
    hosts: [intermediate.example.com]
    tls: {mode: SIMPLE, credentialName: intermediate}
  - port: {number: 443, name: https-modern, protocol: HTTPS}
    hosts: [modern.example.com]
    tls: {mode: SIMPLE, credentialName: modern, minProtocolVersion: TLSV1_3}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: scanned}
spec:
  hosts: [intermediate.example.com, modern.example.com]
  gateways: [scanned]
  http:
  - directResponse: {status: 200, body: {string: scanned}}
"""
# Mozilla's profiles want certificates of at most a year; the trust in the private CA aside.
LIFESPAN = (-1, 60)
TRUST = {"certificate_path_validation"}


def serve(bastion: Bastion, tmp_path: Path) -> None:
    bastion.cli("apply", "-f", "-", input="\n---\n".join([
        tls_secret_json("intermediate", certs.leaf("intermediate.example.com", 100,
                                                   valid_days=LIFESPAN)),
        tls_secret_json("modern", certs.leaf("modern.example.com", 101, kind="ec",
                                             valid_days=LIFESPAN)),
        GATEWAY]))
    cafile = tmp_path / "roots.crt"
    cafile.write_bytes(certs.ca("root1")[0].cert + certs.ca("root1", "ec")[0].cert)
    deadline = time.monotonic() + 10
    while curl("modern.example.com", bastion.secure_port, "/", cafile).stdout != "scanned":
        assert time.monotonic() < deadline, "gateway not serving"
        time.sleep(0.1)


def mozilla_issues(host: str, port: int, profile: str) -> dict[str, str]:
    from sslyze import (
        Scanner,
        ServerNetworkConfiguration,
        ServerNetworkLocation,
        ServerScanRequest,
    )
    from sslyze.mozilla_tls_profile.tls_config_checker import (
        SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER,
        MozillaTlsConfiguration,
        ServerNotCompliantWithTlsConfiguration,
        TlsConfigurationEnum,
        check_server_against_tls_configuration,
    )

    request = ServerScanRequest(
        server_location=ServerNetworkLocation(host, port, ip_address="127.0.0.1"),
        network_configuration=ServerNetworkConfiguration(tls_server_name_indication=host),
        scan_commands=SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER)
    scanner = Scanner()
    scanner.queue_scans([request])
    (result,) = list(scanner.get_results())
    config = MozillaTlsConfiguration.get(TlsConfigurationEnum(profile))
    try:
        check_server_against_tls_configuration(result, config)
    except ServerNotCompliantWithTlsConfiguration as exc:
        return {k: v for k, v in exc.issues.items() if k not in TRUST}
    return {}


def test_sslyze_finds_mozilla_intermediate_and_modern(bastion: Bastion, tmp_path: Path) -> None:
    serve(bastion, tmp_path)
    assert mozilla_issues("intermediate.example.com", bastion.secure_port,
                          "intermediate") == {}
    assert mozilla_issues("modern.example.com", bastion.secure_port, "modern") == {}


def test_testssl_reports_no_vulnerability(bastion: Bastion, tmp_path: Path) -> None:
    testssl = shutil.which("testssl") or shutil.which("testssl.sh")
    if testssl is None:
        pytest.fail("testssl.sh is required (Debian package testssl.sh; .ci/run installs it)")
    serve(bastion, tmp_path)
    report = tmp_path / "testssl.json"
    result = subprocess.run(
        [testssl, "--quiet", "--warnings", "off", "--color", "0", "--vulnerable",
         "--sneaky", "--ip", "127.0.0.1", "--jsonfile", str(report),
         f"intermediate.example.com:{bastion.secure_port}"],
        capture_output=True, text=True, timeout=600)
    assert report.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    findings = json.loads(report.read_text())
    checked = [f for f in findings if f.get("id") not in ("scanProblem", "engine_problem")]
    assert len(checked) >= 10, findings  # the vulnerability checks did run
    vulnerable = [f for f in checked
                  if f.get("severity") in ("LOW", "MEDIUM", "HIGH", "CRITICAL")]
    assert vulnerable == [], vulnerable
