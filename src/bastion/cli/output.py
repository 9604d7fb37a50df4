"""How objects are shown: kubectl-like tables, YAML and JSON, with private keys redacted."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import Any

import yaml

from bastion.api import kinds
from bastion.api.core import PRIVATE_KEY_ENTRIES
from bastion.errors import InputError
from bastion.private import REDACTED


def redact(body: dict[str, Any]) -> dict[str, Any]:
    """A Secret with every private key replaced by `[redacted]`: keys never leave bastion."""
    if body.get("kind") != "Secret" or not isinstance(body.get("data"), dict):
        return body
    data = {}
    for key, value in body["data"].items():
        try:
            decoded = base64.b64decode(value or "")
        except (binascii.Error, ValueError):
            decoded = b""
        data[key] = REDACTED if key in PRIVATE_KEY_ENTRIES or b"PRIVATE KEY" in decoded else value
    return {**body, "data": data}


def age(body: dict[str, Any], now: dt.datetime | None = None) -> str:
    created = body.get("metadata", {}).get("creationTimestamp")
    if not created:
        return "<unknown>"
    start = dt.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    seconds = int(((now or dt.datetime.now(dt.UTC)) - start).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _service_columns(body: dict[str, Any]) -> list[tuple[str, str]]:
    spec, status = body.get("spec") or {}, body.get("status") or {}
    service_type = spec.get("type", "ClusterIP")
    ports = []
    for p in spec.get("ports", []):
        node = f":{p['nodePort']}" if p.get("nodePort") else ""
        ports.append(f"{p.get('port')}{node}/{p.get('protocol', 'TCP')}")
    ingress = [i.get("ip") or i.get("hostname") for i in
               (status.get("loadBalancer") or {}).get("ingress") or []]
    external = ",".join(i for i in ingress if i) or (
        "<pending>" if service_type == "LoadBalancer" else "<none>")
    return [("TYPE", service_type), ("CLUSTER-IP", spec.get("clusterIP") or "<none>"),
            ("EXTERNAL-IP", external), ("PORT(S)", ",".join(ports) or "<none>")]


def _pod_columns(body: dict[str, Any]) -> list[tuple[str, str]]:
    status = body.get("status") or {}
    containers = status.get("containerStatuses") or []
    total = len((body.get("spec") or {}).get("containers") or containers)
    ready = sum(1 for c in containers if c.get("ready"))
    waiting = [c["state"]["waiting"].get("reason", "Waiting") for c in containers
               if "waiting" in (c.get("state") or {})]
    phase = waiting[0] if waiting and status.get("phase") != "Running" else status.get(
        "phase", "Pending")
    restarts = sum(int(c.get("restartCount", 0)) for c in containers)
    return [("READY", f"{ready}/{total}"), ("STATUS", phase), ("RESTARTS", str(restarts))]


def _deployment_columns(body: dict[str, Any]) -> list[tuple[str, str]]:
    status = body.get("status") or {}
    wanted = (body.get("spec") or {}).get("replicas", 1)
    return [("READY", f"{status.get('readyReplicas', 0)}/{wanted}"),
            ("UP-TO-DATE", str(status.get("updatedReplicas", 0))),
            ("AVAILABLE", str(status.get("availableReplicas", 0)))]


def _columns(body: dict[str, Any]) -> list[tuple[str, str]]:
    """kubectl's columns for the kinds people list most."""
    kind = body.get("kind")
    spec = body.get("spec") or {}
    if kind == "Secret":
        return [("TYPE", body.get("type", "Opaque")), ("DATA", str(len(body.get("data") or {})))]
    if kind == "VirtualService":
        return [("GATEWAYS", json.dumps(spec.get("gateways", []))),
                ("HOSTS", json.dumps(spec.get("hosts", [])))]
    if kind == "Service":
        return _service_columns(body)
    if kind == "Pod":
        return _pod_columns(body)
    if kind == "Deployment":
        return _deployment_columns(body)
    if kind == "Certificate":  # cert-manager's printer columns
        return [("READY", _condition(body, "Ready").get("status", "")),
                ("SECRET", spec.get("secretName", ""))]
    if kind in ("Issuer", "ClusterIssuer"):
        return [("READY", _condition(body, "Ready").get("status", ""))]
    if kind == "Endpoints":
        eps = [f"{a.get('ip')}:{p.get('port')}" for s in body.get("subsets") or []
               for a in s.get("addresses") or [] for p in s.get("ports") or []]
        return [("ENDPOINTS", ",".join(eps) or "<none>")]
    return []


