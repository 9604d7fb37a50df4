"""`bastion gateway --control-plane`: the composition root of a gateway on another host.

The agent runs Envoy and serves it ADS on a Unix socket in its own state directory, from a
snapshot cache of one group (its own). It fills that cache from the control planes over TCP
with mutual TLS (the relay), and from the disk cache at start, so Envoy's link never breaks:
when a control plane goes away, or all of them, Envoy keeps its configuration and is not
even told, and the next control plane's first whole configuration replaces it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509

from bastion import pki
from bastion.dataplane.envoy import diskcache
from bastion.dataplane.envoy.ads import add_to_server as add_ads
from bastion.dataplane.envoy.bootstrap import node_proto
from bastion.dataplane.envoy.cache import InconsistentSnapshot, SnapshotCache
from bastion.dataplane.envoy.connections import Connections
from bastion.dataplane.envoy.relay import Credentials, Relay
from bastion.dataplane.envoy.remap import remap_ports
from bastion.dataplane.envoy.snapshot import Snapshot
from bastion.dataplane.envoy.supervisor import EnvoySupervisor, for_gateway
from bastion.filewrite import write_atomically
from bastion.ir.workload import Workload
from bastion.server import renewal
from bastion.server.api import serve_api
from bastion.server.app import (
    prepare_state_dir,
    setup_logging,
    start_owner_only,
    until_signalled,
)

log = logging.getLogger("bastion")
# How long the agent waits for its Envoy to take a configuration before it acknowledges it to
# the control plane anyway (and leaves the disk as it was: only what Envoy took is written).
ACCEPT_TIMEOUT_S = 10.0
RENEW_RETRY_S = 60.0


@dataclass
class AgentConfig:
    state_dir: Path
    name: str
    workload: Workload
    control_planes: list[str]
    credentials: Credentials
    port_map: dict[int, int] = field(default_factory=dict)
    disk_cache: bool = True
    concurrency: int | None = None
    envoy_log_level: str = "info"
    log_level: str = "INFO"
    # Where the certificate and key were read from: renewed ones are written there.
    cert_path: Path | None = None
    key_path: Path | None = None
    renew_before_s: float | None = None  # None: when a third of its lifetime is left


async def run_remote_gateway(config: AgentConfig) -> None:
    home = config.state_dir
    prepare_state_dir(home)
    setup_logging(home, config.log_level, "gateway.log")
    cache_path = home / diskcache.FILE_NAME
    if not config.disk_cache:
        cache_path.unlink(missing_ok=True)
    cache = SnapshotCache()
    connections = Connections()
    server = grpc.aio.server()
    add_ads(server, cache, connections)
    xds_path = home / "xds.sock"
    xds_path.unlink(missing_ok=True)
    server.add_insecure_port(f"unix:{xds_path}")
    await start_owner_only(server, xds_path)

    generation = [0]

    def serve_locally(upstream: Snapshot) -> Snapshot | None:
        generation[0] += 1
        local = remap_ports(upstream, config.port_map, generation[0])
        try:
            cache.set(config.workload, local)
        except InconsistentSnapshot as exc:  # a bug: Envoy keeps what it has
            log.error("configuration %d not served: %s", local.generation, exc)
            return None
        return local

    async def publish(upstream: Snapshot) -> None:
        """Serve it, and once Envoy has taken it, keep it on disk."""
        local = serve_locally(upstream)
        if local is None:
            return
        if not await connections.wait_synced(local.generation, ACCEPT_TIMEOUT_S):
            log.warning("Envoy did not take configuration %d in %gs; the disk keeps the "
                        "previous one", local.generation, ACCEPT_TIMEOUT_S)
            return
        if config.disk_cache and generation[0] == local.generation:
            await asyncio.to_thread(diskcache.save, cache_path, upstream)

    known = diskcache.load(cache_path) if config.disk_cache else None
    if known is not None:
        serve_locally(known)
        log.info("serving the configuration kept on disk (%s) until a control plane answers",
                 cache_path)
    node = node_proto(_node_id(config), config.name, config.workload.namespace,
                      config.workload.label_map)
    relay = Relay(config.control_planes, config.credentials, node, publish, known)
    relaying = asyncio.create_task(relay.run())
    renewing = asyncio.create_task(keep_certificate(config, relay))
    supervisor = for_gateway(home, xds_path, config.workload, config.name, config.concurrency,
                             config.envoy_log_level)
    await supervisor.start()
    api = await serve_api(home / "api.sock", AgentHandlers(
        config, relay, connections, supervisor, cache_path))
    log.info("gateway %s (group %s) started; control planes %s", config.name,
             config.workload, ",".join(config.control_planes))
    await until_signalled()
    api.close()
    for task in (relaying, renewing):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await supervisor.stop()
    await server.stop(grace=0.5)
    xds_path.unlink(missing_ok=True)


@dataclass
class AgentHandlers:
    """The agent's local API (`STATE/api.sock`): enough for `bastion status` and
    `proxy-config` on the gateway's host."""

    config: AgentConfig
    relay: Relay
    connections: Connections
    envoy: EnvoySupervisor
    cache_path: Path

    async def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "ping":
            return {"ok": True}
        if op == "admin":
            if not self.envoy.admin_address:
                return {"ok": False, "error": "the gateway's Envoy is not running"}
            return {"ok": True, "admin": self.envoy.admin_address}
        if op == "status":
            return {"ok": True, "status": self.status()}
        return {"ok": False, "error": f"{op!r}: a gateway agent answers status and "
                                      "proxy-config; ask a control plane for the rest"}

    def status(self) -> dict[str, Any]:
        cached = None
        with contextlib.suppress(OSError):
            cached = round(time.time() - self.cache_path.stat().st_mtime, 1)
        return {"agent": {"name": self.config.name, "group": str(self.config.workload),
                          **self.relay.status(),
                          "diskCache": str(self.cache_path) if self.config.disk_cache else None,
                          "diskCacheAgeSeconds": cached},
                "envoy": self.envoy.status(), "gateways": self.connections.status()}


