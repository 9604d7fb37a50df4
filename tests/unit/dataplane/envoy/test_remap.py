"""A remote gateway's port map moves only the listeners it names; their names and everything
else stay."""

from __future__ import annotations

from bastion.dataplane.envoy.remap import remap_ports
from bastion.dataplane.envoy.resources import LISTENER
from tests.protocol.test_upstream import snapshots


def test_mapped_listeners_bind_elsewhere_and_keep_their_names() -> None:
    one, _, _ = snapshots()
    listeners = one.of(LISTENER)
    port = next(iter(listeners.values())).message.address.socket_address.port_value  # type: ignore[attr-defined]
    moved = remap_ports(one, {port: 18443}, generation=7)
    assert moved.generation == 7 and set(moved.of(LISTENER)) == set(listeners)
    for name, resource in moved.of(LISTENER).items():
        before = listeners[name].message.address.socket_address.port_value  # type: ignore[attr-defined]
        after = resource.message.address.socket_address.port_value  # type: ignore[attr-defined]
        assert after == (18443 if before == port else before)
    assert remap_ports(one, {}, 8).of(LISTENER) == listeners  # nothing mapped: the same
    assert any(r.hash != listeners[n].hash for n, r in moved.of(LISTENER).items())
