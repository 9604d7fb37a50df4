"""Hostile and malformed input through the pure core: whatever arrives, admission answers with
an admission or a one-line refusal, translation never raises, and every snapshot it builds is
consistent (nothing invalid can be published)."""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.api.admission import Admitted, Refused, admit
from bastion.build import Inputs, build
from bastion.cli.loader import load_manifests
from bastion.dataplane.envoy import to_xds
from bastion.dataplane.envoy.driver import render
from bastion.dataplane.envoy.snapshot import build_snapshot, consistency_problems
from bastion.errors import InputError
from bastion.translate.istio import Options, Resources, Workload, to_ir
from tests import certs
from tests.golden.cases import objects
from tests.golden.test_translate import CASES

FIELD_NAMES = ["apiVersion", "kind", "metadata", "name", "namespace", "spec", "servers", "port",
               "number", "protocol", "hosts", "tls", "mode", "credentialName", "http", "match",
               "uri", "prefix", "exact", "regex", "route", "destination", "host", "gateways",
               "data", "stringData", "type", "subsets", "addresses", "ip", "ports", "selector",
               "endpoints", "weight", "headers", "timeout", "retries", "redirect"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**33, 2**33),
                    st.floats(allow_nan=True), st.text(max_size=30),
                    st.sampled_from(["SIMPLE", "MUTUAL", "HTTPS", "HTTP", "*", "*.example.com",
                                     "networking.istio.io/v1", "v1", "Gateway", "Secret",
                                     "VirtualService", "Service", "Endpoints", "ServiceEntry",
                                     "default", "istio-system", "/", "a.example.com"]))
values = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8)), children,
                    max_size=5)), max_leaves=40)


def base_objects() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted(CASES.glob("*.in.yaml")):
        out.extend(objects(yaml.safe_load(path.read_text())))
    return out


BASE = base_objects()


def translate_all(objects: list[Any]) -> None:
    models = []
    for obj in objects:
        verdict = admit(obj)
        assert isinstance(verdict, (Admitted, Refused))
        if isinstance(verdict, Refused):
            assert "\n" not in verdict.message and verdict.message
        elif verdict.model is not None:
            models.append(verdict.model)
    result = to_ir(Resources.from_models(models))
    snapshot = build_snapshot(to_xds(result.config), 1)
    assert consistency_problems(snapshot) == []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(values, max_size=4))
def test_random_values_never_crash(objects: list[Any]) -> None:
    translate_all(objects)


def _mutate(obj: Any, path: list[Any], replacement: Any) -> Any:
    obj = copy.deepcopy(obj)
    target = obj
    for key in path[:-1]:
        target = target[key]
    if replacement is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = replacement
    return obj


_DELETE = object()


def _paths(value: Any, prefix: list[Any] | None = None) -> list[list[Any]]:
    prefix = prefix or []
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append([*prefix, k])
            out.extend(_paths(v, [*prefix, k]))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.append([*prefix, i])
            out.extend(_paths(v, [*prefix, i]))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_valid_config_never_crashes(data: st.DataObject) -> None:
    objects = copy.deepcopy(BASE)
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(objects) - 1))
        paths = _paths(objects[index])
        if not paths:
            continue
        path = data.draw(st.sampled_from(paths))
        replacement = data.draw(st.one_of(st.just(_DELETE), values))
        objects[index] = _mutate(objects[index], path, replacement)
    translate_all(objects)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_random_yaml_text_is_read_or_refused_in_one_line(text: str) -> None:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        handle.write(text)
    try:
        load_manifests((handle.name,))
    except InputError as exc:
        assert "\n" not in str(exc)
    finally:
        Path(handle.name).unlink()


def test_deeply_nested_and_huge_documents(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 5000)
    with pytest.raises(InputError, match=r"nested too deeply|malformed YAML"):
        load_manifests((str(deep),))
    nested: dict[str, Any] = {}
    cursor = nested
    for _ in range(500):
        cursor["spec"] = {}
        cursor = cursor["spec"]
    verdict = admit({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                     "spec": nested})
    assert isinstance(verdict, Refused) and "nested more than" in verdict.message
    huge = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
            "data": {"blob": "x" * 20_000_000}}
    assert isinstance(admit(huge), Admitted)


