"""`bastion analyze` on a running gateway: the live store by default (a Secret applied beside
the Gateway, not in the gateway's namespace, is found and named), files laid over the live
store with `-f` (nothing is written), the files alone with `--offline`, and `-o json`."""

from __future__ import annotations

import json
from pathlib import Path

from tests import certs
from tests.e2e.harness import Bastion
from tests.manifests import secret_json

GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: web, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [web.example.com]
    tls: {mode: SIMPLE, credentialName: web-cred}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: [web.example.com]
  gateways: [istio-system/web]
  http: [{directResponse: {status: 200}}]
"""

HINT = ("a Secret of that name is in default/web-cred, but a gateway reads credentials from "
        "its own namespace (istio-system)")


def test_analyze_live_with_files_and_offline(bastion: Bastion, tmp_path: Path) -> None:
    pair = certs.leaf("web.example.com", 31)
    misplaced = secret_json("web-cred", "default", "kubernetes.io/tls", tls_crt=pair.cert,
                            tls_key=pair.key)
    bastion.cli("apply", "-f", "-", input=GATEWAY + "---\n" + misplaced)

    live = bastion.cli("analyze", check=False)
    assert live.returncode == 1, live.stdout
    assert ("Error [IST0101] (Gateway istio-system/web) spec.servers[0].tls.credentialName: "
            "server not programmed: secret istio-system/web-cred not found; " + HINT
            ) in live.stdout, live.stdout

    fixed = tmp_path / "secret.json"
    fixed.write_text(secret_json("web-cred", "istio-system", "kubernetes.io/tls",
                                 tls_crt=pair.cert, tls_key=pair.key))
    overlay = bastion.cli("analyze", "-f", str(fixed), check=False)
    assert overlay.returncode == 0, overlay.stdout
    assert overlay.stdout.strip() == ("\u2714 No validation issues found when analyzing the "
                                      "live configuration with the files.")
    # Nothing was written: the live store still has the problem.
    assert bastion.cli("get", "secret", "web-cred", "-n", "istio-system",
                       check=False).returncode != 0
    as_json = json.loads(bastion.cli("analyze", "-o", "json", check=False).stdout)
    assert [(m["code"], m["level"], m["origin"], m["field"]) for m in as_json] == [
        ("IST0101", "Error", "Gateway istio-system/web", "spec.servers[0].tls.credentialName")]
    assert all("PRIVATE KEY" not in m["message"] for m in as_json)

    gateway_file = tmp_path / "gateway.yaml"
    gateway_file.write_text(GATEWAY)
    offline = bastion.cli("analyze", "--offline", "-f", str(gateway_file), check=False)
    assert offline.returncode == 1
    assert "secret istio-system/web-cred not found" in offline.stdout
    assert "default/web-cred" not in offline.stdout  # the files alone hold no such Secret
