"""Admission: one line naming the object and field, and only the bad object refused."""

from __future__ import annotations

import base64

import pytest
import yaml

from bastion.api.admission import Admitted, Refused, admit

GATEWAY = """
apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata: {name: mygateway}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    tls: {mode: SIMPLE, credentialName: httpbin-credential}
    hosts: [httpbin.example.com]
"""


def gateway(**server_changes: object) -> dict:
    doc = yaml.safe_load(GATEWAY)
    doc["spec"]["servers"][0].update(server_changes)
    return doc


def refused(obj: object) -> str:
    verdict = admit(obj)
    assert isinstance(verdict, Refused), verdict
    assert "\n" not in verdict.message
    return verdict.message


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha3"])
def test_all_served_istio_versions_are_accepted(version: str) -> None:
    doc = gateway()
    doc["apiVersion"] = f"networking.istio.io/{version}"
    verdict = admit(doc)
    assert isinstance(verdict, Admitted)
    assert verdict.key.namespace == "default"


def test_gateway_without_port_name() -> None:
    doc = gateway(port={"number": 443, "protocol": "HTTPS"})
    assert refused(doc) == "Gateway default/mygateway: spec.servers[0].port.name: required"


def test_duplicate_port_names() -> None:
    doc = gateway()
    doc["spec"]["servers"].append(dict(doc["spec"]["servers"][0], hosts=["b.example.com"]))
    assert "spec.servers[1].port.name: port names in servers must be unique" in refused(doc)


def test_https_without_tls_and_mode_without_credential() -> None:
    doc = gateway()
    del doc["spec"]["servers"][0]["tls"]
    assert refused(doc).endswith("spec.servers[0].tls: required for protocol HTTPS")
    doc = gateway(tls={"mode": "SIMPLE"})
    assert "spec.servers[0].tls.serverCertificate: SIMPLE TLS requires a server certificate " \
        "(or credentialName)" in refused(doc)


def test_unknown_field_and_bad_enum_are_named() -> None:
    doc = gateway(prot="x")
    assert refused(doc) == "Gateway default/mygateway: spec.servers[0].prot: unknown field"
    doc = gateway(tls={"mode": "STRICT", "credentialName": "x"})
    assert "spec.servers[0].tls.mode:" in refused(doc)


def test_invalid_hosts() -> None:
    assert "spec.servers[0].hosts[0]: host name 'a.*.com': label '*' is invalid" in refused(
        gateway(hosts=["a.*.com"]))
    assert "spec.servers[0].hosts: at least one value is required" in refused(gateway(hosts=[]))


def test_virtual_service_without_hosts_is_a_delegate() -> None:
    doc = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
           "metadata": {"name": "httpbin", "namespace": "default"},
           "spec": {"gateways": ["mygateway"]}}
    assert refused(doc) == (
        "VirtualService default/httpbin: spec.gateways: a delegate VirtualService (no hosts) "
        "cannot have gateways; spec: one of http, tls or tcp is required")


def test_virtual_service_rules() -> None:
    doc = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
           "metadata": {"name": "vs"},
           "spec": {"hosts": ["a.example.com"], "http": [
               {"match": [{"uri": {"prefix": "/a", "exact": "/b"}}],
                "route": [{"destination": {"host": "a"}}]},
           ]}}
    assert "spec.http[0].match[0].uri: only one of exact, prefix, regex" in refused(doc)
    doc["spec"]["http"] = [{"match": [{"uri": {"prefix": "/c"}}]}]
    assert "spec.http[0]: one of route, redirect or directResponse is required" in refused(doc)
    # Semantic rules run on objects the schema accepts.
    doc["spec"]["http"] = [{"match": [{"uri": {"regex": "(?=x)"}}],
                            "route": [{"destination": {"host": "a"}}]}]
    assert refused(doc).endswith("spec.http[0].match[0].uri.regex: invalid RE2 regular "
                                 "expression: invalid perl operator: (?=")
    doc["spec"]["http"][0]["match"][0]["uri"]["regex"] = "/(abcdefghijklmnopqrstuvwxyz|0123456789){1,1000}"
    assert "regular expression too large for RE2" in refused(doc)


