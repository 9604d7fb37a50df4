"""The one build: its short paths give what a whole build gives, say what changed by value,
and an unchanged group costs nothing; the Envoy driver's rendering of a delta holds exactly the
resources of a whole rendering."""

from __future__ import annotations

import base64
from typing import Any

from bastion.api.admission import Admitted, admit
from bastion.build import Build, Delta, Inputs, build
from bastion.dataplane.envoy.driver import render
from bastion.dataplane.envoy.snapshot import Snapshot
from bastion.ir.workload import Workload
from bastion.memo import Memo
from bastion.store import StoreKey
from bastion.translate.istio import Options
from tests import certs

DEFAULT = Workload()
EDGE = Workload.of({"app": "edge"}, "istio-system")


def secret(name: str, serial: int, host: str) -> dict[str, Any]:
    pair = certs.leaf(host, serial)
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": "istio-system"},
            "data": {"tls.crt": base64.b64encode(pair.cert).decode(),
                     "tls.key": base64.b64encode(pair.key).decode()}}


def gateway(name: str, selector: dict[str, str], host: str, credential: str) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": selector, "servers": [{
                "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                "tls": {"mode": "SIMPLE", "credentialName": credential}, "hosts": [host]}]}}


def routes(name: str, host: str, gw: str, body: str) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"hosts": [host], "gateways": [gw],
                     "http": [{"directResponse": {"status": 200, "body": {"string": body}}}]}}


def put(inputs: Inputs, raw: dict[str, Any], revision: int) -> StoreKey:
    verdict = admit(raw)
    assert isinstance(verdict, Admitted)
    inputs.put(verdict.key, revision, verdict.body, verdict.model)
    return verdict.key


def world() -> tuple[Inputs, Build]:
    inputs = Inputs()
    for i, raw in enumerate([
            secret("a", 1, "a.example.com"), secret("b", 2, "b.example.com"),
            secret("unused", 3, "u.example.com"),
            gateway("gw-a", {"istio": "ingressgateway"}, "a.example.com", "a"),
            gateway("gw-b", {"app": "edge"}, "b.example.com", "b"),
            routes("a", "a.example.com", "gw-a", "A"), routes("b", "b.example.com", "gw-b", "B")]):
        put(inputs, raw, i + 1)
    return inputs, build(None, inputs, 7, [DEFAULT, EDGE], Options())


def hashes(snapshot: Snapshot) -> dict[str, dict[str, str]]:
    return {t: {n: r.hash for n, r in snapshot.of(t).items()} for t in snapshot.resources}


def test_each_group_holds_only_what_selects_it() -> None:
    _, result = world()
    a, b = result.gateways[DEFAULT].ir.config, result.gateways[EDGE].ir.config
    assert [c.name for c in a.tls_credentials] == ["a"]
    assert [c.name for c in b.tls_credentials] == ["b"]


def test_rotation_takes_the_short_path_and_matches_a_whole_build() -> None:
    inputs, before = world()
    key = put(inputs, secret("a", 9, "a.example.com"), 8)
    fast = build(before, inputs, 8, [DEFAULT, EDGE], Options(), {key})
    whole = build(None, inputs, 8, [DEFAULT, EDGE], Options())
    assert fast.gateways[DEFAULT].delta == Delta(credentials=frozenset({"a"}))
    assert fast.gateways[EDGE].delta == Delta()  # another namespace's group: untouched
    assert not fast.gateways[EDGE].changed
    for group in (DEFAULT, EDGE):
        assert fast.gateways[group].ir.config == whole.gateways[group].ir.config
    previous = render(None, before.gateways[DEFAULT], 7, Memo())
    rendered = render(previous, fast.gateways[DEFAULT], 8, Memo())
    assert hashes(rendered) == hashes(render(None, whole.gateways[DEFAULT], 8, Memo()))
    assert rendered.parent == previous.serial
    assert set(rendered.changes) == {"type.googleapis.com/envoy.extensions.transport_sockets"
                                     ".tls.v3.Secret"}


def test_a_secret_no_server_reads_changes_nothing() -> None:
    inputs, before = world()
    key = put(inputs, secret("unused", 4, "u.example.com"), 8)
    after = build(before, inputs, 8, [DEFAULT, EDGE], Options(), {key})
    assert all(not g.changed for g in after.gateways.values())
    assert after.gateways[DEFAULT].ir is before.gateways[DEFAULT].ir


def test_route_edit_names_only_its_server() -> None:
    inputs, before = world()
    key = put(inputs, routes("b", "b.example.com", "gw-b", "B2"), 8)
    after = build(before, inputs, 8, [DEFAULT, EDGE], Options(), {key})
    delta = after.gateways[EDGE].delta
    assert delta is not None and [s.key.gateway for s in delta.servers] == ["gw-b"]
    assert not delta.credentials and not delta.backends
    assert after.gateways[DEFAULT].delta == Delta(servers=())
    whole = build(None, inputs, 8, [DEFAULT, EDGE], Options())
    assert after.gateways[EDGE].ir.config == whole.gateways[EDGE].ir.config


