"""The Envoy driver: the IR to xDS resources, snapshots per gateway group, the sans-I/O ADS
protocol and its gRPC servicer, the bootstrap, the supervisor and the admin reader. Nothing
outside this package imports Envoy's protos (`lint-imports` checks it)."""

from bastion.dataplane.envoy.resources import XdsResources, to_xds

__all__ = ["XdsResources", "to_xds"]
