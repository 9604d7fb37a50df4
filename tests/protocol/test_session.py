"""Scripted conversations between a fake Envoy and the protocol session, plus Hypothesis over
request orders. No sockets: requests in, responses out."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf.message import Message
from google.rpc import status_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.dataplane.envoy.protocol import ProtocolError, Session
from bastion.dataplane.envoy.resources import (
    CLUSTER,
    ENDPOINT,
    LISTENER,
    PUSH_ORDER,
    SECRET,
    XdsResources,
)
from bastion.dataplane.envoy.snapshot import build_snapshot


def secret(name: str, body: bytes) -> secret_pb2.Secret:
    s = secret_pb2.Secret(name=name)
    s.tls_certificate.certificate_chain.inline_bytes = body
    return s


def snapshot(generation: int, secrets: dict[str, bytes] | None = None,
             listeners: tuple[str, ...] = ("l1",), clusters: tuple[str, ...] = ("c1",)):
    by_type: dict[str, dict[str, Message]] = {t: {} for t in PUSH_ORDER}
    for name in listeners:
        by_type[LISTENER][name] = listener_pb2.Listener(name=name)
    for name in clusters:
        by_type[CLUSTER][name] = cluster_pb2.Cluster(name=name)
        by_type[ENDPOINT][name] = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
    for name, body in (secrets or {}).items():
        by_type[SECRET][name] = secret(name, body)
    return build_snapshot(XdsResources(by_type), generation)


def request(type_url: str, names: tuple[str, ...] = (), nonce: str = "", version: str = "",
            error: str | None = None) -> discovery_pb2.DiscoveryRequest:
    req = discovery_pb2.DiscoveryRequest(type_url=type_url, resource_names=list(names),
                                         response_nonce=nonce, version_info=version)
    req.node.id = "gw-1"
    if error is not None:
        req.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
    return req


def names_of(response: discovery_pb2.DiscoveryResponse) -> list[str]:
    out = []
    for packed in response.resources:
        for cls in (listener_pb2.Listener, cluster_pb2.Cluster, secret_pb2.Secret):
            msg = cls()
            if packed.Unpack(msg):
                out.append(msg.name)
        msg = endpoint_pb2.ClusterLoadAssignment()
        if packed.Unpack(msg):
            out.append(msg.cluster_name)
    return out


class FakeEnvoy:
    """Plays Envoy's side: subscribes, ACKs what it receives, remembers what it holds."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.held: dict[str, dict[str, str]] = {}

    def ack(self, response: discovery_pb2.DiscoveryResponse, names: tuple[str, ...] = ()
            ) -> list[discovery_pb2.DiscoveryResponse]:
        self.held.setdefault(response.type_url, {}).update(
            {n: response.version_info for n in names_of(response)})
        return self.session.on_request(request(response.type_url, names, response.nonce,
                                               response.version_info))


def test_first_requests_get_everything_and_acks_reach_sync() -> None:
    session = Session()
    session.on_snapshot(snapshot(3, {"kubernetes://a": b"A"}))
    envoy = FakeEnvoy(session)
    [cds] = session.on_request(request(CLUSTER))
    assert names_of(cds) == ["c1"] and cds.nonce
    [lds] = session.on_request(request(LISTENER))
    assert names_of(lds) == ["l1"]
    assert session.node_id == "gw-1"
    assert not session.in_sync()
    envoy.ack(cds)
    envoy.ack(lds)
    [eds] = session.on_request(request(ENDPOINT, ("c1",)))
    envoy.ack(eds, ("c1",))
    assert not session.in_sync()  # the secret has not been asked for yet
    [sds] = session.on_request(request(SECRET, ("kubernetes://a",)))
    assert names_of(sds) == ["kubernetes://a"]
    envoy.ack(sds, ("kubernetes://a",))
    assert session.in_sync() and session.synced_generation == 3


def _synced_session(secrets: dict[str, bytes]) -> tuple[Session, FakeEnvoy]:
    session = Session()
    session.on_snapshot(snapshot(1, secrets))
    envoy = FakeEnvoy(session)
    envoy.ack(session.on_request(request(CLUSTER))[0])
    envoy.ack(session.on_request(request(LISTENER))[0])
    envoy.ack(session.on_request(request(ENDPOINT, ("c1",)))[0], ("c1",))
    names = tuple(sorted(secrets))
    envoy.ack(session.on_request(request(SECRET, names))[0], names)
    assert session.in_sync()
    return session, envoy


def test_secret_rotation_pushes_only_that_secret() -> None:
    session, _ = _synced_session({"kubernetes://a": b"A", "kubernetes://b": b"B"})
    responses = session.on_snapshot(snapshot(2, {"kubernetes://a": b"A2", "kubernetes://b": b"B"}))
    assert [r.type_url for r in responses] == [SECRET]
    assert names_of(responses[0]) == ["kubernetes://a"]


