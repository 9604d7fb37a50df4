"""The I/O edge: the gRPC ADS server, the local CLI API, and the Envoy supervisor."""
