"""Gateway API status: a GatewayClass whose `controllerName` is bastion's (or Istio's, so the
task's `gatewayClassName: istio` works unchanged) is Accepted, another controller's class is
left alone, as controllers leave each other's classes; Gateways and HTTPRoutes get the status
worked out from the last build."""

from __future__ import annotations

from typing import Any

from bastion.api.gatewayapi import CONTROLLERS
from bastion.clock import utc_now
from bastion.services import gateway_objects
from bastion.services.pipeline import Pipeline
from bastion.store.keys import StoreKey
from bastion.translate.gatewayapi.status import gateway_status, route_status
from bastion.translate.istio import Options

_accepted_at: dict[str, str] = {}


def class_status(body: dict[str, Any]) -> dict[str, Any] | None:
    spec = body.get("spec") or {}
    if spec.get("controllerName") not in CONTROLLERS:
        return None
    uid = str((body.get("metadata") or {}).get("uid", ""))
    since = _accepted_at.setdefault(uid, utc_now())
    return {"conditions": [{
        "type": "Accepted", "status": "True", "reason": "Accepted",
        "message": "Handled by bastion", "lastTransitionTime": since,
        "observedGeneration": (body.get("metadata") or {}).get("generation", 1)}]}


def status(pipeline: Pipeline, key: StoreKey, options: Options) -> dict[str, Any] | None:
    """The status of a Gateway API object (None: none of bastion's to give)."""
    if key.kind == "GatewayClass":
        stored = pipeline.store.get(key)
        return class_status(stored.body) if stored is not None else None
    build = pipeline.build
    if build is None or key.kind not in ("Gateway", "HTTPRoute", "TLSRoute"):
        return None
    res = pipeline.inputs.resources
    if key.kind in ("HTTPRoute", "TLSRoute"):
        return route_status(res, (key.namespace, key.name), key.kind)
    configs = [g.ir.config for g in build.gateways.values()]
    return gateway_status(res, (key.namespace, key.name), configs, build.diagnostics,
                          gateway_objects.address(options))