def test_equal_snapshot_pushes_nothing_but_advances_sync() -> None:
    session, _ = _synced_session({"kubernetes://a": b"A"})
    assert session.on_snapshot(snapshot(7, {"kubernetes://a": b"A"})) == []
    assert session.synced_generation == 7


def test_stale_nonce_is_ignored() -> None:
    session, envoy = _synced_session({"kubernetes://a": b"A"})
    first = session.on_snapshot(snapshot(2, {"kubernetes://a": b"A2"}))[0]
    second = session.on_snapshot(snapshot(3, {"kubernetes://a": b"A3"}))[0]
    assert session.on_request(request(SECRET, ("kubernetes://a",), first.nonce)) == []
    assert session.synced_generation == 1
    envoy.ack(second, ("kubernetes://a",))
    assert session.synced_generation == 3


def test_nack_is_recorded_and_not_resent_until_content_changes() -> None:
    session, _ = _synced_session({"kubernetes://a": b"A"})
    [bad] = session.on_snapshot(snapshot(2, {"kubernetes://a": b"BAD"}))
    assert session.on_request(request(SECRET, ("kubernetes://a",), bad.nonce, "old",
                                      error="Failed to load certificate chain")) == []
    state = session.types[SECRET]
    assert state.last_nack is not None
    assert state.last_nack.message == "Failed to load certificate chain"
    assert not session.in_sync()
    events = [e for e in session.drain_events() if e.kind == "nack"]
    assert events and events[0].names == ("kubernetes://a",)
    # The same bad content in a new snapshot (another object changed) is not sent again.
    assert session.on_snapshot(snapshot(3, {"kubernetes://a": b"BAD"})) == []
    # Fixed content is sent.
    [fixed] = session.on_snapshot(snapshot(4, {"kubernetes://a": b"GOOD"}))
    assert names_of(fixed) == ["kubernetes://a"]


def test_new_names_are_answered_and_unknown_names_wait() -> None:
    session, envoy = _synced_session({"kubernetes://a": b"A"})
    sds_nonce = session.types[SECRET].nonce
    # Envoy asks for a secret that does not exist yet: nothing to send.
    assert session.on_request(request(SECRET, ("kubernetes://a", "kubernetes://new"),
                                      sds_nonce)) == []
    # When it appears, it is pushed, alone.
    [pushed] = session.on_snapshot(snapshot(2, {"kubernetes://a": b"A",
                                                "kubernetes://new": b"N"}))
    assert names_of(pushed) == ["kubernetes://new"]
    envoy.ack(pushed, ("kubernetes://a", "kubernetes://new"))
    assert session.in_sync()


def test_resubscribed_name_is_sent_again() -> None:
    session, _ = _synced_session({"kubernetes://a": b"A"})
    nonce = session.types[SECRET].nonce
    assert session.on_request(request(SECRET, (), nonce)) == []  # unsubscribed
    [again] = session.on_request(request(SECRET, ("kubernetes://a",), nonce))
    assert names_of(again) == ["kubernetes://a"]


def test_push_order_is_make_before_break() -> None:
    session, _ = _synced_session({"kubernetes://a": b"A"})
    responses = session.on_snapshot(snapshot(2, {"kubernetes://a": b"A2"},
                                             listeners=("l1", "l2"), clusters=("c1", "c2")))
    order = [r.type_url for r in responses]
    assert order == [CLUSTER, LISTENER, SECRET]  # c2's endpoints wait for Envoy's request
    assert names_of(responses[0]) == ["c1", "c2"]  # wildcard types are sent whole


def test_removed_listener_is_absent_from_full_state() -> None:
    session, _ = _synced_session({"kubernetes://a": b"A"})
    [lds] = [r for r in session.on_snapshot(snapshot(2, {"kubernetes://a": b"A"}, listeners=()))
             if r.type_url == LISTENER]
    assert names_of(lds) == []


def test_request_without_type_url_is_a_protocol_error() -> None:
    session = Session()
    try:
        session.on_request(discovery_pb2.DiscoveryRequest())
    except ProtocolError:
        return
    raise AssertionError("expected ProtocolError")


def test_nonces_are_unique() -> None:
    session, _ = _synced_session({"kubernetes://a": b"A"})
    seen = set()
    for generation in range(2, 12):
        for response in session.on_snapshot(snapshot(generation, {"kubernetes://a": bytes(
                [generation])})):
            assert response.nonce not in seen
            seen.add(response.nonce)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["snap", "ack", "nack", "stale"]),
                          st.binary(min_size=1, max_size=3)), max_size=25))
