"""`bastion proxy-config`: what the gateway's Envoy holds, like `istioctl proxy-config`. The
reading is the Envoy driver's (`dataplane.envoy.admin`); this module only prints it."""

from __future__ import annotations

import json
from typing import Any

import click

from bastion.cli.common import State, fail, pass_state
from bastion.dataplane.envoy import admin
from bastion.errors import Unavailable


def _dump(state: State, resource: str) -> list[dict[str, Any]]:
    answer = state.call({"op": "admin"})
    if not answer.get("ok"):
        fail(answer.get("error", "no admin address"))
    try:
        return admin.config_dump(answer["admin"], resource)
    except Unavailable as exc:
        fail(str(exc))


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["   ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


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
    rows = admin.secret_rows(active, "ACTIVE") + admin.secret_rows(warming, "WARMING")
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


proxy_config.command("listener", help="Listeners and their SNI filter chains.")(
    _simple("dynamic_listeners", ["NAME", "ADDRESS", "CHAINS", "SNI"], admin.listener_row))
proxy_config.command("route", help="Route configurations and their domains.")(
    _simple("dynamic_route_configs", ["NAME", "VHOSTS", "DOMAINS"], admin.route_row))
proxy_config.command("cluster", help="Upstream clusters.")(
    _simple("dynamic_active_clusters", ["NAME", "TYPE"], admin.cluster_row))
