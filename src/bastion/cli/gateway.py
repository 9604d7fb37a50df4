"""`bastion gateway`: run one more gateway (Envoy) for a running control plane."""

from __future__ import annotations

import asyncio

import click

from bastion.cli.common import State, fail, pass_state
from bastion.cli.serve import _labels


@click.command("gateway")
@click.option("--gateway-name", required=True, help="Name of this gateway (its node id).")
@click.option("--gateway-namespace", default="istio-system", show_default=True,
              help="Namespace of the gateway workload; credentials are read from it.")
@click.option("--gateway-label", "labels", multiple=True, metavar="KEY=VALUE",
              help="Label of the gateway workload for Gateway selectors (repeatable; default "
                   "istio=ingressgateway, which makes it a replica of serve's own gateway).")
@click.option("--concurrency", type=int, default=None, help="Envoy worker threads.")
@click.option("--log-level", default="INFO", show_default=True)
@click.option("--envoy-log-level", default="info", show_default=True)
@pass_state
def gateway_command(state: State, gateway_name: str, gateway_namespace: str,
                    labels: tuple[str, ...], concurrency: int | None, log_level: str,
                    envoy_log_level: str) -> None:
    """Run another gateway for the control plane of --state-dir. It declares its labels and
    namespace when it connects and receives only the Gateways that select it (and only their
    credentials), like a second Istio ingress gateway deployment."""
    from bastion.errors import BastionError
    from bastion.ir.workload import Workload
    from bastion.server.app import run_gateway

    workload = Workload.of(dict(_labels(labels)) or Workload().label_map, gateway_namespace)
    try:
        asyncio.run(run_gateway(state.state_dir, gateway_name, workload, concurrency,
                                envoy_log_level, log_level.upper()))
    except BastionError as exc:
        fail(str(exc))
