"""Bad input gets one clear line, changes nothing, and never reaches Envoy."""

from __future__ import annotations

import base64
from pathlib import Path

from tests.e2e.harness import Backend, Bastion, curl, make_leaf, make_root
from tests.e2e.test_task_single_host import apply_httpbin_sample

GOOD = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: mygateway}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    tls: {mode: SIMPLE, credentialName: httpbin-credential}
    hosts: [httpbin.example.com]
  - port: {number: 443, name: https-broken, protocol: HTTPS}
    tls: {mode: SIMPLE, credentialName: broken-credential}
    hosts: [broken.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin.example.com, broken.example.com]
  gateways: [mygateway]
  http:
  - route: [{destination: {host: httpbin, port: {number: 8000}}}]
"""


def test_bad_input_is_refused_and_changes_nothing(bastion: Bastion, httpbin: Backend,
                                                   tmp_path: Path) -> None:
    make_root(tmp_path)
    make_leaf(tmp_path, "httpbin.example.com", "httpbin organization", 0)
    apply_httpbin_sample(bastion, httpbin)
    bastion.cli("create", "-n", "istio-system", "secret", "tls", "httpbin-credential",
                "--key=httpbin.example.com.key", "--cert=httpbin.example.com.crt")
    bastion.cli("apply", "-f", "-", input=GOOD)
    revision_before = bastion.status()["revision"]

    # Malformed YAML: refused before anything is sent.
    bad_yaml = bastion.cli("apply", "-f", "-", input="kind: Gateway\nspec:\n  servers: [\n",
                           check=False)
    assert bad_yaml.returncode == 1
    assert bad_yaml.stderr.count("\n") == 1
    assert bad_yaml.stderr.startswith("error: error parsing STDIN: malformed YAML at line")

    # A Gateway without a port name, beside a valid object in the same file: only it is refused.
    mixed = ("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: noname}\n"
             "spec:\n  servers:\n  - port: {number: 443, protocol: HTTPS}\n"
             "    hosts: [x.example.com]\n    tls: {mode: SIMPLE, credentialName: x}\n"
             "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine}\ndata: {a: b}\n")
    result = bastion.cli("apply", "-f", "-", input=mixed, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: Gateway default/noname: spec.servers[0].port.name: required")
    assert "configmap/fine created" in result.stdout
    assert bastion.cli("get", "gateway", "noname", check=False).returncode == 1

    # A VirtualService with no hosts is a delegate, which cannot name gateways.
    result = bastion.cli("apply", "-f", "-", check=False, input=(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: nohosts}\n"
        "spec:\n  gateways: [mygateway]\n  http:\n  - route: [{destination: {host: httpbin}}]\n"))
    assert result.returncode == 1
    assert result.stderr.strip() == ("error: VirtualService default/nohosts: spec.gateways: a "
                                     "delegate VirtualService (no hosts) cannot have gateways")
    assert bastion.status()["revision"] == revision_before + 1  # only the ConfigMap was stored

    # A Secret whose certificate is not PEM feeds the second server: stored, but that server is
    # reported not ready, its host refused, and the other host keeps serving.
    key = (tmp_path / "httpbin.example.com.key").read_bytes()
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
              "metadata": {"name": "broken-credential", "namespace": "istio-system"},
              "data": {"tls.crt": base64.b64encode(b"not a certificate").decode(),
                       "tls.key": base64.b64encode(key).decode()}}
    import json

    bastion.cli("apply", "-f", "-", input=json.dumps(secret))
    bastion.cli("wait", "--for=distribution", "--timeout", "10s", "-n", "istio-system",
                "secret", "broken-credential")
    status_text = bastion.cli("status").stdout
    assert ("Gateway default/mygateway: spec.servers[1].tls.credentialName: server not "
            "programmed: secret istio-system/broken-credential: certificate is not valid PEM"
            ) in status_text
    assert "certificate is not valid PEM" in (bastion.state_dir / "bastion.log").read_text()
    described = bastion.cli("describe", "gateway", "mygateway").stdout
    assert ("[error] spec.servers[1].tls.credentialName: server not programmed: secret "
            "istio-system/broken-credential: certificate is not valid PEM") in described
    assert "Distributed:  yes" in described
    cacert = tmp_path / "example.com.crt"
    assert curl("broken.example.com", bastion.secure_port, "/status/200", cacert).returncode != 0
    ok = curl("httpbin.example.com", bastion.secure_port, "/status/200", cacert)
    assert ok.returncode == 0 and "HTTP/2 200" in ok.stderr, ok.stderr

    # Nothing invalid ever reached Envoy: it rejected nothing, and holds only the good secret.
    gateway = bastion.status()["gateways"][0]
    assert all(t["nacks"] == 0 for t in gateway["types"].values())
    # (the good credential, and the group's session-ticket keys)
    assert gateway["types"]["SDS"]["resources"] == 2
    assert "rejected" not in bastion.envoy_log().lower()

    # Private keys appear in no output of the run.
    outputs = [bastion.cli("get", "secrets", "-n", "istio-system", "-o", "yaml").stdout,
               bastion.cli("get", "secret", "broken-credential", "-n", "istio-system",
                           "-o", "json").stdout,
               bastion.cli("status", "-o", "json").stdout, bastion.cli("logs").stdout]
    body = b"".join(key.splitlines()[1:3]).decode()
    for text in outputs:
        assert "PRIVATE KEY" not in text and body not in text
        assert base64.b64encode(key).decode()[:40] not in text
