"""`scale` and `rollout restart`: kubectl's verbs for Deployments."""

from __future__ import annotations

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


@click.command()
@click.argument("target")
@click.argument("name", required=False)
@click.option("--replicas", type=click.IntRange(0, 64), required=True)
@namespace_option
@pass_state
def scale(state: State, target: str, name: str | None, replicas: int) -> None:
    """Set a Deployment's replicas."""
    deployment = _deployment(target, name)
    answer = state.call({"op": "patch", "kind": "deployment", "name": deployment,
                         "namespace": state.ns, "replicas": replicas})
    if not answer.get("ok"):
        fail(answer.get("error", "scale failed"))
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
    answer = state.call({"op": "patch", "kind": "deployment", "name": deployment,
                         "namespace": state.ns, "restart": True})
    if not answer.get("ok"):
        fail(answer.get("error", "restart failed"))
    click.echo(f"deployment.apps/{deployment} restarted")
