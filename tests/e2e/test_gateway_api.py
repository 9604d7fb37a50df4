"""The Gateway API's objects on a running control plane: validated at apply as their CRDs
validate them (the field named), listed under their own short names beside Istio's, and a
GatewayClass for bastion's (or Istio's) controller Accepted, as `kubectl wait` reads it."""

from __future__ import annotations

from tests.e2e.harness import Bastion

CLASS = """
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: istio}
spec: {controllerName: istio.io/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: elsewhere}
spec: {controllerName: example.com/another-controller}
"""
GATEWAY = """
apiVersion: gateway.networking.k8s.io/v1beta1
kind: Gateway
metadata: {name: mygateway, namespace: istio-system}
spec:
  gatewayClassName: istio
  listeners:
  - name: https
    hostname: httpbin.example.com
    port: 443
    protocol: HTTPS
    tls:
      mode: Terminate
      certificateRefs: [{name: httpbin-credential}]
    allowedRoutes:
      namespaces:
        from: Selector
        selector: {matchLabels: {kubernetes.io/metadata.name: default}}
"""


def test_gateway_api_objects_are_validated_listed_and_classes_accepted(
        bastion: Bastion) -> None:
    bastion.cli("apply", "-f", "-", input=CLASS + "---\n" + GATEWAY)
    waited = bastion.cli("wait", "--for=condition=Accepted", "gatewayclass/istio",
                         "--timeout", "10s")
    assert "gatewayclass.gateway.networking.k8s.io/istio condition met" in waited.stdout
    other = bastion.cli("get", "gatewayclass", "elsewhere", "-o", "json").stdout
    assert '"status"' not in other  # another controller's class is not ours to accept
    assert "mygateway" in bastion.cli("get", "gtw", "-n", "istio-system").stdout
    assert "mygateway" not in bastion.cli("get", "gw", "-n", "istio-system").stdout
    assert "mygateway" in bastion.cli(
        "get", "gateways.gateway.networking.k8s.io", "-n", "istio-system").stdout

    refused = bastion.cli("apply", "-f", "-", check=False, input=GATEWAY.replace(
        "      certificateRefs: [{name: httpbin-credential}]\n", ""))
    assert refused.returncode != 0
    assert ("Gateway istio-system/mygateway: spec.listeners[0].tls: certificateRefs or "
            "options must be specified when mode is Terminate") in refused.stderr
