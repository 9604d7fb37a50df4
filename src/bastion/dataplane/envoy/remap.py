"""A remote gateway's own port map: the listeners a control plane sends bind the ports of its
configuration (the Gateway's ports, unless that control plane maps them); an agent may bind
them elsewhere on its host (`bastion gateway --port-map 443=8443`), e.g. without privileges, or
several gateways on one host."""

from __future__ import annotations

from types import MappingProxyType

from envoy.config.listener.v3 import listener_pb2

from bastion.dataplane.envoy.resources import LISTENER
from bastion.dataplane.envoy.snapshot import Resource, Snapshot, content_hash


def remap_ports(snapshot: Snapshot, port_map: dict[int, int], generation: int) -> Snapshot:
    """`snapshot` with its listeners bound to the mapped ports (the listener names stay)."""
    listeners = {}
    for name, resource in snapshot.of(LISTENER).items():
        message = resource.message
        port = message.address.socket_address.port_value
        if port in port_map:
            moved = listener_pb2.Listener()
            moved.CopyFrom(message)
            moved.address.socket_address.port_value = port_map[port]
            resource = Resource(name, moved, content_hash(moved))
        listeners[name] = resource
    resources = dict(snapshot.resources)
    resources[LISTENER] = MappingProxyType(listeners)
    return Snapshot(generation, MappingProxyType(resources))
