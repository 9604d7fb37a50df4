"""`bastion proxy-config`: what the gateway's Envoy holds, read from its admin interface
(loopback only), like `istioctl proxy-config`. Envoy redacts private keys in its dumps; bastion
shows certificates by serial and dates, never by their bytes."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

import click

from bastion.cli.common import State, fail, pass_state


def _dump(state: State, resource: str) -> list[dict[str, Any]]:
    answer = state.call({"op": "admin"})
    if not answer.get("ok"):
        fail(answer.get("error", "no admin address"))
    url = f"http://{answer['admin']}/config_dump?resource={resource}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response).get("configs", [])
    except (urllib.error.URLError, OSError) as exc:
        fail(f"cannot read Envoy's admin interface at {answer['admin']}: {exc}")


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["   ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def secret_rows(configs: list[dict[str, Any]], status: str) -> list[list[str]]:
    from bastion.pem import load_certificates
    from bastion.translate.istio.credentials import summarize

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


@click.group("proxy-config")
def proxy_config() -> None:
    """Inspect what the gateway's Envoy holds (secrets, listeners, routes, clusters)."""


@proxy_config.command("secret")
@click.argument("pod", required=False)
@click.option("-o", "--output", "fmt", type=click.Choice(["short", "json"]), default="short")
@pass_state
def secret(state: State, pod: str | None, fmt: str) -> None:
    """Each secret the gateway holds: ACTIVE or WARMING, serial, validity, trust anchors."""
    active = _dump(state, "dynamic_active_secrets")
    warming = _dump(state, "dynamic_warming_secrets")
    if fmt == "json":
        click.echo(json.dumps({"active": active, "warming": warming}, indent=2))
        return
    rows = secret_rows(active, "ACTIVE") + secret_rows(warming, "WARMING")
    click.echo(_table(["RESOURCE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER",
                       "NOT AFTER", "NOT BEFORE", "TRUST ANCHORS"], rows))


def _simple(resource: str, headers: list[str], extract: Any) -> Any:
    @click.argument("pod", required=False)
    @click.option("-o", "--output", "fmt", type=click.Choice(["short", "json"]), default="short")
    @pass_state
    def command(state: State, pod: str | None, fmt: str) -> None:
        configs = _dump(state, resource)
        if fmt == "json":
            click.echo(json.dumps(configs, indent=2))
            return
        click.echo(_table(headers, [extract(c) for c in configs]))

    return command


def _listener(entry: dict[str, Any]) -> list[str]:
    listener = entry.get("active_state", {}).get("listener", {})
    address = listener.get("address", {}).get("socket_address", {})
    chains = listener.get("filter_chains", [])
    snis = [",".join(c.get("filter_chain_match", {}).get("server_names", [])) or "*"
            for c in chains]
    return [entry.get("name", ""), f"{address.get('address')}:{address.get('port_value')}",
            str(len(chains)), "; ".join(snis)]


def _route(entry: dict[str, Any]) -> list[str]:
    config = entry.get("route_config", {})
    vhosts = config.get("virtual_hosts", [])
    return [config.get("name", ""), str(len(vhosts)),
            ", ".join(d for v in vhosts for d in v.get("domains", []))]


def _cluster(entry: dict[str, Any]) -> list[str]:
    cluster = entry.get("cluster", {})
    return [cluster.get("name", ""), cluster.get("type", "EDS")]


proxy_config.command("listener", help="Listeners and their SNI filter chains.")(
    _simple("dynamic_listeners", ["NAME", "ADDRESS", "CHAINS", "SNI"], _listener))
proxy_config.command("route", help="Route configurations and their domains.")(
    _simple("dynamic_route_configs", ["NAME", "VHOSTS", "DOMAINS"], _route))
proxy_config.command("cluster", help="Upstream clusters.")(
    _simple("dynamic_active_clusters", ["NAME", "TYPE"], _cluster))
