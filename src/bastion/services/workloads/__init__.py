"""Deployments run as local processes (`serve --run-workloads`): pods with loopback addresses of
their own, EndpointSlices for the Services that select them, restarts with back-off."""
