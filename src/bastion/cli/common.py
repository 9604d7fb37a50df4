"""Options and helpers shared by the commands."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from bastion.cli.client import Remote, call
from bastion.errors import BastionError

F = TypeVar("F", bound=Callable[..., Any])


class State:
    def __init__(self, state_dir: Path, remote: Remote | None = None) -> None:
        self.state_dir = state_dir
        self.remote = remote
        self.namespace: str | None = None

    @property
    def ns(self) -> str:
        return self.namespace or "default"

    def call(self, request: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
        try:
            return call(self.state_dir, request, timeout, self.remote)
        except BastionError as exc:
            fail(str(exc))


def _set_namespace(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        state = ctx.find_object(State)
        if state is not None:
            state.namespace = value


def namespace_option(f: F) -> F:
    """`-n` is accepted at every level, as kubectl users write it before or after the verb."""
    return click.option("-n", "--namespace", callback=_set_namespace, expose_value=False,
                        is_eager=False, help="Namespace (default: default).")(f)


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def warn(message: str) -> None:
    click.echo(f"Warning: {message}", err=True)


pass_state = click.make_pass_decorator(State)
