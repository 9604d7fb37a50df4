"""`bastion serve`: run the control plane and its gateway."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import click

from bastion.cli.common import State, fail, pass_state
from bastion.errors import BastionError
from bastion.ports import METRICS_ADDRESS
from bastion.private import PrivateBytes

if TYPE_CHECKING:
    from bastion.store.etcd import EtcdTls


def _port_map(values: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    out = []
    for value in values:
        left, sep, right = value.partition("=")
        if not sep or not left.isdigit() or not right.isdigit():
            raise click.BadParameter(f"{value!r}: expected GATEWAY_PORT=LOCAL_PORT, e.g. 443=8443")
        out.append((int(left), int(right)))
    return tuple(out)


def _labels(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    out = []
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r}: expected KEY=VALUE")
        out.append((key, val))
    return tuple(out)


@click.command("serve")
@click.option("--port-map", multiple=True, metavar="GW=LOCAL",
              help="Bind Gateway port GW on local port LOCAL (repeatable), e.g. 443=8443.")
@click.option("--bind-address", default="0.0.0.0", show_default=True,
              help="Address the gateway's listeners bind.")
@click.option("--gateway-namespace", default="istio-system", show_default=True,
              help="Namespace of the gateway workload; credentials are read from it.")
@click.option("--gateway-label", "labels", multiple=True, metavar="KEY=VALUE",
              help="Label of the gateway workload for Gateway selectors "
                   "(default: istio=ingressgateway).")
@click.option("--gateway-name", default="istio-ingressgateway", show_default=True)
@click.option("--no-envoy", is_flag=True, help="Serve xDS without starting Envoy.")
@click.option("--concurrency", type=int, default=None, help="Envoy worker threads.")
@click.option("--debounce", default=0.02, show_default=True,
              help="Least seconds between two builds; changes within them are gathered "
                   "(the first change after a quiet spell is built at once).")
@click.option("--secret-grace", default=None, type=click.FloatRange(0, 30),
              help="Seconds a deleted Secret stays in force, so delete-then-create rotates "
                   "without a gap (default 10; 0: withdraw at once; at most 30).")
@click.option("--cert-dir", "cert_dirs", multiple=True, metavar="DIR",
              type=click.Path(file_okay=False, resolve_path=True),
              help="A directory file-based certificates (serverCertificate, privateKey, "
                   "caCertificates, caCrl) may be read from; repeatable. None by default: no "
                   "file a Gateway names is read.")
@click.option("--http3", is_flag=True,
              help="Also serve HTTP/3 (QUIC, UDP on the same port) for every server that "
                   "terminates TLS, advertised to clients with Alt-Svc.")
@click.option("--run-workloads", is_flag=True,
              help="Run Deployments whose images are Istio's samples (or whose command names "
                   "an executable here) as local processes, each pod on a loopback address of "
                   "its own, with EndpointSlices for the Services that select them.")
@click.option("--metrics-address", default=METRICS_ADDRESS, show_default=True,
              metavar="HOST:PORT",
              help="Serve Prometheus metrics here (Istio's monitoring port); '' turns it off.")
@click.option("--certificate-backoff", default=300.0, show_default=True, metavar="SECONDS",
              type=click.FloatRange(0.1),
              help="The first retry of a failed certificate issuance (doubled each time, at "
                   "most 32 h).")
@click.option("--xds-address", default="", metavar="HOST:PORT",
              help="Also serve remote gateways (`bastion gateway --control-plane`) here, over "
                   "TCP with mutual TLS: client certificates from `bastion certs gateway` "
                   "are required, and each gateway receives only its own namespace's "
                   "configuration.")
@click.option("--api-address", default="", metavar="HOST:PORT",
              help="Also serve the API to operators on other hosts (`bastion --server`), "
                   "over TCP with mutual TLS: client certificates from `bastion certs admin`.")
@click.option("--xds-ca", "xds_ca_prefix", default=None, metavar="PREFIX",
              help="Store the CA in PREFIX.crt / PREFIX.key as the xDS CA when the store "
                   "has none yet (like Istio's plug-in CA); by default the first control "
                   "plane makes one.")
@click.option("--store", "store_url", default="", metavar="etcd://HOST:PORT[,HOST:PORT...]",
              help="Keep the objects in an etcd v3 cluster, shared by every control plane "
                   "pointed at it (default: the embedded store in --state-dir).")
@click.option("--etcd-ca", type=click.Path(dir_okay=False), default=None,
              help="Speak TLS to etcd, verifying its members with this CA.")
@click.option("--etcd-cert", type=click.Path(dir_okay=False), default=None,
              help="The client certificate etcd asks for (--client-cert-auth).")
@click.option("--etcd-key", type=click.Path(dir_okay=False), default=None,
              help="Its key.")
@click.option("--etcd-server-name", default=None,
              help="The name etcd's certificates carry, if not the addresses given.")
@click.option("--ticket-key-rotation", default=3600.0, show_default=True, metavar="SECONDS",
              type=click.FloatRange(0),
              help="Rotate the TLS session-ticket keys every gateway of a group shares (so a "
                   "client resumes its session on any replica) this often, keeping the two "
                   "before; 0: make none (each Envoy keeps its own).")
@click.option("--log-level", default="INFO", show_default=True)
@click.option("--envoy-log-level", default="info", show_default=True)
@click.option("--envoy-stats-prefix", "stats_prefixes", multiple=True, metavar="PREFIX",
              help="Also keep Envoy statistics whose names start with PREFIX (repeatable; '' "
                   "keeps all). By default Envoy keeps Istio's list: server, cluster_manager, "
                   "listener_manager and the control-plane cluster.")
@pass_state
def serve_command(state: State, port_map: tuple[str, ...], bind_address: str,
                  gateway_namespace: str, labels: tuple[str, ...], gateway_name: str,
                  no_envoy: bool, concurrency: int | None, debounce: float,
                  secret_grace: float | None, cert_dirs: tuple[str, ...], http3: bool,
                  run_workloads: bool, metrics_address: str, certificate_backoff: float,
                  xds_address: str, api_address: str, xds_ca_prefix: str | None,
                  store_url: str, etcd_ca: str | None, etcd_cert: str | None,
                  etcd_key: str | None, etcd_server_name: str | None,
                  ticket_key_rotation: float, log_level: str,
                  envoy_log_level: str, stats_prefixes: tuple[str, ...]) -> None:
    """Run the control plane, its local API, its ADS server and the Envoy gateway."""
    # Imported here so that every other command starts without loading gRPC and the protos.
    from bastion.server.app import ServeConfig, serve
    from bastion.translate.istio import Options, Workload

    workload = Workload.of(dict(_labels(labels)) or Workload().label_map, gateway_namespace)
    grace = {} if secret_grace is None else {"secret_grace_s": secret_grace}
    config = ServeConfig(
        state_dir=state.state_dir, workload=workload,
        options=Options(bind_address=bind_address, port_map=_port_map(port_map),
                        cert_dirs=tuple(cert_dirs), http3=http3),
        gateway_name=gateway_name, run_envoy=not no_envoy, concurrency=concurrency,
        envoy_log_level=envoy_log_level, debounce_s=debounce, **grace,
        log_level=log_level.upper(), envoy_stats_prefixes=stats_prefixes,
        run_workloads=run_workloads, metrics_address=metrics_address,
        certificate_backoff_s=certificate_backoff, xds_address=xds_address,
        api_address=api_address,
        xds_ca=_plugged_ca(xds_ca_prefix) if xds_ca_prefix else None,
        ticket_rotation_s=ticket_key_rotation,
        etcd_endpoints=_etcd_endpoints(store_url),
        etcd_tls=_etcd_tls(etcd_ca, etcd_cert, etcd_key, etcd_server_name))
    try:
        asyncio.run(serve(config))
    except BastionError as exc:
        fail(str(exc))


def _plugged_ca(prefix: str) -> tuple[bytes, PrivateBytes]:
    from bastion import pki

    try:
        certificate = Path(prefix + ".crt").read_bytes()
        key = Path(prefix + ".key").read_bytes()
        pki.load_key(key)
    except (OSError, ValueError) as exc:
        fail(f"--xds-ca: cannot read the CA {prefix}.crt / {prefix}.key: {exc}")
    return certificate, PrivateBytes(key)


def _etcd_endpoints(url: str) -> tuple[str, ...]:
    if not url:
        return ()
    scheme, sep, rest = url.partition("://")
    endpoints = tuple(e.strip() for e in rest.split(",") if e.strip())
    if scheme != "etcd" or not sep or not endpoints or not all(
            e.rpartition(":")[2].isdigit() for e in endpoints):
        fail(f"--store {url!r}: expected etcd://HOST:PORT[,HOST:PORT...]")
    return endpoints


def _etcd_tls(ca: str | None, cert: str | None, key: str | None,
              server_name: str | None) -> EtcdTls | None:
    from bastion.store.etcd import EtcdTls

    if ca is None:
        if cert or key or server_name:
            fail("--etcd-cert, --etcd-key and --etcd-server-name need --etcd-ca")
        return None
    if (cert is None) != (key is None):
        fail("--etcd-cert and --etcd-key go together")
    try:
        return EtcdTls(Path(ca).read_bytes(), Path(cert).read_bytes() if cert else None,
                       PrivateBytes(Path(key).read_bytes()) if key else None, server_name)
    except OSError as exc:
        fail(f"cannot read the etcd TLS files: {exc}")
