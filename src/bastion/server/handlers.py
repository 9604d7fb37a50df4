"""What each local API operation does: a thin mapping from requests to the services."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from bastion.api.kinds import GATEWAY_API
from bastion.api.validation.names import is_dns_label
from bastion.clock import utc_now
from bastion.dataplane.envoy.connections import Connections
from bastion.dataplane.envoy.driver import EnvoyDataPlane
from bastion.dataplane.envoy.supervisor import EnvoySupervisor
from bastion.diag import ObjectRef
from bastion.errors import BadRequest
from bastion.identity import GatewayIdentity, admin_uri
from bastion.services import analysis, fleet, gateway_objects, status, xds_ca
from bastion.services.objects import ObjectService
from bastion.services.pipeline import Pipeline
from bastion.translate.gatewayapi import GATEWAY_KIND
from bastion.translate.istio import Options

T = TypeVar("T")


def need(request: dict[str, Any], name: str, kind: type[T]) -> T:
    """A field the operation cannot do without; its absence is the caller's mistake."""
    value = request.get(name)
    if not isinstance(value, kind):
        raise BadRequest(f"field {name!r} must be a {kind.__name__}")
    return value


@dataclass
class Handlers:
    objects: ObjectService
    pipeline: Pipeline
    dataplane: EnvoyDataPlane
    connections: Connections
    envoy: EnvoySupervisor | None
    options: Options
    # The xDS CA, made on first use when no --xds-address made it at start.
    xds_authority: Callable[[], xds_ca.Authority] | None = None
    fleet_name: str = ""  # what this control plane announces itself as (a shared store)

    async def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        method = getattr(self, f"op_{op}", None) if isinstance(op, str) else None
        if method is None:
            return {"ok": False, "error": f"unknown operation {op!r}"}
        return await method(request)

    async def op_ping(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True}

    async def op_apply(self, request: dict[str, Any]) -> dict[str, Any]:
        results = self.objects.apply(need(request, "objects", list),
                                     request.get("namespace") or "default",
                                     create_only=bool(request.get("createOnly")),
                                     dry_run=bool(request.get("dryRun")),
                                     verify_key_pairs=bool(request.get("verifyKeyPairs")))
        return {"ok": all(r["ok"] for r in results), "results": results}

    async def op_delete(self, request: dict[str, Any]) -> dict[str, Any]:
        namespace = request.get("namespace") or "default"
        targets = []
        for target in need(request, "targets", list):
            if not isinstance(target, dict):
                raise BadRequest("each target must be an object")
            targets.append((need(target, "kind", str), target.get("namespace") or namespace,
                            need(target, "name", str)))
        results = self.objects.delete(targets)
        return {"ok": all(r["ok"] for r in results), "results": results}

    async def op_get(self, request: dict[str, Any]) -> dict[str, Any]:
        namespace = None if request.get("allNamespaces") else (
            request.get("namespace") or "default")
        name = request.get("name")
        labels, fields = request.get("labelSelector"), request.get("fieldSelector")
        items, error = self.objects.get(need(request, "kind", str), namespace,
                                        name if isinstance(name, str) else None,
                                        labels if isinstance(labels, str) else None,
                                        fields if isinstance(fields, str) else None)
        if error:
            return {"ok": False, "error": error}
        notice = self.objects.notice(need(request, "kind", str), items)
        return {"ok": True, "items": items, **({"warning": notice} if notice else {})}

    async def op_patch(self, request: dict[str, Any]) -> dict[str, Any]:
        """kubectl's `scale` (`replicas`) and `rollout restart` (`restart`) of a Deployment."""
        namespace = request.get("namespace") or "default"
        name = need(request, "name", str)
        items, error = self.objects.get(need(request, "kind", str), namespace, name)
        if error:
            return {"ok": False, "error": error}
        body = {k: v for k, v in items[0].items() if k != "status"}
        spec = dict(body.get("spec") or {})
        if isinstance(request.get("replicas"), int):
            spec["replicas"] = request["replicas"]
        if request.get("restart"):
            template = dict(spec.get("template") or {})
            meta = dict(template.get("metadata") or {})
            meta["annotations"] = {**(meta.get("annotations") or {}),
                                   "kubectl.kubernetes.io/restartedAt": utc_now()}
            spec["template"] = {**template, "metadata": meta}
        results = self.objects.apply([{**body, "spec": spec}], namespace)
        return {"ok": results[0]["ok"], "error": results[0].get("error")}

    async def op_status(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "status": status.gather(
            self.objects.store, self.pipeline, self.dataplane, self.connections.status(),
            self.envoy.status() if self.envoy else None)}

    async def op_env(self, request: dict[str, Any]) -> dict[str, Any]:
        options = self.options
        name = request.get("gateway")
        if isinstance(name, str):
            namespace = request.get("namespace") or "default"
            gateway = self.pipeline.inputs.resources.gtw_gateways.get((namespace, name))
            if gateway is None:
                return {"ok": False, "error": f"Gateway.gateway.networking.k8s.io "
                                              f"{namespace}/{name} not found"}
            ports = {li.protocol: options.bind_port(li.port)
                     for li in reversed(gateway.spec.listeners)}  # the first of each wins
            env = {"INGRESS_HOST": gateway_objects.address(options)}
            if "HTTP" in ports:
                env["INGRESS_PORT"] = str(ports["HTTP"])
            secure = ports.get("HTTPS") or ports.get("TLS")
            if secure is not None:
                env["SECURE_INGRESS_PORT"] = str(secure)
            return {"ok": True, "env": env}
        return {"ok": True, "env": {
            "INGRESS_HOST": gateway_objects.address(options),
            "INGRESS_PORT": str(options.bind_port(80)),
            "SECURE_INGRESS_PORT": str(options.bind_port(443)),
            "TCP_INGRESS_PORT": str(options.bind_port(31400)),
        }}

    async def op_describe(self, request: dict[str, Any]) -> dict[str, Any]:
        """One object with what bastion found wrong with it and whether the gateway holds it."""
        namespace = request.get("namespace") or "default"
        kind, name = need(request, "kind", str), need(request, "name", str)
        items, error = self.objects.get(kind, namespace, name)
        deleted = None
        if error and self.objects.resolve_kind(kind) == ("", "Secret"):
            gone = self.pipeline.deleted_secret(namespace, name)
            if gone is not None:
                items, error = [gone.body], None
                deleted = self.pipeline.deleted_secrets().get(f"{namespace}/{name}")
        if error:
            return {"ok": False, "error": error}
        body = items[0]
        meta = body.get("metadata", {})
        kind = body.get("kind", "")
        if kind == "Gateway" and str(body.get("apiVersion", "")).startswith(GATEWAY_API + "/"):
            kind = GATEWAY_KIND  # findings tell the two Gateway kinds apart
        ref = ObjectRef(kind, meta.get("namespace", ""), meta.get("name", ""))
        revision = int(meta.get("resourceVersion", 0))
        return {"ok": True, "object": body, "revision": revision, "deleted": deleted,
                "distributed": self.connections.synced(revision),
                "gateways": len(self.connections.all),
                "diagnostics": [d.to_dict() for d in self.pipeline.diagnostics_for(ref)],
                "events": self.objects.events.of(ref.kind, ref.namespace, ref.name)
                if self.objects.events else []}

    async def op_analyze(self, request: dict[str, Any]) -> dict[str, Any]:
        """The live configuration analysed, with the request's `objects` laid over it."""
        objects = request.get("objects") or []
        if not isinstance(objects, list) or not all(isinstance(o, dict) for o in objects):
            raise BadRequest("field 'objects' must be a list of objects")
        refused, found = analysis.live(self.pipeline, objects)
        return {"ok": True, "refused": refused, "diagnostics": [d.to_dict() for d in found]}

    async def op_wait(self, request: dict[str, Any]) -> dict[str, Any]:
        """Until every connected gateway holds config built from the object's revision."""
        namespace = request.get("namespace") or "default"
        kind, name = need(request, "kind", str), need(request, "name", str)
        revision = self.objects.object_revision(kind, namespace, name)
        if revision is None:
            return {"ok": False, "error": f"{kind} {namespace}/{name} not found"}
        timeout = float(request.get("timeout", 30))
        if await self._distributed(revision, timeout):
            return {"ok": True, "revision": revision}
        return {"ok": False, "error": (
            f"timed out after {timeout:g}s waiting for the gateways to accept revision "
            f"{revision} of {kind} {namespace}/{name}")}

    async def _distributed(self, revision: int, timeout: float) -> bool:
        """Every gateway holds config built from `revision`: this control plane's, and, with a
        shared store, those the other control planes announce (`istioctl x wait` asks every
        istiod replica the same way). Revisions are the store's, the same for all."""
        if not fleet.others(self.objects.store, self.fleet_name):
            return await self.connections.wait_synced(revision, timeout)
        deadline = time.monotonic() + timeout
        while True:
            others = fleet.others(self.objects.store, self.fleet_name)
            local = self.connections.all
            if (local or others) and all(
                    c.session.synced_generation >= revision for c in local) and all(
                    g["syncedRevision"] >= revision for g in others):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(fleet.INTERVAL_S)

    async def op_admin(self, request: dict[str, Any]) -> dict[str, Any]:
        """Where Envoy's admin interface listens (loopback), for proxy-config commands."""
        if self.envoy is None or not self.envoy.admin_address:
            return {"ok": False, "error": "the gateway's Envoy is not running"}
        return {"ok": True, "admin": self.envoy.admin_address}

    async def op_issue_certificate(self, request: dict[str, Any]) -> dict[str, Any]:
        """A client certificate signed by the xDS CA for the key of the request's CSR (the
        key itself never reaches the control plane): a remote gateway's (`role` gateway, its
        name and namespace) or an operator's for the remote API (`role` admin)."""
        name, role = need(request, "name", str), need(request, "role", str)
        if role == "gateway":
            namespace = need(request, "namespace", str)
            identity = GatewayIdentity(namespace, name)
            if GatewayIdentity.parse(identity.uri) != identity:
                raise BadRequest(f"gateway {namespace}/{name}: not a valid name and namespace")
            uri, organization = identity.uri, namespace
        elif role == "admin":
            uri, organization = admin_uri(name), "bastion admins"
            if not is_dns_label(name):
                raise BadRequest(f"admin {name!r}: not a valid name (a DNS label)")
        else:
            raise BadRequest(f"role {role!r}: expected gateway or admin")
        authority = (self.xds_authority or (lambda: xds_ca.ensure(self.objects.store)))()
        days = request.get("days", 365)
        if not isinstance(days, int):
            raise BadRequest("field 'days' must be an int")
        chain = xds_ca.issue_client(authority, need(request, "csr", str).encode(), name,
                                    organization, uri, days)
        return {"ok": True, "certificate": chain.decode(), "ca": authority.pem.decode(),
                "identity": uri}
