"""GatewayClass status: a class whose `controllerName` is bastion's (or Istio's, so the task's
`gatewayClassName: istio` works unchanged) is Accepted; another controller's class is left
alone, as controllers leave each other's classes."""

from __future__ import annotations

from typing import Any

from bastion.api.gatewayapi import CONTROLLERS
from bastion.clock import utc_now

_accepted_at: dict[str, str] = {}


def status(body: dict[str, Any]) -> dict[str, Any] | None:
    spec = body.get("spec") or {}
    if spec.get("controllerName") not in CONTROLLERS:
        return None
    uid = str((body.get("metadata") or {}).get("uid", ""))
    since = _accepted_at.setdefault(uid, utc_now())
    return {"conditions": [{
        "type": "Accepted", "status": "True", "reason": "Accepted",
        "message": "Handled by bastion", "lastTransitionTime": since,
        "observedGeneration": (body.get("metadata") or {}).get("generation", 1)}]}
