"""Reading what an Envoy holds from its admin interface (loopback only): the config dump, and
rows for people. Envoy redacts private keys in its dumps; certificates are shown by serial and
dates, never by their bytes."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

from bastion.errors import Unavailable
from bastion.pem import load_certificates, summarize


def config_dump(address: str, resource: str) -> list[dict[str, Any]]:
    """One resource type of Envoy's /config_dump, from its admin interface on loopback."""
    url = f"http://{address}/config_dump?resource={resource}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            configs: list[dict[str, Any]] = json.load(response).get("configs", [])
            return configs
    except (urllib.error.URLError, OSError) as exc:
        raise Unavailable(f"cannot read Envoy's admin interface at {address}: {exc}") from None


def secret_rows(configs: list[dict[str, Any]], status: str) -> list[list[str]]:
    rows = []
    for entry in configs:
        secret = entry.get("secret", {})
        name = entry.get("name", secret.get("name", ""))
        if "tls_certificate" in secret:
            kind, field = "Cert Chain", secret["tls_certificate"].get("certificate_chain", {})
        elif "validation_context" in secret:
            kind, field = "CA", secret["validation_context"].get("trusted_ca", {})
        else:
            rows.append([name, "other", status, "false", "", "", "", ""])
            continue
        try:
            certs = load_certificates(base64.b64decode(field.get("inline_bytes", "")))
        except ValueError:
            rows.append([name, kind, status, "false", "", "", "", ""])
            continue
        first = summarize(certs[0])
        anchors = "; ".join(summarize(c).subject for c in certs) if kind == "CA" else ""
        rows.append([name, kind, status, "true", first.serial, first.not_after,
                     first.not_before, anchors])
    return rows


def listener_row(entry: dict[str, Any]) -> list[str]:
    listener = entry.get("active_state", {}).get("listener", {})
    address = listener.get("address", {}).get("socket_address", {})
    chains = listener.get("filter_chains", [])
    snis = [",".join(c.get("filter_chain_match", {}).get("server_names", [])) or "*"
            for c in chains]
    return [entry.get("name", ""), f"{address.get('address')}:{address.get('port_value')}",
            str(len(chains)), "; ".join(snis)]


def route_row(entry: dict[str, Any]) -> list[str]:
    config = entry.get("route_config", {})
    vhosts = config.get("virtual_hosts", [])
    return [config.get("name", ""), str(len(vhosts)),
            ", ".join(d for v in vhosts for d in v.get("domains", []))]


def cluster_row(entry: dict[str, Any]) -> list[str]:
    cluster = entry.get("cluster", {})
    return [cluster.get("name", ""), cluster.get("type", "EDS")]