def test_acking_everything_always_converges(steps: list[tuple[str, bytes]]) -> None:
    """Whatever happens on the way (NACKs, stale ACKs, many snapshots), once Envoy ACKs what it
    is sent, it holds exactly the latest snapshot."""
    session, envoy = _synced_session({"kubernetes://a": b"A"})
    pending: list[discovery_pb2.DiscoveryResponse] = []
    generation = 1
    for action, body in steps:
        if action == "snap":
            generation += 1
            pending += session.on_snapshot(snapshot(generation, {"kubernetes://a": body}))
        elif pending and action == "ack":
            envoy.ack(pending.pop(0), ("kubernetes://a",))
        elif pending and action == "nack":
            response = pending.pop(0)
            session.on_request(request(response.type_url, ("kubernetes://a",), response.nonce,
                                       error="rejected"))
        elif pending and action == "stale":
            response = pending[0]
            session.on_request(request(response.type_url, ("kubernetes://a",), "999999"))
    generation += 1
    final = bytes([7, 7, 7, 7])  # content never produced by the steps above
    pending += session.on_snapshot(snapshot(generation, {"kubernetes://a": final}))
    for response in pending:
        envoy.ack(response, ("kubernetes://a",))
    assert session.in_sync()
    assert session.synced_generation == generation


def test_bytes_and_resources_pushed_are_counted() -> None:
    session, _ = _synced_session({"kubernetes://a": b"A", "kubernetes://b": b"B"})
    state = session.types[SECRET]
    before = (state.responses_sent, state.resources_sent, state.bytes_sent)
    [response] = session.on_snapshot(snapshot(2, {"kubernetes://a": b"A2",
                                                  "kubernetes://b": b"B"}))
    assert state.responses_sent == before[0] + 1
    assert state.resources_sent == before[1] + 1
    assert state.bytes_sent == before[2] + response.ByteSize()


def test_type_asked_before_any_snapshot_is_answered_even_when_empty() -> None:
    """Envoy waits for its first CDS answer before it asks for listeners: a request that came
    before the group had a snapshot must be answered when one arrives, empty or not."""
    session = Session()
    assert session.on_request(request(CLUSTER)) == []
    empty = build_snapshot(XdsResources({t: {} for t in PUSH_ORDER}), 0)
    responses = session.on_snapshot(empty)
    assert [r.type_url for r in responses] == [CLUSTER]
    assert list(responses[0].resources) == []


def test_derived_snapshot_sends_only_what_it_changed() -> None:
    """A snapshot made from the one the session holds is compared by the names it changed."""
    session = Session()
    first = snapshot(1, {"s1": b"a", "s2": b"b"})
    session.on_snapshot(first)
    for type_url, names in ((CLUSTER, ()), (LISTENER, ()), (SECRET, ("s1", "s2"))):
        response = session.on_request(request(type_url, names))[0]
        session.on_request(request(type_url, names, nonce=response.nonce))
    session.on_request(request(ENDPOINT, ("c1",)))
    ack = session.on_request(request(ENDPOINT, ("c1",), nonce=session.types[ENDPOINT].nonce or ""))
    assert ack == [] and session.in_sync() and session.synced_generation == 1
    second = first.with_resources(SECRET, {"s2": secret("s2", b"new")}, 2)
    responses = session.on_snapshot(second)
    assert [(r.type_url, names_of(r)) for r in responses] == [(SECRET, ["s2"])]
    assert not session.in_sync()
    session.on_request(request(SECRET, ("s1", "s2"), nonce=responses[0].nonce))
    assert session.in_sync() and session.synced_generation == 2
    # The same resources from a later revision: nothing to send, and in sync at once.
    assert session.on_snapshot(second.with_generation(3)) == []
    assert session.synced_generation == 3


def test_a_changed_cluster_is_sent_with_its_endpoints_again() -> None:
    """Envoy warms a cluster sent again with new content anew, and waits for its endpoints:
    they go out with it even though they did not change (else the cluster never warms, and
    Envoy never ACKs the update)."""
    session, _ = _synced_session({"kubernetes://a": b"A"})
    changed = snapshot(2, {"kubernetes://a": b"A"})
    by_type = {t: dict(changed.of(t).items()) for t in PUSH_ORDER}
    resources: dict[str, dict[str, Message]] = {t: {n: r.message for n, r in v.items()}
                                                for t, v in by_type.items()}
    cluster = cluster_pb2.Cluster(name="c1")
    cluster.connect_timeout.seconds = 3
    resources[CLUSTER]["c1"] = cluster
    responses = session.on_snapshot(build_snapshot(XdsResources(resources), 2))
    assert [(r.type_url, names_of(r)) for r in responses] == [(CLUSTER, ["c1"]),
                                                             (ENDPOINT, ["c1"])]
    # A snapshot that changes nothing sends nothing more.
    assert session.on_snapshot(build_snapshot(XdsResources(resources), 3)) == []
