"""`scale` and `rollout restart`: kubectl's verbs for Deployments."""

from __future__ import annotations

import time

import click

from bastion.cli.common import State, fail, namespace_option, pass_state


def _deployment(target: str, name: str | None) -> str:
    """`deployment NAME`, `deploy NAME` or `deployment/NAME` -> NAME."""
    kind, _, inline = target.partition("/")
    if kind not in ("deployment", "deployments", "deploy"):
        fail(f"only deployments can be changed this way, not {kind!r}")
    chosen = inline or name
    if not chosen:
        fail("a deployment name is required")
    return chosen


def _patch(state: State, deployment: str, change: dict[str, object]) -> None:
    answer = state.call({"op": "patch", "kind": "deployment", "name": deployment,
                         "namespace": state.ns, **change})
    if not answer.get("ok"):
        fail(answer.get("error") or f"deployment.apps/{deployment} not changed")


@click.command()
@click.argument("target")
@click.argument("name", required=False)
@click.option("--replicas", type=click.IntRange(0, 64), required=True)
@namespace_option
@pass_state
def scale(state: State, target: str, name: str | None, replicas: int) -> None:
    """Set a Deployment's replicas."""
    deployment = _deployment(target, name)
    _patch(state, deployment, {"replicas": replicas})
    click.echo(f"deployment.apps/{deployment} scaled")


@click.group()
def rollout() -> None:
    """Manage the rollout of a Deployment."""


@rollout.command("restart")
@click.argument("target")
@click.argument("name", required=False)
@namespace_option
@pass_state
def restart(state: State, target: str, name: str | None) -> None:
    """Replace a Deployment's pods with new ones, new ones first."""
    deployment = _deployment(target, name)
    _patch(state, deployment, {"restart": True})
    click.echo(f"deployment.apps/{deployment} restarted")


@rollout.command("status")
@click.argument("target")
@click.argument("name", required=False)
@click.option("--timeout", default="0s", help="How long to wait (0s: as long as it takes).")
@namespace_option
@pass_state
def status(state: State, target: str, name: str | None, timeout: str) -> None:
    """Wait until a Deployment's pods are all ready."""
    from bastion.cli.ops import parse_timeout

    deployment = _deployment(target, name)
    limit = parse_timeout(timeout)
    deadline = time.monotonic() + limit if limit > 0 else None
    said = ""
    while True:
        answer = state.call({"op": "get", "kind": "deployment", "name": deployment,
                             "namespace": state.ns})
        if not answer.get("ok"):
            fail(f"Error from server (NotFound): {answer.get('error')}")
        if answer.get("warning"):
            fail(answer["warning"])
        body = answer["items"][0]
        wanted = int((body.get("spec") or {}).get("replicas", 1))
        ready = int((body.get("status") or {}).get("readyReplicas", 0))
        if ready >= wanted:
            click.echo(f'deployment "{deployment}" successfully rolled out')
            return
        line = (f'Waiting for deployment "{deployment}" rollout to finish: {ready} of {wanted} '
                "updated replicas are available...")
        if line != said:
            click.echo(line)
            said = line
        if deadline is not None and time.monotonic() > deadline:
            fail("timed out waiting for the condition")
        time.sleep(0.2)
