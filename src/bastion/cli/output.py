"""How objects are shown: kubectl-like tables, YAML and JSON, with private keys redacted."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import Any

import yaml

from bastion.api import kinds
from bastion.private import REDACTED

PRIVATE_KEY_NAMES = {"tls.key", "key"}


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
        data[key] = REDACTED if key in PRIVATE_KEY_NAMES or b"PRIVATE KEY" in decoded else value
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


def _columns(body: dict[str, Any]) -> list[tuple[str, str]]:
    kind = body.get("kind")
    spec = body.get("spec") or {}
    if kind == "Secret":
        return [("TYPE", body.get("type", "Opaque")), ("DATA", str(len(body.get("data") or {})))]
    if kind == "VirtualService":
        return [("GATEWAYS", json.dumps(spec.get("gateways", []))),
                ("HOSTS", json.dumps(spec.get("hosts", [])))]
    if kind == "Service":
        ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}"
                         for p in spec.get("ports", []))
        return [("TYPE", spec.get("type", "ClusterIP")), ("PORT(S)", ports or "<none>")]
    if kind == "Endpoints":
        eps = [f"{a.get('ip')}:{p.get('port')}" for s in body.get("subsets") or []
               for a in s.get("addresses") or [] for p in s.get("ports") or []]
        return [("ENDPOINTS", ",".join(eps) or "<none>")]
    return []


def table(items: list[dict[str, Any]], all_namespaces: bool) -> str:
    if not items:
        return ""
    rows = []
    for body in items:
        row = []
        if all_namespaces:
            row.append(("NAMESPACE", body.get("metadata", {}).get("namespace", "")))
        row.append(("NAME", body.get("metadata", {}).get("name", "")))
        row.extend(_columns(body))
        row.append(("AGE", age(body)))
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


def names(items: list[dict[str, Any]]) -> str:
    out = []
    for body in items:
        group, _ = kinds.split_api_version(body.get("apiVersion", ""))
        info = kinds.kind_info(group, body.get("kind", ""))
        out.append(f"{info.resource}/{body.get('metadata', {}).get('name')}")
    return "\n".join(out)
