"""A real etcd cluster for tests: Debian's `etcd-server`, several members on loopback with free
ports and their own data directories, which a test may kill, start again and compact."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bastion.ports import free_listener_port


def require_etcd() -> None:
    for tool in ("etcd", "etcdctl"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is required (Debian's etcd-server and etcd-client; .ci/run "
                        "installs them)")


class EtcdCluster:
    def __init__(self, workdir: Path, members: int = 3, tls: Path | None = None) -> None:
        """With `tls`, a directory holding ca.crt, server.crt/key (for 127.0.0.1) and
        client.crt/key: members then speak TLS to clients and ask them for a certificate."""
        require_etcd()
        self.workdir = workdir
        self.tls = tls
        self.scheme = "https" if tls is not None else "http"
        self.names = [f"m{i}" for i in range(members)]
        self.client_ports = [free_listener_port() for _ in self.names]
        self.peer_ports = [free_listener_port() for _ in self.names]
        self.token = f"bastion-test-{os.getpid()}-{id(self):x}"
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * members

    @property
    def endpoints(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.client_ports]

    def _command(self, i: int, state: str) -> list[str]:
        cluster = ",".join(f"{n}=http://127.0.0.1:{p}"
                           for n, p in zip(self.names, self.peer_ports, strict=True))
        client = f"{self.scheme}://127.0.0.1:{self.client_ports[i]}"
        peer = f"http://127.0.0.1:{self.peer_ports[i]}"
        secured = [] if self.tls is None else [
            "--cert-file", str(self.tls / "server.crt"), "--key-file", str(self.tls / "server.key"),
            "--trusted-ca-file", str(self.tls / "ca.crt"), "--client-cert-auth"]
        return ["etcd", *secured, "--name", self.names[i], "--data-dir",
                str(self.workdir / f"etcd-{self.names[i]}"),
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", cluster, "--initial-cluster-state", state,
                "--initial-cluster-token", self.token, "--log-level", "warn",
                "--logger", "zap"]

    def start(self) -> None:
        for i in range(len(self.names)):
            self.start_member(i, "new")
        self.wait_healthy()

    def start_member(self, i: int, state: str = "existing") -> None:
        log = open(self.workdir / f"etcd-{self.names[i]}.log", "ab")  # noqa: SIM115
        self.procs[i] = subprocess.Popen(self._command(i, state), stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def kill_member(self, i: int) -> None:
        proc = self.procs[i]
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            self.procs[i] = None

    def etcdctl(self, *args: str, endpoints: list[str] | None = None
                ) -> subprocess.CompletedProcess[str]:
        secured = [] if self.tls is None else [
            "--cacert", str(self.tls / "ca.crt"), "--cert", str(self.tls / "client.crt"),
            "--key", str(self.tls / "client.key")]
        return subprocess.run(
            ["etcdctl", *secured, "--endpoints",
             ",".join(f"{self.scheme}://{e}" for e in endpoints or self.live_endpoints()),
             *args],
            capture_output=True, text=True, timeout=30, env={**os.environ, "ETCDCTL_API": "3"})

    def live_endpoints(self) -> list[str]:
        return [e for e, p in zip(self.endpoints, self.procs, strict=True) if p is not None]

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.etcdctl("endpoint", "health").returncode == 0:
                return
            time.sleep(0.2)
        raise TimeoutError(f"etcd did not become healthy: {self.etcdctl('endpoint', 'health')}")

    def revision(self) -> int:
        import json

        status = json.loads(self.etcdctl("endpoint", "status", "-w", "json").stdout)
        return max(int(s["Status"]["header"]["revision"]) for s in status)

    def compact(self, revision: int) -> None:
        result = self.etcdctl("compaction", str(revision))
        assert result.returncode == 0, result.stderr

    def stop(self) -> None:
        for i in range(len(self.names)):
            self.kill_member(i)


@contextlib.contextmanager
def etcd_cluster(workdir: Path, members: int = 3):  # type: ignore[no-untyped-def]
    cluster = EtcdCluster(workdir, members)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
