"""Manifests the tests and benchmarks write again and again: Secrets from generated
certificates, the sample backends' Service and Endpoints pointed at a local port, and the
Service and Endpoints of any backend listening on a local port."""

from __future__ import annotations

import base64
import json
import re

from tests.certs import Pair


def secret_json(name: str, namespace: str = "istio-system", secret_type: str | None = None,
                **values: bytes) -> str:
    """A Secret; value keys are written with `_` for `.` (`tls_crt` is `tls.crt`)."""
    body: dict[str, object] = {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {k.replace("_", "."): base64.b64encode(v).decode() for k, v in values.items()}}
    if secret_type:
        body["type"] = secret_type
    return json.dumps(body)


def tls_secret_json(name: str, pair: Pair, ca: bytes | None = None,
                    crl: bytes | None = None) -> str:
    """A `kubernetes.io/tls` Secret, with `ca.crt` (and `ca.crl`) for mutual TLS if given."""
    extra = {k: v for k, v in (("ca_crt", ca), ("ca_crl", crl)) if v is not None}
    return secret_json(name, secret_type="kubernetes.io/tls", tls_crt=pair.cert,
                       tls_key=pair.key, **extra)


def sample_manifest(text: str, port: int) -> str:
    """A sample's Service and Endpoints (`bastion samples manifest NAME`), with the Endpoints
    pointed at `port` (the last `port:` in the manifest is the Endpoints')."""
    return re.sub(r"port: \d+\n(?!.*port:)", f"port: {port}\n", text, flags=re.S)


def backend_yaml(name: str, port: int, address: str = "127.0.0.1", port_name: str = "http",
                 service_port: int = 80) -> str:
    """A Service NAME (port `service_port`) whose Endpoints are `address:port`."""
    return (f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\n"
            f"spec: {{ports: [{{name: {port_name}, port: {service_port}}}]}}\n---\n"
            f"apiVersion: v1\nkind: Endpoints\nmetadata: {{name: {name}}}\n"
            f"subsets: [{{addresses: [{{ip: {address}}}], "
            f"ports: [{{name: {port_name}, port: {port}}}]}}]\n")


def gateway_yaml(name: str, servers: list[tuple[str, str, str, list[str]]]) -> str:
    """A Gateway selecting the default ingress gateway, with one HTTPS server on 443 per
    (port name, TLS mode, credential, hosts)."""
    lines = [f"apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: {name}}}\n"
             "spec:\n  selector: {istio: ingressgateway}\n  servers:"]
    for port_name, mode, credential, hosts in servers:
        lines.append(f"  - port: {{number: 443, name: {port_name}, protocol: HTTPS}}\n"
                     f"    tls: {{mode: {mode}, credentialName: {credential}}}\n"
                     f"    hosts: {json.dumps(hosts)}")
    return "\n".join(lines) + "\n"


# The task's first Gateway, as most tests need it.
HTTPBIN_GATEWAY = gateway_yaml(
    "mygateway", [("https", "SIMPLE", "httpbin-credential", ["httpbin.example.com"])])
