"""Snapshots of Envoy resources and the sans-I/O xDS protocol that delivers them."""