@pytest.mark.parametrize("material", [
    b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    b"-----BEGIN CERTIFICATE-----\n" + base64.b64encode(b"\x30\x82" + b"\x00" * 64) +
    b"\n-----END CERTIFICATE-----\n",
    b"\xff\xfe\x00garbage",
    b"",
])
def test_pem_garbage_never_reaches_the_snapshot(material: bytes) -> None:
    pair = certs.leaf("a.example.com")
    secret = {"apiVersion": "v1", "kind": "Secret",
              "metadata": {"name": "c", "namespace": "istio-system"},
              "data": {"tls.crt": base64.b64encode(material).decode(),
                       "tls.key": base64.b64encode(pair.key).decode()}}
    gateway = {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
               "metadata": {"name": "g", "namespace": "default"},
               "spec": {"selector": {"istio": "ingressgateway"}, "servers": [
                   {"port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                    "tls": {"mode": "SIMPLE", "credentialName": "c"},
                    "hosts": ["a.example.com"]}]}}
    models = [admit(o).model for o in (secret, gateway)]
    result = to_ir(Resources.from_models(models))
    assert result.config.listeners == ()
    assert result.config.tls_credentials == ()
    assert any(d.code == "CredentialInvalid" for d in result.diagnostics)


def test_odd_certificate_extensions_are_served() -> None:
    """A certificate with an unknown non-critical extension is still a usable certificate."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID, ObjectIdentifier

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "odd.example.com")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(7)
            .not_valid_before(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
            .not_valid_after(dt.datetime(2036, 1, 1, tzinfo=dt.UTC))
            .add_extension(x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.99999.1"),
                                                      b"\x04\x03odd"), critical=False)
            .sign(key, hashes.SHA256()))
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    secret = {"apiVersion": "v1", "kind": "Secret",
              "metadata": {"name": "c", "namespace": "istio-system"},
              "data": {"cert": base64.b64encode(
                  cert.public_bytes(serialization.Encoding.PEM)).decode(),
                       "key": base64.b64encode(pem_key).decode()}}
    from bastion.api.core import Secret
    from bastion.translate.istio.credentials import SecretLookup, tls_credential

    model = admit(secret).model
    assert isinstance(model, Secret)
    found = tls_credential(SecretLookup({("istio-system", "c"): model}, "istio-system"), "c")
    assert found.summary.serial == "7"


def test_duplicate_names_in_one_apply_keep_the_last(tmp_path: Path) -> None:
    from bastion.store import SqliteStore
    from bastion.store.keys import StoreKey

    store = SqliteStore(tmp_path / "s.db")
    key = StoreKey("", "ConfigMap", "default", "dup")
    first = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dup"},
             "data": {"v": "1"}}
    second = {**first, "data": {"v": "2"}}
    store.apply([(key, first), (key, second)])
    assert store.get(key).body["data"] == {"v": "2"}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_whatever_translates_is_accepted_by_envoy(tmp_path_factory, data: st.DataObject) -> None:  # type: ignore[no-untyped-def]
    """Mutated configurations that bastion accepts must also be accepted by the real Envoy:
    nothing bastion would push can be refused (`envoy --mode validate`)."""
    import subprocess

    from google.protobuf import json_format

    from bastion.dataplane.envoy.supervisor import envoy_binary
    from tests.golden.test_envoy_accepts import istio_snapshot, static_bootstrap

    case_path = data.draw(st.sampled_from(sorted(CASES.glob("*.in.yaml"))))
    case = yaml.safe_load(case_path.read_text())
    resources = case["resources"]
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, len(resources) - 1))
        paths = [p for p in _paths(resources[index]) if p[0] not in ("stringData", "data")]
        if not paths:
            continue
        path = data.draw(st.sampled_from(paths))
        resources[index] = _mutate(resources[index], path, data.draw(values))
    boot = static_bootstrap(istio_snapshot(case))
    config = tmp_path_factory.mktemp("envoy") / "bootstrap.json"
    config.write_text(json_format.MessageToJson(boot))
    result = subprocess.run([str(envoy_binary()), "--mode", "validate", "-c", str(config),
                             "--disable-hot-restart", "--log-level", "error"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_memoised_translation_equals_fresh_translation(data: st.DataObject) -> None:
    """Reusing the previous translation's results (the runtime's memo) never changes what is
    produced: after any sequence of changes, memoised and fresh translations agree."""
    from bastion.dataplane.envoy.dump import message_to_data
    from bastion.memo import Memo

    memo = Memo()
    objects = copy.deepcopy(BASE)

    def translate(with_memo: Memo | None):  # type: ignore[no-untyped-def]
        models = [v.model for v in map(admit, objects)
                  if isinstance(v, Admitted) and v.model is not None]
        result = to_ir(Resources.from_models(models), memo=with_memo)
        xds = to_xds(result.config, with_memo)
        snapshot = build_snapshot(xds, 1, with_memo)
        if with_memo is not None:
            with_memo.advance()
        return result.diagnostics, {t: {n: message_to_data(m) for n, m in xds.of(t).items()}
                                    for t in xds.by_type}, snapshot

    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(objects) - 1))
        paths = [p for p in _paths(objects[index]) if p[0] not in ("stringData", "data")]
        if paths:
            path = data.draw(st.sampled_from(paths))
            objects[index] = _mutate(objects[index], path, data.draw(values))
        memoised, fresh = translate(memo), translate(None)
        assert memoised[0] == fresh[0]
        assert memoised[1] == fresh[1]


def _resources(snapshot):  # type: ignore[no-untyped-def]
    return {t: {n: r.hash for n, r in snapshot.of(t).items()} for t in snapshot.resources}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_route_fast_path_equals_full_translation(data: st.DataObject) -> None:
    """After any change to VirtualServices, the build's short path (re-translating only the
    servers they affect) gives what a full build gives, and the Envoy driver's rendering of
    its delta on the previous snapshot holds exactly the resources a whole rendering holds."""
    from bastion.api.istio import VirtualService
    from bastion.memo import Memo
    from bastion.store.keys import StoreKey

    def models_of(objects: list[Any]) -> list[Any]:
        return [v.model for v in map(admit, objects)
                if isinstance(v, Admitted) and v.model is not None]

    workload, options = Workload(), Options()
    objects = copy.deepcopy(BASE)
    previous = build(None, Inputs.of(models_of(objects)), 1, [workload], options)
    before = render(None, previous.gateways[workload], 1, Memo())
    vs_indexes = [i for i, o in enumerate(objects) if o.get("kind") == "VirtualService"]
    changed = set()
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.sampled_from(vs_indexes))
        paths = [p for p in _paths(objects[index]) if p[0] != "metadata"]
        path = data.draw(st.sampled_from(paths))
        replacement = data.draw(st.one_of(st.just(_DELETE), values, st.sampled_from(
            ["/new", "gw", "edge/gw", "mygateway", "web", "api.example.com", "*"])))
        objects[index] = _mutate(objects[index], path, replacement)
        meta = objects[index].get("metadata") or {}
        changed.add((meta.get("namespace") or "default", meta.get("name")))
    models = models_of(objects)
    changed = {k for k in changed if isinstance(k[1], str)}
    # Only VirtualServices that are still VirtualServices count as a VirtualService change.
    if any(not isinstance(m, VirtualService) for m in models if (
            (m.metadata.namespace or "default", m.metadata.name) in changed)):
        return
    inputs = Inputs.of(models)
    keys = {StoreKey("networking.istio.io", "VirtualService", ns, name) for ns, name in changed}
    fast = build(previous, inputs, 2, [workload], options, keys).gateways[workload]
    full = build(None, inputs, 2, [workload], options).gateways[workload]
    assert fast.ir.config == full.ir.config
    assert fast.ir.diagnostics == full.ir.diagnostics
    rendered = render(before, fast, 2, Memo())
    assert _resources(rendered) == _resources(render(None, full, 2, Memo()))
    assert consistency_problems(rendered) == []
