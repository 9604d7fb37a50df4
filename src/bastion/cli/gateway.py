"""`bastion gateway`: run one more gateway (Envoy), for a control plane on this host (through
its state directory) or on others (`--control-plane`, over TCP with mutual TLS)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from bastion.cli.common import State, fail, pass_state
from bastion.cli.serve import _labels, _port_map


@click.command("gateway")
@click.option("--gateway-name", "--name", "gateway_name", default=None,
              help="Name of this gateway (its node's cluster; with --control-plane, the name "
                   "its certificate was issued for, which is the default).")
@click.option("--gateway-namespace", "--namespace", "gateway_namespace", default=None,
              help="Namespace of the gateway workload; credentials are read from it (default "
                   "istio-system; with --control-plane, the certificate's).")
@click.option("--gateway-label", "--label", "labels", multiple=True, metavar="KEY=VALUE",
              help="Label of the gateway workload for Gateway selectors (repeatable; default "
                   "istio=ingressgateway, which makes it a replica of serve's own gateway).")
@click.option("--control-plane", "control_planes", default=None,
              metavar="HOST:PORT[,HOST:PORT...]",
              help="Control planes (`serve --xds-address`) to connect to, over TCP with "
                   "mutual TLS; the next one is used when the current one goes away.")
@click.option("--cert", "cert_path", type=click.Path(dir_okay=False), default=None,
              help="The gateway's certificate (`bastion certs gateway`'s tls.crt).")
@click.option("--key", "key_path", type=click.Path(dir_okay=False), default=None,
              help="Its key (tls.key).")
@click.option("--ca", "ca_path", type=click.Path(dir_okay=False), default=None,
              help="The xDS CA control planes are verified with (ca.crt).")
@click.option("--port-map", multiple=True, metavar="GW=LOCAL",
              help="Bind port GW of the configuration on local port LOCAL (repeatable).")
@click.option("--renew-before", type=click.FloatRange(0), default=None, metavar="SECONDS",
              help="Renew the gateway's certificate (through the control plane, with a new "
                   "key; written over --cert and --key) this long before it ends (default: "
                   "when a third of its lifetime is left).")
@click.option("--no-disk-cache", is_flag=True,
              help="Do not keep the last accepted configuration (which holds private keys) "
                   "in the state directory.")
@click.option("--concurrency", type=int, default=None, help="Envoy worker threads.")
@click.option("--log-level", default="INFO", show_default=True)
@click.option("--envoy-log-level", default="info", show_default=True)
@pass_state
def gateway_command(state: State, gateway_name: str | None, gateway_namespace: str | None,
                    labels: tuple[str, ...], control_planes: str | None,
                    cert_path: str | None, key_path: str | None, ca_path: str | None,
                    port_map: tuple[str, ...], renew_before: float | None, no_disk_cache: bool,
                    concurrency: int | None, log_level: str, envoy_log_level: str) -> None:
    """Run another gateway. It declares its labels and namespace when it connects and receives
    only the Gateways that select it (and only their credentials), like a second Istio
    ingress gateway deployment.

    Without --control-plane it joins the control plane of --state-dir on this host. With it,
    --state-dir is the gateway's own (Envoy's files and the last configuration it accepted,
    served again at once after a restart while no control plane can be reached)."""
    from bastion.errors import BastionError
    from bastion.ir.workload import Workload

    label_map = dict(_labels(labels)) or Workload().label_map
    try:
        if control_planes:
            _remote(state, gateway_name, gateway_namespace, label_map, control_planes,
                    cert_path, key_path, ca_path, dict(_port_map(port_map)), renew_before,
                    no_disk_cache, concurrency, envoy_log_level, log_level)
            return
        if gateway_name is None:
            fail("--gateway-name is required (or --control-plane for a remote gateway)")
        if port_map or cert_path or key_path or ca_path or renew_before is not None:
            fail("--port-map, --cert, --key, --ca and --renew-before are for --control-plane")
        from bastion.server.app import run_gateway

        workload = Workload.of(label_map, gateway_namespace or "istio-system")
        asyncio.run(run_gateway(state.state_dir, gateway_name, workload, concurrency,
                                envoy_log_level, log_level.upper()))
    except BastionError as exc:
        fail(str(exc))


def _remote(state: State, name: str | None, namespace: str | None, labels: dict[str, str],
            control_planes: str, cert_path: str | None, key_path: str | None,
            ca_path: str | None, port_map: dict[int, int], renew_before: float | None,
            no_disk_cache: bool,
            concurrency: int | None, envoy_log_level: str, log_level: str) -> None:
    from bastion.dataplane.envoy.relay import Credentials
    from bastion.identity import GatewayIdentity
    from bastion.ir.workload import Workload
    from bastion.private import PrivateBytes
    from bastion.server.agent import AgentConfig, run_remote_gateway

    if not (cert_path and key_path and ca_path):
        fail("--control-plane needs --cert, --key and --ca (from `bastion certs gateway`)")
    if (state.state_dir / "store.db").exists():
        fail(f"{state.state_dir} is a control plane's state directory: give the gateway one "
             "of its own (--state-dir)")
    try:
        credentials = Credentials(Path(cert_path).read_bytes(),
                                  PrivateBytes(Path(key_path).read_bytes()),
                                  Path(ca_path).read_bytes())
    except OSError as exc:
        fail(f"cannot read the gateway's certificate files: {exc}")
    identity = GatewayIdentity.of_certificate(credentials.chain)
    if identity is None:
        fail(f"--cert {cert_path}: not a gateway certificate (`bastion certs gateway` issues "
             "them)")
    for given, own, what in ((name, identity.name, "--name"),
                             (namespace, identity.namespace, "--namespace")):
        if given is not None and given != own:
            fail(f"{what} {given!r}: the certificate was issued for {identity} "
                 f"({what.strip('-')} {own!r})")
    endpoints = [e.strip() for e in control_planes.split(",") if e.strip()]
    asyncio.run(run_remote_gateway(AgentConfig(
        state.state_dir, identity.name, Workload.of(labels, identity.namespace), endpoints,
        credentials, port_map, not no_disk_cache, concurrency, envoy_log_level,
        log_level.upper(), Path(cert_path), Path(key_path), renew_before)))
