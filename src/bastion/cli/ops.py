"""Commands about the running gateway: env, wait, status, logs."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import click

from bastion.cli.common import State, fail, namespace_option, pass_state

DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")


def parse_timeout(value: str) -> float:
    match = DURATION.match(value.strip())
    if not match:
        raise click.BadParameter(f"invalid duration {value!r} (use e.g. 10s, 500ms, 1m)")
    number, unit = float(match.group(1)), match.group(2) or "s"
    return number * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]


@click.command()
@click.argument("gateway", required=False, metavar="[gtw/NAME]")
@namespace_option
@pass_state
def env(state: State, gateway: str | None) -> None:
    """Print INGRESS_HOST and the ingress ports, for `eval "$(bastion env)"`; with a Gateway
    API Gateway (`gtw/NAME`), its address and the local ports of its listeners."""
    request: dict[str, Any] = {"op": "env"}
    if gateway is not None:
        kind, _, name = gateway.partition("/")
        if kind not in ("gtw", "gateway.gateway.networking.k8s.io") or not name:
            fail("give a Gateway API Gateway as gtw/NAME")
        request.update(gateway=name, namespace=state.ns)
    answer = state.call(request)
    if not answer.get("ok", True):
        fail(answer.get("error", "env failed"))
    for key, value in answer["env"].items():
        click.echo(f"export {key}={value}")


@click.command()
@click.option("--for", "condition", default="distribution",
              help="distribution (istioctl x wait), or condition=NAME (kubectl wait).")
@click.option("--timeout", default="30s", help="How long to wait (e.g. 10s).")
@click.argument("kind")
@click.argument("name", required=False)
@namespace_option
@pass_state
def wait(state: State, condition: str, timeout: str, kind: str, name: str | None) -> None:
    """Wait until the gateway has accepted config that includes KIND NAME (NAME or NAME.NS),
    or until the object's status has a condition (KIND/NAME or KIND NAME)."""
    if name is None:
        kind, _, name = kind.partition("/")
        if not name:
            fail("give KIND NAME or KIND/NAME")
    seconds = parse_timeout(timeout)
    if condition.lower().startswith("condition="):
        _wait_condition(state, kind, name, condition.partition("=")[2], seconds)
        return
    if condition != "distribution":
        fail(f"--for must be distribution or condition=NAME, not {condition!r}")
    namespace = state.ns
    if "." in name and kind.lower() not in ("secret", "secrets"):
        name, namespace = name.split(".", 1)
    answer = state.call({"op": "wait", "kind": kind, "name": name, "namespace": namespace,
                         "timeout": seconds}, timeout=seconds + 10)
    if not answer.get("ok"):
        fail(answer.get("error", "wait failed"))
    click.echo(f"{kind} {namespace}/{name} distributed to the gateway "
               f"(revision {answer['revision']})")


def _wait_condition(state: State, kind: str, name: str, wanted: str, seconds: float) -> None:
    """kubectl's: until the object's `status.conditions` has `wanted` (any case) "True"."""
    wanted, _, value = wanted.partition("=")
    value = value or "True"
    deadline = time.monotonic() + seconds
    while True:
        answer = state.call({"op": "get", "kind": kind, "name": name, "namespace": state.ns})
        if not answer.get("ok"):
            fail(f"Error from server (NotFound): {answer.get('error')}")
        body = answer["items"][0]
        conditions = (body.get("status") or {}).get("conditions") or []
        if any(str(c.get("type", "")).lower() == wanted.lower()
               and str(c.get("status", "")).lower() == value.lower() for c in conditions):
            group = body.get("apiVersion", "").rpartition("/")[0]
            resource = body.get("kind", kind).lower() + (f".{group}" if group else "")
            click.echo(f"{resource}/{name} condition met")
            return
        if time.monotonic() >= deadline:
            fail(f"timed out waiting for the condition on {kind}/{name}")
        time.sleep(0.1)


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
    if "agent" in data:
        _agent_status(data)
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
    for name, plane in sorted((data.get("fleet") or {}).items()):
        gateways = plane.get("gateways", [])
        synced = sum(1 for g in gateways if g["inSync"])
        click.echo(f"control plane {name}: {len(gateways)} gateway(s), {synced} in sync"
                   + "".join(f"\n  {g['node']} ({g['group']}) from {g['peer']}: "
                             f"{'in sync' if g['inSync'] else 'syncing'} at revision "
                             f"{g['syncedRevision']}" for g in gateways))
    problems = data["diagnostics"]
    click.echo("problems: none" if not problems else "problems:")
    for d in problems:
        where = f"{d['object']}: {d['field']}" if d["field"] else d["object"]
        click.echo(f"  [{d['severity']}] {where}: {d['message']}")