def renewal_due(chain: bytes, renew_before_s: float | None) -> tuple[float, float]:
    """(when to renew, the certificate's lifetime), in seconds: cert-manager's default of a
    third of the lifetime left, unless told otherwise."""
    leaf = x509.load_pem_x509_certificate(chain)
    start, end = leaf.not_valid_before_utc.timestamp(), leaf.not_valid_after_utc.timestamp()
    before = renew_before_s if renew_before_s is not None else (end - start) / 3
    return end - before, end - start


async def keep_certificate(config: AgentConfig, relay: Relay) -> None:
    """Renew the gateway's client certificate before it ends, through the control plane
    (`server.renewal`), with a new key made here; the next stream uses it, the current one
    goes on. A certificate that has already ended cannot be renewed: issue another."""
    while True:
        due, _ = renewal_due(relay.credentials.chain, config.renew_before_s)
        await asyncio.sleep(max(due - time.time(), 0))
        try:
            await renew_once(config, relay)
        except (grpc.aio.AioRpcError, OSError, ValueError, KeyError) as exc:
            log.warning("could not renew the gateway's certificate (%s); trying again in %g s",
                        exc, RENEW_RETRY_S)
            await asyncio.sleep(RENEW_RETRY_S)
            continue
        due, _ = renewal_due(relay.credentials.chain, config.renew_before_s)
        if due <= time.time():
            log.warning("--renew-before is longer than the certificate's lifetime; renewing "
                        "again in %g s", RENEW_RETRY_S)
            await asyncio.sleep(RENEW_RETRY_S)


async def renew_once(config: AgentConfig, relay: Relay) -> None:
    _, lifetime = renewal_due(relay.credentials.chain, None)
    key = pki.new_key("ECDSA")
    request = json.dumps({"csr": pki.csr_pem(key, config.name).decode(),
                          "days": max(1, round(lifetime / 86400))}).encode()
    channel = relay.channel(relay.current or relay.endpoints[0])
    try:
        answer = await channel.unary_unary(renewal.METHOD)(request, timeout=10)
    finally:
        await channel.close()
    data = json.loads(answer)
    chain, ca = data["certificate"].encode(), data["ca"].encode()
    key_pem = pki.key_pem(key, "PKCS8")
    if config.cert_path is not None and config.key_path is not None:
        await asyncio.to_thread(write_atomically, config.key_path, key_pem.reveal(), 0o600)
        await asyncio.to_thread(write_atomically, config.cert_path, chain, 0o644)
    relay.credentials = Credentials(chain, key_pem, ca)
    leaf = x509.load_pem_x509_certificate(chain)
    log.info("renewed the gateway's certificate: serial %x, valid until %s", leaf.serial_number,
             leaf.not_valid_after_utc.isoformat())


def _node_id(config: AgentConfig) -> str:
    return f"router~{config.name}.{config.workload.namespace}~{socket.gethostname()}"

