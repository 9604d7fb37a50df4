"""`bastion serve`: the composition root. One process owning the store, the pipeline from store
to data plane, the local API, the ADS server and its own gateway's Envoy; the only place that
knows all the parts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from bastion.api.kinds import GATEWAY_API
from bastion.dataplane.envoy.ads import add_to_server as add_ads
from bastion.dataplane.envoy.cache import SnapshotCache
from bastion.dataplane.envoy.connections import Connections
from bastion.dataplane.envoy.driver import EnvoyDataPlane
from bastion.dataplane.envoy.supervisor import DRAIN_TIME_S, for_gateway
from bastion.errors import ServerUnavailable
from bastion.filewrite import write_atomically
from bastion.ports import METRICS_ADDRESS
from bastion.private import PrivateBytes
from bastion.server import renewal
from bastion.server.api import serve_api, serve_remote_api
from bastion.server.handlers import Handlers
from bastion.services import fleet, gateway_api, xds_ca
from bastion.services.certificates.controller import CertificateController, ControllerConfig
from bastion.services.gateway_objects import GatewayFacts, deployment, pod, service
from bastion.services.metrics import serve_metrics
from bastion.services.objects import ObjectService
from bastion.services.pipeline import DEFAULT_SECRET_GRACE_S, Pipeline, PipelineConfig
from bastion.services.session_tickets import DEFAULT_INTERVAL_S as DEFAULT_TICKET_ROTATION_S
from bastion.services.session_tickets import TicketKeyRotator
from bastion.services.workloads.controller import WorkloadController
from bastion.store import ObjectStore, SqliteStore
from bastion.store.etcd import EtcdStore, EtcdTls
from bastion.store.keys import StoreKey
from bastion.store.leadership import while_leading
from bastion.translate.istio import Options, Workload

log = logging.getLogger("bastion")
MAX_MESSAGE = 512 * 1024 * 1024
# Remote gateways ping every few seconds to notice a dead link (a cut cable sends no reset).
KEEPALIVE_SERVER_OPTIONS = (
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 1000),
    ("grpc.http2.max_ping_strikes", 0),
)


@dataclass
class ServeConfig:
    state_dir: Path
    workload: Workload = field(default_factory=Workload)
    options: Options = field(default_factory=Options)
    gateway_name: str = "istio-ingressgateway"
    run_envoy: bool = True
    concurrency: int | None = None
    envoy_log_level: str = "info"
    debounce_s: float = 0.02
    secret_grace_s: float = DEFAULT_SECRET_GRACE_S
    log_level: str = "INFO"
    envoy_stats_prefixes: tuple[str, ...] = ()
    run_workloads: bool = False
    metrics_address: str = METRICS_ADDRESS  # "": no metrics endpoint
    certificate_backoff_s: float = 300.0  # the first retry of a failed issuance
    xds_address: str = ""  # HOST:PORT for remote gateways (mutual TLS); "": none
    api_address: str = ""  # HOST:PORT for operators' CLIs (mutual TLS); "": the socket only
    xds_ca: tuple[bytes, PrivateBytes] | None = None  # an operator's CA to store, if none is
    ticket_rotation_s: float = DEFAULT_TICKET_ROTATION_S  # 0: no shared session-ticket keys
    etcd_endpoints: tuple[str, ...] = ()  # none: the embedded store in the state directory
    etcd_tls: EtcdTls | None = None


def prepare_state_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def open_store(config: ServeConfig) -> ObjectStore:
    if not config.etcd_endpoints:
        return SqliteStore(config.state_dir / "store.db")
    store = EtcdStore(list(config.etcd_endpoints), config.etcd_tls)
    log.info("store: etcd at %s (revision %d, %d objects)", ",".join(config.etcd_endpoints),
             store.revision, len(store.all()))
    return store


async def start_owner_only(server: grpc.aio.Server, socket_path: Path) -> None:
    """Start `server`, whose Unix socket only this user may open (it serves key material)."""
    old_umask = os.umask(0o177)
    try:
        await server.start()
    finally:
        os.umask(old_umask)
    os.chmod(socket_path, 0o600)


def setup_logging(state_dir: Path, level: str, file_name: str = "bastion.log") -> None:
    root = logging.getLogger("bastion")
    root.setLevel(level)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    file_handler = logging.FileHandler(state_dir / file_name)
    file_handler.setFormatter(formatter)
    stream = logging.StreamHandler()
    stream.setFormatter(formatter)
    root.handlers[:] = [file_handler, stream]
    root.propagate = False


async def serve(config: ServeConfig) -> None:
    state = config.state_dir
    prepare_state_dir(state)
    setup_logging(state, config.log_level)
    store = open_store(config)
    cache = SnapshotCache()
    connections = Connections()
    # Clusters stay a little longer than Envoy drains the connections that may use them.
    dataplane = EnvoyDataPlane(cache, drain_s=DRAIN_TIME_S + 5)
    pipeline = Pipeline(store, dataplane, PipelineConfig(
        config.workload, config.options, config.debounce_s, config.secret_grace_s))
    cache.on_new_group = pipeline.add_group
    facts = GatewayFacts(config.workload, config.gateway_name, config.options, str(state),
                         time.time(), str(state / "envoy.log"))
    objects = ObjectService(store, pipeline)

    xds_path = state / "xds.sock"
    xds_path.unlink(missing_ok=True)
    server = grpc.aio.server(options=[
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
        *KEEPALIVE_SERVER_OPTIONS,
    ])
    add_ads(server, cache, connections)
    server.add_insecure_port(f"unix:{xds_path}")
    authority = None
    if config.xds_address or config.api_address:
        authority = xds_ca.ensure(store, config.xds_ca)
    if config.xds_address:
        assert authority is not None
        ca = authority
        renewal.add_to_server(server, lambda: ca)
        host = config.xds_address.rpartition(":")[0].strip("[]")
        chain, key = xds_ca.serving_certificate(authority, (host,))
        credentials = grpc.ssl_server_credentials(
            [(key.reveal(), chain)], root_certificates=authority.pem, require_client_auth=True)
        try:
            server.add_secure_port(config.xds_address, credentials)
        except RuntimeError as exc:
            raise ServerUnavailable(f"cannot listen for gateways on {config.xds_address}: "
                                    f"{exc}") from None
    await start_owner_only(server, xds_path)

    supervisor = None
    if config.run_envoy:
        supervisor = for_gateway(state, xds_path, config.workload, config.gateway_name,
                                 config.concurrency, config.envoy_log_level,
                                 config.envoy_stats_prefixes)
    workloads = None
    if config.run_workloads:
        workloads = WorkloadController(store, state / "pods", connections.wait_synced)
        objects.runs_workloads = True

    address = config.options.bind_address
    certificates = CertificateController(store, ControllerConfig(
        state, ("127.0.0.1" if address in ("0.0.0.0", "::") else address,
                config.options.bind_port(80)), config.certificate_backoff_s),
        connections.wait_synced)

    def status_of(key: StoreKey) -> dict[str, Any] | None:
        if workloads is not None and (key.group, key.kind) == ("apps", "Deployment"):
            return workloads.deployment_status(key.namespace, key.name)
        if key.group == GATEWAY_API:
            return gateway_api.status(pipeline, key, config.options)
        return certificates.status_of(key)

    objects.status_of = status_of
    objects.events = certificates.events

    def running() -> list[dict[str, Any]]:
        envoy = supervisor.status() if supervisor else None
        made = [service(facts, served_ports(pipeline, config.workload)), pod(facts, envoy),
                deployment(facts, envoy)]
        return made

    objects.virtual = running
    fleet_name = f"{socket.gethostname()}/{config.xds_address or state}"
    handlers = Handlers(objects, pipeline, dataplane, connections, supervisor, config.options,
                        (lambda: authority) if authority is not None else None, fleet_name)
    api = await serve_api(state / "api.sock", handlers)
    remote_api = None
    if config.api_address:
        assert authority is not None
        remote_api = await serve_remote_api(config.api_address, _api_tls(state, authority),
                                            handlers)
        log.info("serving the remote API on %s (mutual TLS, operators' certificates)",
                 config.api_address)
    if config.metrics_address:
        serve_metrics(config.metrics_address, pipeline, connections)
    builder = asyncio.create_task(pipeline.run())
    runner = asyncio.create_task(workloads.run()) if workloads is not None else None
    # Derived state has one writer among the control planes sharing a store.
    issuer = asyncio.create_task(while_leading(store.leadership("certificates"),
                                               certificates.run))
    announcer = (asyncio.create_task(fleet.announce(store, fleet_name, connections))
                 if store.shared else None)
    rotator = None
    if config.ticket_rotation_s > 0:
        rotator = asyncio.create_task(while_leading(
            store.leadership("session-ticket-keys"),
            TicketKeyRotator(store, config.ticket_rotation_s).run))
    if supervisor is not None:
        await supervisor.start()
    if config.xds_address:
        log.info("serving remote gateways on %s (mutual TLS, the xDS CA of the store)",
                 config.xds_address)
    log.info("bastion serving: state %s, gateway %s/%s, labels %s, ports %s", state,
             config.workload.namespace, config.gateway_name,
             ",".join(f"{k}={v}" for k, v in config.workload.labels),
             ",".join(f"{a}->{b}" for a, b in config.options.port_map) or "as declared")

    await until_signalled()
    log.info("shutting down")
    api.close()
    if remote_api is not None:
        remote_api.close()
    for task in (builder, runner, issuer, rotator, announcer):
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if supervisor is not None:
        await supervisor.stop()
    await server.stop(grace=0.5)
    store.close()
    for path in (state / "api.sock", xds_path):
        path.unlink(missing_ok=True)


def _api_tls(state: Path, authority: xds_ca.Authority) -> ssl.SSLContext:
    """The remote API's TLS: the control planes' shared name, operators' certificates from
    the xDS CA required. Python's ssl reads a key from a file only: it is written for the
    moment it is read, in the 0700 state directory, mode 0600."""
    chain, key = xds_ca.serving_certificate(authority)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=authority.pem.decode())
    context.verify_mode = ssl.CERT_REQUIRED
    path = state / "api-tls.pem"
    try:
        write_atomically(path, chain + key.reveal())
        context.load_cert_chain(path)
    finally:
        path.unlink(missing_ok=True)
    return context


def served_ports(pipeline: Pipeline, workload: Workload) -> list[tuple[int, str, str]]:
    """(gateway port, protocol, port name) of what the gateway serves now."""
    gateway = pipeline.build.gateways.get(workload) if pipeline.build is not None else None
    if gateway is None:
        return []
    out = []
    for listener in gateway.ir.config.listeners:
        names = [s.key.port_name for s in listener.servers if s.key.port_name]
        out.append((listener.port, "TCP", names[0] if names else f"http-{listener.port}"))
    return out


async def until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def run_gateway(state_dir: Path, name: str, workload: Workload,
                      concurrency: int | None, envoy_log_level: str, log_level: str) -> None:
    """`bastion gateway`: one more Envoy for the control plane in `state_dir`, declaring its own
    group; it receives only the Gateways that select it, and only their credentials. SIGTERM
    stops it; the control plane is not touched."""
    xds_path = state_dir / "xds.sock"
    if not xds_path.exists():
        raise ServerUnavailable(f"no control plane at {state_dir}: start `bastion serve` first")
    home = state_dir / "gateways" / name
    prepare_state_dir(home)
    setup_logging(home, log_level, "gateway.log")
    supervisor = for_gateway(home, xds_path, workload, name, concurrency, envoy_log_level)
    await supervisor.start()
    log.info("gateway %s (group %s) started; Envoy files in %s", name, workload, home)
    await until_signalled()
    await supervisor.stop()
