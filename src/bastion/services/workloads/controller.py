"""Deployments to pods, and Services to EndpointSlices, as Kubernetes' controllers make them.

Each Deployment gets `replicas` pods of its current template (named
`<deployment>-<template hash>-<suffix>`); a new template (an edit, or `rollout restart`) brings
new pods up before the old ones go. A pod leaving (scale down, rollout, delete) is first taken
out of its Services' EndpointSlices, and stopped once the gateways hold that change, so no
request is sent to a process that is gone. Pods and EndpointSlices are stored, as Kubernetes
keeps them: the build reads a pod's labels (which DestinationRule subsets select) and the
slices like any other objects. Their processes end with `bastion serve`, and the next one
removes what the previous left.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import logging
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bastion.api import selectors
from bastion.managed import MANAGED_ANNOTATION
from bastion.services.workloads.images import launch
from bastion.services.workloads.pods import Pod
from bastion.store import ObjectStore
from bastion.store.keys import StoreKey

log = logging.getLogger("bastion")
TICK_S = 0.25
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER = "bastion.dev/workloads"
SERVICE_LABEL = "kubernetes.io/service-name"
# Loopback: every 127.x.y.z address reaches this host. Each `bastion serve` starts at a place
# of its own (from its state directory) and skips addresses whose ports are taken, so pods of two
# instances on one machine never share an address.
POD_NETWORK = ipaddress.ip_network("127.16.0.0/12")
DISTRIBUTION_WAIT_S = 10.0


@dataclass
class WorkloadController:
    store: ObjectStore
    log_dir: Path
    # Waits until every gateway holds the configuration of a store revision (or a timeout).
    distributed: Callable[[int, float], Awaitable[bool]]
    pods: dict[tuple[str, str], Pod] = field(default_factory=dict)
    _next: int = -1  # the next address to try, as an offset in POD_NETWORK
    _addresses: set[str] = field(default_factory=set)
    _stopping: set[asyncio.Task[None]] = field(default_factory=set)

    async def run(self) -> None:
        self._remove_stale()
        try:
            while True:
                self.reconcile()
                await asyncio.sleep(TICK_S)
        finally:
            for task in self._stopping:
                task.cancel()
            for pod in self.pods.values():
                pod.stop()

    # -- the loop -------------------------------------------------------------------------

    def reconcile(self) -> None:
        now = time.time()
        deployments = {(o.key.namespace, o.key.name): o.body
                       for o in self.store.select("apps", "Deployment")}
        leaving: list[Pod] = []
        for key, body in deployments.items():
            leaving.extend(self._scale(key, body))
        for pod in list(self.pods.values()):
            if (pod.namespace, pod.owner) not in deployments and not pod.terminating:
                leaving.append(pod)
        for pod in leaving:
            pod.terminating = True
        for pod in self.pods.values():
            pod.tick(now)
        self._write_pods()
        revision = self._write_slices()
        for pod in leaving:
            task = asyncio.get_running_loop().create_task(self._retire(pod, revision))
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    def _scale(self, key: tuple[str, str], body: dict[str, Any]) -> list[Pod]:
        """Make the Deployment's pods match its spec; the pods to take away."""
        namespace, name = key
        spec = body.get("spec") or {}
        template = spec.get("template") or {}
        wanted = int(spec.get("replicas", 1))
        digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        mine = [p for p in self.pods.values()
                if (p.namespace, p.owner) == key and not p.terminating]
        current = [p for p in mine if p.template_hash == digest]
        old = [p for p in mine if p.template_hash != digest]
        for _ in range(wanted - len(current)):
            pod = self._new_pod(namespace, name, digest, template)
            self.pods[(namespace, pod.name)] = pod
            current.append(pod)
        leaving = current[wanted:]
        # A new template's pods replace the old ones once they are ready (or cannot run).
        settled = all(p.ready or p.launch.problem for p in current[:wanted])
        if settled:
            leaving.extend(old)
        return leaving

    def _new_pod(self, namespace: str, owner: str, digest: str, template: dict[str, Any]
                 ) -> Pod:
        pod_spec = template.get("spec") or {}
        containers = pod_spec.get("containers") or [{}]
        container = containers[0]
        name = f"{owner}-{digest}-{secrets.token_hex(3)[:5]}"
        ports = tuple((str(p.get("name", "")), int(p["containerPort"]))
                      for p in container.get("ports") or [] if "containerPort" in p)
        address = self._address([p for _, p in ports])
        labels = {str(k): str(v) for k, v in
                  ((template.get("metadata") or {}).get("labels") or {}).items()}
        how = launch(container, name, address)
        if how.problem:
            log.warning("pod %s/%s cannot run: %s", namespace, name, how.problem)
        else:
            log.info("pod %s/%s: %s on %s", namespace, name, " ".join(how.argv[-6:]), address)
        return Pod(name=name, namespace=namespace, labels=labels, owner=owner,
                   template_hash=digest, address=address, ports=ports,
                   container=str(container.get("name", "main")), launch=how,
                   log_path=self.log_dir / namespace / f"{name}.log")

    def _address(self, ports: list[int]) -> str:
        size = POD_NETWORK.num_addresses - 2
        if self._next < 0:
            seed = hashlib.sha256(str(self.log_dir).encode()).digest()
            self._next = int.from_bytes(seed[:4], "big") % size
        for _ in range(4096):
            text = str(POD_NETWORK.network_address + 1 + self._next)
            self._next = (self._next + 1) % size
            if text not in self._addresses and all(_free(text, p) for p in ports):
                self._addresses.add(text)
                return text
        raise RuntimeError("no free pod address")

    async def _retire(self, pod: Pod, revision: int) -> None:
        """Stop a pod once the gateways no longer send it requests."""
        with contextlib.suppress(Exception):
            await self.distributed(revision, DISTRIBUTION_WAIT_S)
        await asyncio.to_thread(pod.stop)
        self.pods.pop((pod.namespace, pod.name), None)
        self.store.delete([StoreKey("", "Pod", pod.namespace, pod.name)])
        self._addresses.discard(pod.address)
        log.info("pod %s/%s stopped", pod.namespace, pod.name)

    # -- EndpointSlices -------------------------------------------------------------------

    def _write_slices(self) -> int:
        """Store each Service's EndpointSlice as its pods are now; the store's revision."""
        wanted: dict[StoreKey, dict[str, Any]] = {}
        for service in self.store.select("", "Service"):
            body = self._slice(service.key.namespace, service.key.name, service.body)
            if body is not None:
                wanted[StoreKey("discovery.k8s.io", "EndpointSlice", service.key.namespace,
                                body["metadata"]["name"])] = body
        self._store_changed(wanted)
        gone = [o.key for o in self.store.select("discovery.k8s.io", "EndpointSlice")
                if _ours(o.body) and o.key not in wanted]
        if gone:
            self.store.delete(gone)
        return self.store.revision

    def _slice(self, namespace: str, name: str, service: dict[str, Any]
               ) -> dict[str, Any] | None:
        spec = service.get("spec") or {}
        selector = spec.get("selector") or {}
        if not selector:
            return None
        matches = selectors.label_selector(",".join(f"{k}={v}" for k, v in selector.items()))
        pods = sorted((p for p in self.pods.values() if p.namespace == namespace
                       and not p.terminating and not p.launch.problem and matches(p.labels)),
                      key=lambda p: p.name)
        if not pods:
            return None
        ports = []
        for port in spec.get("ports") or []:
            target = port.get("targetPort", port.get("port"))
            if isinstance(target, str):
                target = next((n for p in pods for pn, n in p.ports if pn == target), None)
            if target is None:
                continue
            ports.append({"name": port.get("name", ""), "port": int(target),
                          "protocol": port.get("protocol", "TCP")})
        return {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{name}-bastion", "namespace": namespace,
                         "labels": {SERVICE_LABEL: name, MANAGED_BY: CONTROLLER}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [p.address], "conditions": {"ready": p.ready},
                           "targetRef": {"kind": "Pod", "name": p.name,
                                         "namespace": p.namespace}} for p in pods],
            "ports": ports,
        }

    def _write_pods(self) -> None:
        """Store each pod as it is now (a status change is a write; most ticks change none)."""
        self._store_changed({StoreKey("", "Pod", p.namespace, p.name): p.body()
                             for p in self.pods.values()})

    def _store_changed(self, wanted: dict[StoreKey, dict[str, Any]]) -> None:
        """Write the objects whose content differs from the stored one (each write is a
        build)."""
        changed = [(k, b) for k, b in wanted.items()
                   if (old := self.store.get(k)) is None or _content(old.body) != _content(b)]
        if changed:
            self.store.apply(changed)

    def _remove_stale(self) -> None:
        """Pods and slices a previous `bastion serve` made name processes that are gone."""
        stale = [o.key for o in self.store.select("discovery.k8s.io", "EndpointSlice")
                 if _ours(o.body)]
        stale += [o.key for o in self.store.select("", "Pod")
                  if MANAGED_ANNOTATION in (o.body.get("metadata", {}).get("annotations") or {})]
        if stale:
            self.store.delete(stale)

    # -- what `get` shows -----------------------------------------------------------------

    def deployment_status(self, namespace: str, name: str) -> dict[str, Any]:
        mine = [p for p in self.pods.values()
                if (p.namespace, p.owner) == (namespace, name) and not p.terminating]
        ready = sum(1 for p in mine if p.ready)
        return {"replicas": len(mine), "readyReplicas": ready, "availableReplicas": ready,
                "updatedReplicas": len(mine)}


def _free(address: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def _ours(body: dict[str, Any]) -> bool:
    return (body.get("metadata", {}).get("labels") or {}).get(MANAGED_BY) == CONTROLLER


def _content(body: dict[str, Any]) -> Any:
    meta = body.get("metadata", {})
    return {k: v for k, v in body.items() if k != "metadata"} | {
        "labels": meta.get("labels"), "annotations": meta.get("annotations")}
