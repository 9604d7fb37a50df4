"""Commands about the running gateway: env, wait, status, logs."""

from __future__ import annotations

import json
import re
import sys
from collections import deque

import click

from bastion.cli.common import State, fail, namespace_option, pass_state

DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)?$")


def parse_timeout(value: str) -> float:
    match = DURATION.match(value.strip())
    if not match:
        raise click.BadParameter(f"invalid duration {value!r} (use e.g. 10s, 500ms, 1m)")
    number, unit = float(match.group(1)), match.group(2) or "s"
    return number * {"ms": 0.001, "s": 1.0, "m": 60.0}[unit]


@click.command()
@pass_state
def env(state: State) -> None:
    """Print INGRESS_HOST and the ingress ports, for `eval "$(bastion env)"`."""
    answer = state.call({"op": "env"})
    for key, value in answer["env"].items():
        click.echo(f"export {key}={value}")


@click.command()
@click.option("--for", "condition", default="distribution",
              type=click.Choice(["distribution"]), help="What to wait for.")
@click.option("--timeout", default="30s", help="How long to wait (e.g. 10s).")
@click.argument("kind")
@click.argument("name")
@namespace_option
@pass_state
def wait(state: State, condition: str, timeout: str, kind: str, name: str) -> None:
    """Wait until the gateway has accepted config that includes KIND NAME (NAME or NAME.NS)."""
    namespace = state.ns
    if "." in name and kind.lower() not in ("secret", "secrets"):
        name, namespace = name.split(".", 1)
    seconds = parse_timeout(timeout)
    answer = state.call({"op": "wait", "kind": kind, "name": name, "namespace": namespace,
                         "timeout": seconds}, timeout=seconds + 10)
    if not answer.get("ok"):
        fail(answer.get("error", "wait failed"))
    click.echo(f"{kind} {namespace}/{name} distributed to the gateway "
               f"(revision {answer['revision']})")


@click.command()
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text")
@pass_state
def status(state: State, fmt: str) -> None:
    """What the gateway holds: connections, versions ACKed, NACKs, problems."""
    answer = state.call({"op": "status"})
    if not answer.get("ok"):
        fail(answer.get("error", "status failed"))
    data = answer["status"]
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    click.echo(f"config revision {data['revision']}, translated revision "
               f"{data['snapshotRevision']}")
    if data.get("translateError"):
        click.echo(f"translation error (last good config kept): {data['translateError']}")
    envoy = data.get("envoy")
    if envoy:
        click.echo(f"envoy: pid {envoy['pid']}, admin {envoy['admin']}, restarts "
                   f"{envoy['restarts']}" + (f", last exit {envoy['lastExit']}"
                                             if envoy["lastExit"] else ""))
    if not data["gateways"]:
        click.echo("gateways: none connected")
    for gw in data["gateways"]:
        state_word = "in sync" if gw["inSync"] else "syncing"
        group = f" (group {gw['group']})" if gw.get("group") else ""
        click.echo(f"gateway {gw['node']}{group}: {state_word} at revision "
                   f"{gw['syncedRevision']}")
        for short, t in gw["types"].items():
            line = f"  {short}: acked {t['acked'] or '-'} ({t['resources']} resources)"
            if t["lastNack"]:
                when = "rejected now" if t["nackCurrent"] else "since accepted a newer version"
                line += f", {t['nacks']} NACK(s) ({when}), last: {t['lastNack']}"
            click.echo(line)
    if data["secrets"]:
        click.echo("secrets:")
        for name, summary in data["secrets"].items():
            click.echo(f"  {name}: {summary}")
    for name, notice in data.get("deletedSecrets", {}).items():
        click.echo(f"secret {name}: {notice}")
    problems = data["diagnostics"]
    click.echo("problems: none" if not problems else "problems:")
    for d in problems:
        where = f"{d['object']}: {d['field']}" if d["field"] else d["object"]
        click.echo(f"  [{d['severity']}] {where}: {d['message']}")


@click.command()
@click.option("--envoy", "which", flag_value="envoy", help="Only Envoy's log.")
@click.option("--control-plane", "which", flag_value="control", help="Only bastion's log.")
@click.option("--tail", default=-1, help="Lines from the end (-1: all).")
@click.argument("pod", required=False)
@namespace_option
@pass_state
def logs(state: State, which: str | None, tail: int, pod: str | None) -> None:
    """Print the control plane's log, then Envoy's."""
    files = []
    if which in (None, "control"):
        files.append(("bastion", state.state_dir / "bastion.log"))
    if which in (None, "envoy"):
        files.append(("envoy", state.state_dir / "envoy.log"))
    for label, path in files:
        if not path.exists():
            continue
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = deque(handle, maxlen=tail) if tail >= 0 else list(handle)
        if len(files) > 1:
            click.echo(f"==> {label} ({path}) <==")
        sys.stdout.write("".join(lines))


@click.command()
@click.argument("kind")
@click.argument("name")
@namespace_option
@pass_state
def describe(state: State, kind: str, name: str) -> None:
    """An object, the problems bastion found in it, and whether the gateway holds it."""
    from bastion.cli.output import redact

    answer = state.call({"op": "describe", "kind": kind, "name": name,
                         "namespace": state.ns})
    if not answer.get("ok"):
        fail(answer.get("error", "not found"))
    body = redact(answer["object"])
    meta = body.get("metadata", {})
    click.echo(f"Name:         {meta.get('name')}")
    if meta.get("namespace"):
        click.echo(f"Namespace:    {meta.get('namespace')}")
    click.echo(f"Kind:         {body.get('kind')} ({body.get('apiVersion')})")
    click.echo(f"Revision:     {answer['revision']}")
    if answer.get("deleted"):
        click.echo(f"Deleted:      {answer['deleted']} (in force until then)")
    if answer["gateways"]:
        where = "yes" if answer["distributed"] else "not yet"
        click.echo(f"Distributed:  {where} (to {answer['gateways']} gateway(s))")
    else:
        click.echo("Distributed:  no gateway connected")
    click.echo("Problems:" + ("     none" if not answer["diagnostics"] else ""))
    for d in answer["diagnostics"]:
        click.echo(f"  [{d['severity']}] {d['field'] or '-'}: {d['message']}")
    click.echo("Spec:")
    import yaml

    shown = {k: v for k, v in body.items() if k not in ("apiVersion", "kind", "metadata")}
    for line in yaml.safe_dump(shown, sort_keys=True).rstrip().splitlines():
        click.echo(f"  {line}")
