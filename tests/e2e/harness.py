"""Real processes for end-to-end tests: `bastion serve` with its Envoy, sample backends, the CLI,
curl and openssl. Every instance gets free loopback ports and its own state directory."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from bastion.ports import free_listener_port

TEAPOT = """    -=[ teapot ]=-

       _...._
     .'  _ _ `.
    | ."` ^ `". _,
    \\_;`"---"`|//
      |       ;/
      \\_     _/
        `\"\"\"`"""


def free_port() -> int:
    return free_listener_port()


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port}")


def wait_admin(path: Path, timeout: float = 30.0) -> str:
    """The address an Envoy's admin interface listens on, once it has written it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            text = path.read_text().strip()
            if text:
                return text
        time.sleep(0.1)
    raise TimeoutError(f"no Envoy admin address in {path}")


def stop_process(proc: subprocess.Popen[bytes] | None, envoy: int | None) -> None:
    """SIGTERM a bastion process (SIGKILL to its group if it lingers), then kill its Envoy."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.wait(timeout=5)
    if envoy is not None:
        _kill_group(envoy)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class Backend:
    """A sample backend (`httpbin` or `helloworld`) on a free port."""

    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.log = open(workdir / f"{name}-{self.port}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bastion", "samples", "serve", name, "--port", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_port(self.port)

    def stop(self) -> None:
        _kill_group(self.proc.pid)
        self.proc.wait(timeout=10)
        self.log.close()


class Bastion:
    """`bastion serve` with real Envoy, plus the CLI pointed at its state directory."""

    def __init__(self, workdir: Path, serve_args: tuple[str, ...] = ()) -> None:
        self.workdir = workdir
        self.serve_args = serve_args
        self.state_dir = workdir / "state"
        self.secure_port = free_port()
        self.http_port = free_port()
        self.metrics_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = {**os.environ, "BASTION_STATE_DIR": str(self.state_dir)}

    def start(self, timeout: float = 30.0, wait_for_gateway: bool = True) -> None:
        self.log = open(self.workdir / "serve.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bastion", "serve", "--bind-address", "127.0.0.1",
             "--port-map", f"443={self.secure_port}", "--port-map", f"80={self.http_port}",
             "--metrics-address", f"127.0.0.1:{self.metrics_port}",
             "--log-level", "DEBUG", *self.serve_args],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bastion serve exited: {self.serve_log()}")
            result = self.cli("status", "-o", "json", check=False)
            if result.returncode == 0 and (
                    json.loads(result.stdout)["gateways"] or not wait_for_gateway):
                return
            time.sleep(0.1)
        raise TimeoutError(f"gateway did not connect: {self.serve_log()}")

    def kill_control_plane(self) -> None:
        """SIGKILL `bastion serve` alone, as a crash would; Envoy is left running."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.log.close()

    def serve_log(self) -> str:
        return (self.workdir / "serve.log").read_text(errors="replace")[-4000:]

    def envoy_log(self) -> str:
        path = self.state_dir / "envoy.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def envoy_pid(self) -> int | None:
        record = self.state_dir / "envoy.pid.json"
        with contextlib.suppress(OSError, ValueError):
            return int(json.loads(record.read_text())["pid"])
        return None

    def cli(self, *args: str, input: str | None = None, check: bool = True,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "bastion", *args], input=input,
                                capture_output=True, text=True, env=self.env,
                                cwd=cwd or self.workdir, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"bastion {' '.join(args)} failed: {result.stderr}")
        return result

    def shell(self, script: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run a task snippet in bash with `bastion` on PATH and the ingress variables set."""
        bindir = self.workdir / "bin"
        bindir.mkdir(exist_ok=True)
        shim = bindir / "bastion"
        if not shim.exists():
            shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m bastion "$@"\n')
            shim.chmod(0o755)
        env = {**self.env, "PATH": f"{bindir}:{self.env.get('PATH', '')}",
               "INGRESS_HOST": "127.0.0.1", "SECURE_INGRESS_PORT": str(self.secure_port),
               "INGRESS_PORT": str(self.http_port)}
        return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env,
                              cwd=cwd or self.workdir, timeout=120)

    def status(self) -> dict:
        return json.loads(self.cli("status", "-o", "json").stdout)

    def stop(self) -> None:
        stop_process(self.proc, self.envoy_pid())
        self.log.close()


def curl(host: str, port: int, path: str, cacert: Path | None = None,
         extra: tuple[str, ...] = (), timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
    args = ["curl", "-sS", "-v", f"-HHost:{host}", "--resolve", f"{host}:{port}:127.0.0.1",
            "--max-time", str(timeout)]
    if cacert is not None:
        args += ["--cacert", str(cacert)]
    args += [*extra, f"https://{host}:{port}{path}"]
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout + 5)


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_root(cwd: Path, prefix: str = "") -> None:
    """The task's root CA, in `cwd/prefix`."""
    openssl("req", "-x509", "-sha256", "-nodes", "-days", "365", "-newkey", "rsa:2048",
            "-subj", "/O=example Inc./CN=example.com", "-keyout", f"{prefix}example.com.key",
            "-out", f"{prefix}example.com.crt", cwd=cwd)


def make_leaf(cwd: Path, host: str, org: str, serial: int, prefix: str = "") -> None:
    """A CN-only leaf signed by the root in the same prefix, exactly as the task makes it."""
    openssl("req", "-out", f"{prefix}{host}.csr", "-newkey", "rsa:2048", "-nodes", "-keyout",
            f"{prefix}{host}.key", "-subj", f"/CN={host}/O={org}", cwd=cwd)
    openssl("x509", "-req", "-days", "365", "-CA", f"{prefix}example.com.crt", "-CAkey",
            f"{prefix}example.com.key", "-set_serial", str(serial), "-in", f"{prefix}{host}.csr",
            "-out", f"{prefix}{host}.crt", cwd=cwd)


def handshake_serial(host: str | None, port: int, cafile: Path, timeout: float = 5.0,
                     certfile: Path | None = None, keyfile: Path | None = None,
                     address: str = "127.0.0.1") -> int:
    """Open a new TLS connection with SNI `host` to `address` and return the serial of the
    certificate the gateway presented (a real handshake over a real socket)."""
    import ssl

    from cryptography import x509

    context = ssl.create_default_context(cafile=str(cafile))
    context.check_hostname = False  # the task's leaves carry only a CN
    if certfile is not None:
        context.load_cert_chain(str(certfile), str(keyfile))
    with socket.create_connection((address, port), timeout) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        der = tls.getpeercert(binary_form=True)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return x509.load_der_x509_certificate(der).serial_number
