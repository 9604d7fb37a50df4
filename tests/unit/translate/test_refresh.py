"""The Secret-only fast path gives exactly what a full translation would, or declines."""

from __future__ import annotations

import base64

from bastion.api import core, istio
from bastion.api.admission import admit
from bastion.translate.istio import Resources, Workload, refresh_credentials, to_ir
from tests import certs


def secret(name: str, **values: bytes) -> core.Secret:
    model = admit({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": name, "namespace": "istio-system"},
                   "data": {k.replace("_", "."): base64.b64encode(v).decode()
                            for k, v in values.items()}}).model
    assert isinstance(model, core.Secret)
    return model


def gateway(*servers: tuple[str, str, str]) -> istio.Gateway:
    model = admit({"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
                   "metadata": {"name": "g", "namespace": "default"},
                   "spec": {"selector": {"istio": "ingressgateway"}, "servers": [
                       {"port": {"number": 443, "name": f"https-{i}", "protocol": "HTTPS"},
                        "tls": {"mode": mode, "credentialName": cred}, "hosts": [host]}
                       for i, (host, mode, cred) in enumerate(servers)]}}).model
    assert isinstance(model, istio.Gateway)
    return model


def translate(*models):  # type: ignore[no-untyped-def]
    return to_ir(Resources.from_models(models))


def test_rotation_matches_full_translation() -> None:
    a1, a2 = certs.leaf("a.example.com", 1), certs.leaf("a.example.com", 2)
    b = certs.leaf("b.example.com", 3)
    root = certs.ca("root1")[0].cert
    gw = gateway(("a.example.com", "SIMPLE", "a"), ("b.example.com", "MUTUAL", "b"))
    before = translate(gw, secret("a", cert=a1.cert, key=a1.key),
                       secret("b", cert=b.cert, key=b.key, cacert=root))
    new_a = secret("a", cert=a2.cert, key=a2.key)
    new_ca = secret("b-cacert", cacert=certs.ca("root2")[0].cert)
    b_secret = secret("b", cert=b.cert, key=b.key, cacert=root)
    fast = refresh_credentials(before, {("istio-system", "a"): new_a,
                                        ("istio-system", "b-cacert"): new_ca,
                                        ("istio-system", "b"): b_secret},
                               Workload(), {"a", "b-cacert"})
    full = translate(gw, new_a, new_ca, b_secret)
    assert fast is not None
    assert fast.config == full.config
    assert fast.diagnostics == full.diagnostics


def test_unrelated_secret_changes_nothing() -> None:
    a = certs.leaf("a.example.com", 1)
    before = translate(gateway(("a.example.com", "SIMPLE", "a")), secret("a", cert=a.cert,
                                                                        key=a.key))
    assert refresh_credentials(before, {}, Workload(), {"unrelated"}) is before


def test_declines_when_a_server_would_change_state() -> None:
    a = certs.leaf("a.example.com", 1)
    gw = gateway(("a.example.com", "SIMPLE", "a"), ("m.example.com", "SIMPLE", "missing"))
    before = translate(gw, secret("a", cert=a.cert, key=a.key))
    # The credential becomes invalid: a full translation must unprogram its server.
    assert refresh_credentials(before, {("istio-system", "a"): secret("a", cert=b"junk",
                                                                      key=a.key)},
                               Workload(), {"a"}) is None
    # A Secret a server looked for and did not find appears: it may now be programmed.
    m = certs.leaf("m.example.com", 4)
    assert refresh_credentials(before, {("istio-system", "missing"): secret(
        "missing", cert=m.cert, key=m.key)}, Workload(), {"missing"}) is None