def test_other_changes_and_new_groups_are_built_whole() -> None:
    inputs, before = world()
    key = put(inputs, gateway("gw-a", {"istio": "ingressgateway"}, "a2.example.com", "a"), 8)
    after = build(before, inputs, 8, [DEFAULT, EDGE], Options(), {key})
    assert after.gateways[DEFAULT].delta is None and after.gateways[EDGE].delta is None
    third = Workload.of({"app": "third"}, "istio-system")
    grown = build(after, inputs, 8, [DEFAULT, EDGE, third], Options(), set())
    assert grown.gateways[DEFAULT].delta == Delta() and grown.gateways[third].delta is None
    assert build(grown, inputs, 8, [DEFAULT], Options(port_map=((443, 8443),)),
                 set()).gateways[DEFAULT].delta is None


def test_a_delegate_edit_reaches_the_routes_of_its_root() -> None:
    """A delegate names no Gateway, so the VirtualService short path cannot find the servers
    its root feeds: an edit of it (or of a former delegate) translates everything."""
    inputs = Inputs()
    root = routes("root", "a.example.com", "gw-a", "unused")
    root["spec"]["http"] = [{"match": [{"uri": {"prefix": "/api"}}],
                             "delegate": {"name": "api"}}]

    def delegate(body: str) -> dict[str, Any]:
        return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                "metadata": {"name": "api", "namespace": "default"},
                "spec": {"http": [{"directResponse": {"status": 200,
                                                       "body": {"string": body}}}]}}

    for i, raw in enumerate([secret("a", 1, "a.example.com"),
                             gateway("gw-a", {"istio": "ingressgateway"}, "a.example.com", "a"),
                             root, delegate("first")]):
        put(inputs, raw, i + 1)
    before = build(None, inputs, 5, [DEFAULT], Options())
    key = put(inputs, delegate("second"), 6)
    after = build(before, inputs, 6, [DEFAULT], Options(), {key})
    whole = build(None, inputs, 6, [DEFAULT], Options())
    assert after.gateways[DEFAULT].ir.config == whole.gateways[DEFAULT].ir.config
    bodies = [r.action.body for li in after.gateways[DEFAULT].ir.config.listeners
              for s in li.servers for v in s.virtual_hosts for r in v.routes]
    assert bodies == ["second"]


def test_route_edits_keep_the_warnings_about_empty_destinations_true() -> None:
    """Where a route leads is warned about again on the short path: a destination without
    endpoints is named while routed, and no longer once the route leaves it."""
    inputs, before = world()
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "idle", "namespace":
               "default"}, "spec": {"ports": [{"port": 80}], "selector": {"app": "idle"}}}
    put(inputs, service, 8)
    before = build(before, inputs, 8, [DEFAULT, EDGE], Options())
    forward = routes("a", "a.example.com", "gw-a", "A")
    forward["spec"]["http"] = [{"route": [{"destination": {"host": "idle"}}]}]
    slower = routes("a", "a.example.com", "gw-a", "A")
    slower["spec"]["http"] = [{"route": [{"destination": {"host": "idle"}}], "timeout": "3s"}]
    steps = [forward, slower, routes("a", "a.example.com", "gw-a", "A")]
    for revision, raw in enumerate(steps, start=9):
        key = put(inputs, raw, revision)
        fast = build(before, inputs, revision, [DEFAULT, EDGE], Options(), {key})
        whole = build(None, inputs, revision, [DEFAULT, EDGE], Options())
        assert fast.gateways[DEFAULT].delta is not None  # the short path was taken
        assert fast.diagnostics == whole.diagnostics
        empty = [d for d in fast.diagnostics if d.code == "NoEndpoints"]
        assert [d.field for d in empty] == (["spec.http[0].route[0].destination"]
                                            if raw is not steps[-1] else [])
        before = fast


def test_objects_translation_never_reads_change_nothing() -> None:
    """An Event or a Certificate written (the certificate controller writes many) is no reason
    to translate: the build is the previous one, and says nothing changed."""
    inputs, before = world()
    event = put(inputs, {"apiVersion": "v1", "kind": "Event",
                         "metadata": {"name": "a.1", "namespace": "default"}}, 8)
    certificate = put(inputs, {
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": "a", "namespace": "istio-system"},
        "spec": {"secretName": "a", "dnsNames": ["a.example.com"],
                 "issuerRef": {"name": "ca", "kind": "ClusterIssuer"}}}, 9)
    after = build(before, inputs, 9, [DEFAULT, EDGE], Options(), {event, certificate})
    assert all(g.delta == Delta() for g in after.gateways.values())
    assert after.gateways[DEFAULT].ir is before.gateways[DEFAULT].ir