def _condition(body: dict[str, Any], kind: str) -> dict[str, Any]:
    conditions = (body.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == kind), {})


def _wide_columns(body: dict[str, Any]) -> list[tuple[str, str]]:
    kind, spec, status = body.get("kind"), body.get("spec") or {}, body.get("status") or {}
    if kind == "Certificate":
        return [("ISSUER", (spec.get("issuerRef") or {}).get("name", "")),
                ("STATUS", _condition(body, "Ready").get("message", ""))]
    if kind == "Service":
        selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items()))
        return [("SELECTOR", selector or "<none>")]
    if kind == "Pod":
        return [("IP", status.get("podIP") or "<none>"), ("NODE", "localhost")]
    if kind == "Deployment":
        containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
        match = ((spec.get("selector") or {}).get("matchLabels")) or {}
        return [("CONTAINERS", ",".join(c.get("name", "") for c in containers)),
                ("IMAGES", ",".join(c.get("image", "") for c in containers)),
                ("SELECTOR", ",".join(f"{k}={v}" for k, v in sorted(match.items())))]
    return []


def table(items: list[dict[str, Any]], all_namespaces: bool, wide: bool = False,
          show_labels: bool = False) -> str:
    if not items:
        return ""
    rows = []
    for body in items:
        row = []
        meta = body.get("metadata", {})
        if all_namespaces:
            row.append(("NAMESPACE", meta.get("namespace", "")))
        row.append(("NAME", meta.get("name", "")))
        row.extend(_columns(body))
        row.append(("AGE", age(body)))
        if wide:
            row.extend(_wide_columns(body))
        if show_labels:
            labels = ",".join(f"{k}={v}" for k, v in sorted((meta.get("labels") or {}).items()))
            row.append(("LABELS", labels or "<none>"))
        rows.append(row)
    headers = [h for h, _ in rows[0]]
    widths = [max(len(h), *(len(r[i][1]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["   ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("   ".join(v.ljust(w) for (_, v), w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def dump(items: list[dict[str, Any]], fmt: str, single: bool) -> str:
    items = [redact(i) for i in items]
    doc: Any = items[0] if single and len(items) == 1 else {
        "apiVersion": "v1", "kind": "List", "items": items}
    if fmt == "json":
        return json.dumps(doc, indent=2, sort_keys=True)
    return yaml.safe_dump(doc, sort_keys=True, default_flow_style=False).rstrip()


def _as_document(items: list[dict[str, Any]], single: bool) -> Any:
    items = [redact(i) for i in items]
    return items[0] if single and len(items) == 1 else {
        "apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}


def jsonpath(items: list[dict[str, Any]], template: str, single: bool) -> str:
    """kubectl's `-o jsonpath=`: the template over the object (one named) or the List."""
    from bastion.cli import jsonpath as kubectl_jsonpath

    return kubectl_jsonpath.render(template.strip("'"), _as_document(items, single))


def custom_columns(items: list[dict[str, Any]], spec: str) -> str:
    """kubectl's `-o custom-columns=HEADER:.path,...`."""
    from bastion.cli import jsonpath as kubectl_jsonpath

    columns = []
    for part in spec.split(","):
        header, sep, path = part.partition(":")
        if not sep or not header or not path:
            raise InputError(f"custom-columns format {spec!r}: expected HEADER:.path,...")
        columns.append((header, path if path.startswith("{") else "{" + path + "}"))
    rows = [[h for h, _ in columns]]
    for body in (redact(i) for i in items):
        rows.append([kubectl_jsonpath.render(p, body) or "<none>" for _, p in columns])
    widths = [max(len(r[i]) for r in rows) for i in range(len(columns))]
    return "\n".join("   ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def names(items: list[dict[str, Any]]) -> str:
    out = []
    for body in items:
        group, _ = kinds.split_api_version(body.get("apiVersion", ""))
        info = kinds.kind_info(group, body.get("kind", ""))
        out.append(f"{info.resource}/{body.get('metadata', {}).get('name')}")
    return "\n".join(out)