def test_virtual_service_values_envoy_would_refuse() -> None:
    def vs(rule: dict) -> dict:
        return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                "metadata": {"name": "vs"}, "spec": {"hosts": ["a.example.com"], "http": [rule]}}

    dest = [{"destination": {"host": "a"}}]
    assert "must not contain CR, LF or NUL" in refused(vs(
        {"match": [{"uri": {"prefix": "/a\nb"}}], "route": dest}))
    assert "header 'host' cannot be changed" in refused(vs(
        {"route": dest, "headers": {"response": {"set": {"host": "x"}}}}))
    verdict = admit(vs({"route": dest, "headers": {"response": {"remove": ["bad header"]}}}))
    assert isinstance(verdict, Admitted)  # Istio accepts it; Envoy would not: left out
    assert "'bad header' is not a valid header name; this operation is left out" in str(
        verdict.warnings[0])
    assert "spec.http[0].directResponse.body: at most 1 MB" in refused(vs(
        {"directResponse": {"status": 200, "body": {"string": "x" * (1024 * 1024 + 1)}}}))
    assert isinstance(admit(vs({"match": [{"uri": {"regex": r"/\\p{Greek}+"}}], "route": dest})),
                      Admitted)


def test_secret_rules() -> None:
    base = {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "istio-system"}}
    assert "data[tls.key]: required" in refused({**base, "type": "kubernetes.io/tls",
                                                 "stringData": {"tls.crt": "x"}})
    assert "data: value of key 'cert' is not valid base64" in refused(
        {**base, "data": {"cert": "%%%"}})
    verdict = admit({**base, "data": {"a": base64.b64encode(b"1").decode()},
                     "stringData": {"b": "2"}})
    assert isinstance(verdict, Admitted)
    assert "stringData" not in verdict.body
    assert verdict.body["data"] == {"a": "MQ==", "b": "Mg=="}


def test_unknown_kind_is_stored_not_acted_on() -> None:
    verdict = admit({"apiVersion": "apps/v1", "kind": "Deployment",
                     "metadata": {"name": "httpbin"}, "spec": {"anything": 1}})
    assert isinstance(verdict, Admitted)
    assert verdict.model is None
    assert verdict.info.resource == "deployment.apps"


def test_envelope_errors() -> None:
    assert refused({"kind": "Gateway", "metadata": {"name": "g"}}).endswith("apiVersion: required")
    assert refused({"apiVersion": "v1", "metadata": {"name": "g"}}).endswith("kind: required")
    assert refused({"apiVersion": "v1", "kind": "Secret", "metadata": {}}).endswith(
        "metadata.name: required")
    assert "metadata.name: must be a lower-case" in refused(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "Bad_Name"}})
    assert "apiVersion: version 'v2' is not served" in refused(
        {"apiVersion": "networking.istio.io/v2", "kind": "Gateway", "metadata": {"name": "g"}})
    assert refused(["not", "a", "mapping"]).endswith("an object must be a mapping")


def test_remembered_model_equals_admitting_the_stored_object(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The pipeline keeps the model admitted on apply (with the store's metadata) instead of
    admitting the stored object again; both must be the same."""
    import asyncio

    from bastion.services.objects import ObjectService
    from bastion.services.pipeline import Pipeline, PipelineConfig
    from bastion.store import SqliteStore

    class NoDataPlane:
        def publish(self, build):  # type: ignore[no-untyped-def]
            return []

        def groups(self):  # type: ignore[no-untyped-def]
            return set()

        def secrets(self):  # type: ignore[no-untyped-def]
            return {}

    async def scenario() -> None:
        store = SqliteStore(tmp_path / "s.db")
        pipeline = Pipeline(store, NoDataPlane(), PipelineConfig())
        ObjectService(store, pipeline).apply([gateway(), {
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "istio-system"},
            "stringData": {"a": "b"}}], "default")
        assert len(store.all()) == 2
        for stored in store.all():
            assert pipeline.inputs.model(stored.key) == admit(stored.body).model

    asyncio.run(scenario())
