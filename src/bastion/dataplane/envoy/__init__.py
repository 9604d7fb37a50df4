"""The IR to Envoy xDS resources (the second translation seam)."""

from bastion.dataplane.envoy.resources import XdsResources, to_xds

__all__ = ["XdsResources", "to_xds"]
