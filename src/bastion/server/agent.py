"""`bastion gateway --control-plane`: the composition root of a gateway on another host.

The agent runs Envoy and serves it ADS on a Unix socket in its own state directory, from a
snapshot cache of one group (its own). It fills that cache from the control planes over TCP
with mutual TLS (the relay), and from the disk cache at start, so Envoy's link never breaks:
when a control plane goes away, or all of them, Envoy keeps its configuration and is not
even told, and the next control plane's first whole configuration replaces it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from bastion.dataplane.envoy import diskcache
from bastion.dataplane.envoy.ads import add_to_server as add_ads
from bastion.dataplane.envoy.bootstrap import node_proto
from bastion.dataplane.envoy.cache import InconsistentSnapshot, SnapshotCache
from bastion.dataplane.envoy.connections import Connections
from bastion.dataplane.envoy.relay import Credentials, Relay
from bastion.dataplane.envoy.remap import remap_ports
from bastion.dataplane.envoy.snapshot import Snapshot
from bastion.dataplane.envoy.supervisor import EnvoySupervisor, for_gateway
from bastion.ir.workload import Workload
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
    supervisor = for_gateway(home, xds_path, config.workload, config.name, config.concurrency,
                             config.envoy_log_level)
    await supervisor.start()
    api = await serve_api(home / "api.sock", AgentHandlers(
        config, relay, connections, supervisor, cache_path))
    log.info("gateway %s (group %s) started; control planes %s", config.name,
             config.workload, ",".join(config.control_planes))
    await until_signalled()
    api.close()
    relaying.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await relaying
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


def _node_id(config: AgentConfig) -> str:
    return f"router~{config.name}.{config.workload.namespace}~{socket.gethostname()}"

