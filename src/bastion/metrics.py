"""The control plane's Prometheus metrics that count events as they happen (pushes, ACKs,
NACKs, build times). What is read at scrape time (gateways connected, objects, certificate
validity) is collected by `bastion.services.metrics`. One registry per process, so that the
metrics endpoint shows bastion's own metrics and nothing a library registered."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

# Latencies of a gateway applying configuration: milliseconds for a certificate, seconds at
# 10,000 hosts.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0)

XDS_PUSHES = Counter("bastion_xds_pushes", "xDS responses sent to gateways, by type.",
                     ["type"], registry=REGISTRY)
XDS_ACKS = Counter("bastion_xds_acks", "xDS responses gateways accepted (ACK), by type.",
                   ["type"], registry=REGISTRY)
XDS_NACKS = Counter("bastion_xds_nacks", "xDS responses gateways rejected (NACK), by type.",
                    ["type"], registry=REGISTRY)
XDS_PUSH_SECONDS = Histogram(
    "bastion_xds_push_seconds",
    "From an xDS response sent to the gateway's ACK or NACK of it, by type.",
    ["type"], buckets=LATENCY_BUCKETS, registry=REGISTRY)
BUILD_SECONDS = Histogram("bastion_build_seconds",
                          "Building the gateways' configuration from the stored objects.",
                          buckets=LATENCY_BUCKETS, registry=REGISTRY)
CERTIFICATE_RENEWALS = Counter(
    "bastion_certificate_renewals", "Certificates renewed into their Secrets (cert-manager's API).",
    ["namespace", "certificate"], registry=REGISTRY)
CERTIFICATE_FAILURES = Counter(
    "bastion_certificate_failures", "Certificate issuances that failed (retried with back-off).",
    ["namespace", "certificate"], registry=REGISTRY)
