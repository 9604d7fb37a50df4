"""The `bastion` command: kubectl's verbs for the embedded store, plus the gateway's own."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bastion import __version__
from bastion.cli import ops, resources
from bastion.cli.client import default_state_dir
from bastion.cli.common import State
from bastion.cli.demo import demo
from bastion.cli.offline import analyze, translate
from bastion.cli.proxy_config import proxy_config
from bastion.cli.samples import samples
from bastion.cli.serve import serve_command

# kubectl accepts `--flag=true|false` for boolean flags; click wants bare flags.
BOOL_FLAGS = ("--ignore-not-found", "--all-namespaces", "--recursive")


def normalise_argv(argv: list[str]) -> list[str]:
    out = []
    for arg in argv:
        flag, sep, value = arg.partition("=")
        if sep and flag in BOOL_FLAGS and value.lower() in ("true", "false"):
            if value.lower() == "true":
                out.append(flag)
            continue
        out.append(arg)
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--state-dir", type=click.Path(path_type=Path), envvar="BASTION_STATE_DIR",
              default=None, help="State directory of the instance (env BASTION_STATE_DIR).")
@click.option("-n", "--namespace", default=None, help="Namespace (default: default).")
@click.version_option(__version__, prog_name="bastion")
@click.pass_context
def cli(ctx: click.Context, state_dir: Path | None, namespace: str | None) -> None:
    """bastion: an Istio-compatible secure ingress gateway (Python control plane, Envoy data
    plane). Use it where the Istio docs say kubectl."""
    ctx.obj = State(state_dir or default_state_dir())
    ctx.obj.namespace = namespace


cli.add_command(serve_command)
cli.add_command(resources.apply)
cli.add_command(resources.create)
cli.add_command(resources.delete)
cli.add_command(resources.get)
cli.add_command(ops.env)
cli.add_command(ops.wait)
cli.add_command(ops.status)
cli.add_command(ops.describe)
cli.add_command(ops.logs)
cli.add_command(samples)
cli.add_command(demo)
cli.add_command(proxy_config)
cli.add_command(translate)
cli.add_command(analyze)


def main() -> None:
    cli.main(args=normalise_argv(sys.argv[1:]), prog_name="bastion")
