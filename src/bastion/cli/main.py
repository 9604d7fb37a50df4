"""The `bastion` command: kubectl's verbs for the embedded store, plus the gateway's own.

Each verb's module is imported only when that verb runs (click's lazy-group pattern): the CLI
is called in scripts and loops, so `bastion get` must not pay for loading the translator, the
demo or YAML it does not use.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from bastion import __version__
from bastion.cli.client import Remote, default_state_dir
from bastion.cli.common import State

# verb -> "module:attribute"
COMMANDS = {
    "serve": "bastion.cli.serve:serve_command",
    "gateway": "bastion.cli.gateway:gateway_command",
    "apply": "bastion.cli.resources:apply",
    "create": "bastion.cli.resources:create",
    "delete": "bastion.cli.resources:delete",
    "get": "bastion.cli.resources:get",
    "env": "bastion.cli.ops:env",
    "wait": "bastion.cli.ops:wait",
    "status": "bastion.cli.ops:status",
    "describe": "bastion.cli.ops:describe",
    "logs": "bastion.cli.ops:logs",
    "scale": "bastion.cli.workloads:scale",
    "rollout": "bastion.cli.workloads:rollout",
    "samples": "bastion.cli.samples:samples",
    "certs": "bastion.cli.certs:certs",
    "demo": "bastion.cli.demo:demo",
    "proxy-config": "bastion.cli.proxy_config:proxy_config",
    "translate": "bastion.cli.offline:translate",
    "analyze": "bastion.cli.analyze:analyze",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command

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


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--state-dir", type=click.Path(path_type=Path), envvar="BASTION_STATE_DIR",
              default=None, help="State directory of the instance (env BASTION_STATE_DIR).")
@click.option("-n", "--namespace", default=None, help="Namespace (default: default).")
@click.option("--server", default=None, envvar="BASTION_SERVER", metavar="HOST:PORT",
              help="A control plane's remote API (`serve --api-address`), instead of the "
                   "local socket (env BASTION_SERVER).")
@click.option("--client-certificate", type=click.Path(path_type=Path, dir_okay=False),
              envvar="BASTION_CLIENT_CERTIFICATE", default=None,
              help="With --server: the operator's certificate (`bastion certs admin`).")
@click.option("--client-key", type=click.Path(path_type=Path, dir_okay=False),
              envvar="BASTION_CLIENT_KEY", default=None, help="With --server: its key.")
@click.option("--certificate-authority", type=click.Path(path_type=Path, dir_okay=False),
              envvar="BASTION_CERTIFICATE_AUTHORITY", default=None,
              help="With --server: the CA the control plane is verified with (ca.crt).")
@click.version_option(__version__, prog_name="bastion")
@click.pass_context
def cli(ctx: click.Context, state_dir: Path | None, namespace: str | None, server: str | None,
        client_certificate: Path | None, client_key: Path | None,
        certificate_authority: Path | None) -> None:
    """bastion: an Istio-compatible secure ingress gateway (Python control plane, Envoy data
    plane). Use it where the Istio docs say kubectl."""
    remote = None
    if server:
        if not (client_certificate and client_key and certificate_authority):
            raise click.UsageError("--server needs --client-certificate, --client-key and "
                                   "--certificate-authority (from `bastion certs admin`)")
        remote = Remote(server, client_certificate, client_key, certificate_authority)
    ctx.obj = State(state_dir or default_state_dir(), remote)
    ctx.obj.namespace = namespace


def main() -> None:
    cli.main(args=normalise_argv(sys.argv[1:]), prog_name="bastion")
