"""The metrics read at scrape time, and the endpoint that serves them (Prometheus' text
format, on a thread of prometheus-client's): gateways connected, stored objects by kind and
validity, and the validity window of every certificate the gateways serve.

The scrape thread reads only what the event loop replaces whole (the last build, copies of
small dicts), never a structure while it is changed."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client import start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bastion import metrics
from bastion.clock import parse_iso
from bastion.dataplane.envoy.connections import Connections
from bastion.diag import Severity
from bastion.services.pipeline import Pipeline

log = logging.getLogger("bastion")


class StateCollector(Collector):
    def __init__(self, pipeline: Pipeline, connections: Connections) -> None:
        self.pipeline, self.connections = pipeline, connections

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("bastion_gateways_connected",
                                "Gateways connected to this control plane over ADS.",
                                value=len(list(self.connections.all)))
        build = self.pipeline.build
        kinds = dict(self.pipeline.inputs.kinds)
        invalid: dict[str, set[tuple[str, str]]] = {}
        for d in build.diagnostics if build is not None else ():
            if d.severity == Severity.ERROR:
                invalid.setdefault(d.object.kind, set()).add((d.object.namespace, d.object.name))
        objects = GaugeMetricFamily(
            "bastion_config_objects",
            "Stored objects by kind, and whether the gateway found an error in them.",
            labels=["kind", "valid"])
        for kind, count in sorted(kinds.items()):
            bad = len(invalid.get(kind, ()))
            objects.add_metric([kind, "true"], count - bad)
            objects.add_metric([kind, "false"], bad)
        yield objects
        not_after = GaugeMetricFamily(
            "bastion_certificate_not_after_seconds",
            "When each certificate the gateways serve stops being valid (Unix time).",
            labels=["namespace", "secret", "resource", "serial"])
        not_before = GaugeMetricFamily(
            "bastion_certificate_not_before_seconds",
            "When each certificate the gateways serve starts being valid (Unix time).",
            labels=["namespace", "secret", "resource", "serial"])
        for labels, (start, end) in sorted(_certificates(build).items()):
            not_after.add_metric(list(labels), end)
            not_before.add_metric(list(labels), start)
        yield not_after
        yield not_before


def _certificates(build: Any) -> dict[tuple[str, str, str, str], tuple[float, float]]:
    """(namespace, Secret, SDS resource, serial) -> (not before, not after); a file-based
    certificate has no namespace or Secret (its resource names its files)."""
    out: dict[tuple[str, str, str, str], tuple[float, float]] = {}
    for gateway in build.gateways.values() if build is not None else ():
        for credential in gateway.ir.config.tls_credentials:
            summary, source = credential.summary, credential.source
            if summary is None:
                continue
            secret = source if source is not None and source.kind == "Secret" else None
            labels = (secret.namespace if secret else "", secret.name if secret else "",
                      credential.name, summary.serial)
            out[labels] = (parse_iso(summary.not_before).timestamp(),
                           parse_iso(summary.not_after).timestamp())
    return out


def serve_metrics(address: str, pipeline: Pipeline, connections: Connections) -> bool:
    """Serve the metrics on `address` (HOST:PORT); a gateway keeps serving traffic if it
    cannot (the reason is logged), so False then."""
    metrics.REGISTRY.register(StateCollector(pipeline, connections))
    host, _, port = address.rpartition(":")
    try:
        start_http_server(int(port), addr=host.strip("[]") or "127.0.0.1",
                          registry=metrics.REGISTRY)
    except (OSError, ValueError) as exc:
        log.error("metrics not served on %s: %s", address, exc)
        return False
    log.info("metrics on http://%s/metrics", address)
    return True
