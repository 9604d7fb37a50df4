"""Remote gateways for end-to-end tests: control planes serving xDS over mutual TLS, and
`bastion gateway --control-plane` agents, each with its own state directory and ports."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.e2e.harness import Bastion, free_port, stop_process, wait_admin
from tests.e2e.netns import Host


def control_plane(workdir: Path, gateway_port: int, *extra: str,
                  xds_host: str = "127.0.0.1") -> Bastion:
    """`bastion serve --no-envoy` serving remote gateways on a free port of `xds_host`, its
    Gateways' port 443 on `gateway_port` (the same for every control plane, as one
    configuration)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cp = Bastion(workdir, serve_args=("--no-envoy", "--xds-address", f"{xds_host}:{port}",
                                      *extra))
    cp.secure_port = gateway_port
    cp.xds_address = f"{xds_host}:{port}"  # type: ignore[attr-defined]
    cp.start(wait_for_gateway=False)
    return cp


class Agent:
    """One `bastion gateway --control-plane ...` and its Envoy."""

    def __init__(self, workdir: Path, name: str, control_planes: list[str], certs: Path,
                 cp_port: int, labels: tuple[str, ...] = (), extra: tuple[str, ...] = (),
                 host: Host | None = None, port: int | None = None) -> None:
        """On `host` (a network namespace), or on this machine's loopback."""
        self.workdir, self.name, self.host = workdir, name, host
        self.state_dir = workdir / f"gateway-{name}"
        # Where this gateway serves what the control plane's configuration binds on `cp_port`.
        self.port = port or free_port()
        self.address = host.data_ip if host is not None else "127.0.0.1"
        self.args = [*(host.command() if host is not None else ()), sys.executable, "-m",
                     "bastion", "--state-dir", str(self.state_dir),
                     "gateway", "--control-plane", ",".join(control_planes),
                     "--cert", str(certs / "tls.crt"), "--key", str(certs / "tls.key"),
                     "--ca", str(certs / "ca.crt"), "--port-map", f"{cp_port}={self.port}",
                     "--log-level", "DEBUG", *(a for label in labels for a in ("--label", label)),
                     *extra]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.workdir / f"gateway-{self.name}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()

    @property
    def admin(self) -> str:
        return wait_admin(self.state_dir / "envoy-admin-address")

    def config_dump(self) -> dict:
        url = f"http://{self.admin}/config_dump?include_eds"
        if self.host is not None:  # the admin interface is on the host's own loopback
            return json.loads(self.host.run("curl", "-sS", "--max-time", "10", url).stdout)
        with urllib.request.urlopen(url, timeout=10) as answer:
            return json.loads(answer.read())

    def envoy_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, KeyError):
            return int(json.loads((self.state_dir / "envoy.pid.json").read_text())["pid"])
        return None

    def log(self) -> str:
        path = self.workdir / f"gateway-{self.name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the agent and its Envoy, as a host losing power would."""
        envoy = self.envoy_pid()
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        if envoy is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(envoy, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while Path(f"/proc/{envoy}").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        (self.state_dir / "envoy-admin-address").unlink(missing_ok=True)

    def stop(self) -> None:
        stop_process(self.proc, self.envoy_pid())

def wait_until(check, timeout: float = 30.0, what: str = "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return
        except Exception as exc:  # retried until the deadline; the last one is reported
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: last {last!r}")