def _agent_status(data: dict[str, Any]) -> None:
    """A remote gateway's agent: where its configuration comes from, and what Envoy holds."""
    agent = data["agent"]
    click.echo(f"remote gateway {agent['name']} (group {agent['group']})")
    if agent["current"]:
        click.echo(f"control plane: {agent['current']}, connected {agent['connectedSeconds']} s")
    else:
        click.echo(f"control plane: none answers ({', '.join(agent['controlPlanes'])}); "
                   f"serving what Envoy holds; last error: {agent['lastError'] or '-'}")
    last = agent["lastConfigSeconds"]
    click.echo(f"last configuration received: {'never' if last is None else f'{last} s ago'}"
               f", failovers {agent['failovers']}")
    if agent["diskCache"]:
        age = agent["diskCacheAgeSeconds"]
        click.echo(f"disk cache: {agent['diskCache']}"
                   + (f", written {age} s ago" if age is not None else ", not written yet"))
    else:
        click.echo("disk cache: off")
    envoy = data.get("envoy") or {}
    click.echo(f"envoy: pid {envoy.get('pid')}, admin {envoy.get('admin')}, restarts "
               f"{envoy.get('restarts')}")
    for gw in data["gateways"]:
        click.echo(f"  {'in sync' if gw['inSync'] else 'syncing'} with configuration "
                   f"{gw['syncedRevision']}")


@click.command()
@click.option("--envoy", "which", flag_value="envoy", help="Only Envoy's log.")
@click.option("--control-plane", "which", flag_value="control", help="Only bastion's log.")
@click.option("--tail", default=-1, help="Lines from the end (-1: all).")
@click.option("-c", "--container", help="The container (a gateway pod has one: istio-proxy).")
@click.option("-l", "--selector", help="The pods with these labels.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing what is appended.")
@click.option("--since", help="Only lines newer than this (5s, 2m, 3h).")
@click.argument("pod", required=False)
@namespace_option
@pass_state
def logs(state: State, which: str | None, tail: int, container: str | None,
         selector: str | None, follow: bool, since: str | None, pod: str | None) -> None:
    """A pod's log (the gateway pod's is Envoy's), by name, `deploy/NAME` or `-l`; with
    neither, the control plane's log, then Envoy's."""
    from bastion.cli import logfiles

    if pod or selector:
        files = [(name, Path(path)) for name, path in _pod_logs(state, pod, selector, container)]
    else:
        files = []
        if which in (None, "control"):
            files.append(("bastion", state.state_dir / "bastion.log"))
        if which in (None, "envoy"):
            files.append(("envoy", state.state_dir / "envoy.log"))
    cutoff = time.time() - parse_timeout(since) if since else None
    for label, path in files:
        if not path.exists():
            continue
        if len(files) > 1:
            click.echo(f"==> {label} ({path}) <==")
        sys.stdout.write("".join(logfiles.read(path, tail, cutoff)))
    if follow:
        logfiles.follow([p for _, p in files])


def _pod_logs(state: State, pod: str | None, selector: str | None, container: str | None
              ) -> list[tuple[str, str]]:
    """(pod name, log file) of the pods named."""
    from bastion.managed import LOG_ANNOTATION

    request = {"op": "get", "kind": "pod", "namespace": state.ns}
    if pod and "/" in pod:
        kind, _, name = pod.partition("/")
        if kind in ("deploy", "deployment", "deployments"):
            answer = state.call({"op": "get", "kind": "deployment", "name": name,
                                 "namespace": state.ns})
            if not answer.get("ok"):
                fail(f"Error from server (NotFound): {answer.get('error')}")
            match = answer["items"][0].get("spec", {}).get("selector", {}).get("matchLabels", {})
            selector = ",".join(f"{k}={v}" for k, v in sorted(match.items()))
            pod = None
        elif kind in ("pod", "pods", "po"):
            pod = name
        else:
            fail(f"cannot get logs from {kind}: use a pod, deploy/NAME or -l")
    answer = state.call({**request, "name": pod, "labelSelector": selector})
    if not answer.get("ok"):
        fail(f"Error from server (NotFound): {answer.get('error')}")
    out = []
    for body in answer["items"]:
        meta = body.get("metadata", {})
        names = [c.get("name") for c in body.get("spec", {}).get("containers", [])]
        if container and container not in names:
            fail(f"container {container} is not valid for pod {meta.get('name')}")
        path = (meta.get("annotations") or {}).get(LOG_ANNOTATION)
        if path:
            out.append((meta.get("name", ""), path))
    if not out:
        fail(f"No resources found in {state.ns} namespace.")
    return out


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
    events = answer.get("events") or []
    click.echo("Events:" + ("  <none>" if not events else ""))
    rows = [("Type", "Reason", "Count", "Last seen", "From", "Message")] + [
        (e.get("type", ""), e.get("reason", ""), str(e.get("count", 1)),
         e.get("lastTimestamp", ""), (e.get("source") or {}).get("component", ""),
         e.get("message", "")) for e in events]
    if events:
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        for row in rows:
            cells = [c.ljust(w) for c, w in zip(row[:5], widths, strict=True)]
            click.echo("  " + "  ".join([*cells, row[5]]))
