"""File-based certificates (`serverCertificate`, `privateKey`, `caCertificates`): served through
real Envoy by SDS, rotated by replacing the files with no failed handshake, and confined to the
directories `serve --cert-dir` allows."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import certs
from tests.e2e.harness import Bastion, curl, handshake_serial

ROUTE = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: files}
spec:
  hosts: [files.example.com]
  gateways: [files-gw]
  http:
  - directResponse: {status: 200, body: {string: from-files}}
"""


def gateway(tls: str) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: files-gw}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 443, name: https, protocol: HTTPS}}
    hosts: [files.example.com]
    tls: {tls}
"""


@pytest.fixture
def cert_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "certs"
    directory.mkdir()
    return directory


@pytest.fixture
def file_bastion(tmp_path: Path, cert_dir: Path) -> Iterator[Bastion]:
    instance = Bastion(tmp_path, serve_args=("--cert-dir", str(cert_dir)))
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


def replace_file(path: Path, data: bytes) -> None:
    """Atomically, as a deployment tool (or a Secret volume) replaces a file."""
    temporary = path.with_name(path.name + ".new")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def wait_for_serial(port: int, cafile: Path, serial: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if handshake_serial("files.example.com", port, cafile) == serial:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"serial {serial} not served within {timeout} s")


def test_files_are_served_and_rotate_without_a_failed_handshake(
        file_bastion: Bastion, cert_dir: Path, tmp_path: Path) -> None:
    cert, key = certs.write(certs.leaf("files.example.com", 41), cert_dir, "server")
    file_bastion.cli("apply", "-f", "-", input=gateway(
        f"{{mode: SIMPLE, serverCertificate: {cert}, privateKey: {key}}}") + "---" + ROUTE)
    cafile = tmp_path / "root.crt"
    cafile.write_bytes(certs.ca("root1")[0].cert)
    port = file_bastion.secure_port
    wait_for_serial(port, cafile, 41)
    result = curl("files.example.com", port, "/", cafile)
    assert result.returncode == 0 and result.stdout == "from-files", result.stderr

    failures: list[str] = []
    seen: list[tuple[float, int]] = []
    stop = threading.Event()

    def handshakes() -> None:
        while not stop.is_set():
            try:
                seen.append((time.monotonic(), handshake_serial("files.example.com", port,
                                                                cafile)))
            except OSError as exc:
                failures.append(repr(exc))

    worker = threading.Thread(target=handshakes)
    worker.start()
    try:
        time.sleep(0.3)
        new = certs.leaf("files.example.com", 42)
        started = time.monotonic()
        # Two writes: between them the certificate and the key do not match.
        replace_file(cert, new.cert)
        time.sleep(0.3)
        replace_file(key, new.key)
        deadline = time.monotonic() + 5
        while not any(s == 42 for _, s in seen) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not failures, failures[:3]
    first_new = min(t for t, s in seen if s == 42)
    assert first_new - started < 1.0 + 0.3, first_new - started  # the second write came 0.3 s on
    assert all(s == 42 for t, s in seen if t > first_new + 0.1)
    assert len(seen) > 20


def test_mutual_tls_with_a_ca_file(file_bastion: Bastion, cert_dir: Path,
                                   tmp_path: Path) -> None:
    cert, key = certs.write(certs.leaf("files.example.com", 43), cert_dir, "server")
    ca = cert_dir / "clients-ca.crt"
    ca.write_bytes(certs.ca("root2")[0].cert)
    file_bastion.cli("apply", "-f", "-", input=gateway(
        f"{{mode: MUTUAL, serverCertificate: {cert}, privateKey: {key}, caCertificates: {ca}}}")
        + "---" + ROUTE)
    cafile = tmp_path / "root.crt"
    cafile.write_bytes(certs.ca("root1")[0].cert)
    trusted = certs.write(certs.leaf("client.example.com", 5, "root2"), tmp_path, "trusted")
    stranger = certs.write(certs.leaf("client.example.com", 6, "root1"), tmp_path, "stranger")
    deadline = time.monotonic() + 10
    result = None
    while time.monotonic() < deadline:
        result = curl("files.example.com", file_bastion.secure_port, "/", cafile,
                      ("--cert", str(trusted[0]), "--key", str(trusted[1])))
        if result.returncode == 0:
            break
        time.sleep(0.1)
    assert result is not None and result.stdout == "from-files", result.stderr if result else ""
    refused = curl("files.example.com", file_bastion.secure_port, "/", cafile,
                   ("--cert", str(stranger[0]), "--key", str(stranger[1])))
    assert refused.returncode != 0


def test_a_path_outside_the_cert_dirs_is_refused(file_bastion: Bastion, cert_dir: Path,
                                                 tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    _, key = certs.write(certs.leaf("files.example.com", 44), outside, "server")
    result = file_bastion.cli("apply", "-f", "-", check=False, input=gateway(
        f"{{mode: SIMPLE, serverCertificate: {cert_dir}/../elsewhere/server.crt, "
        f"privateKey: {key}}}"))
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if "files-gw" in line]
    assert len(lines) == 1, result.stderr
    assert "spec.servers[0].tls.serverCertificate:" in lines[0]
    assert "outside the directories allowed by --cert-dir" in lines[0]
    assert "spec.servers[0].tls.privateKey:" in lines[0]
    assert file_bastion.cli("get", "gateway", "files-gw", check=False).returncode != 0
    # A symbolic link inside the directory that leads out of it is not followed.
    (cert_dir / "link.key").symlink_to(key)
    good_cert, _ = certs.write(certs.leaf("files.example.com", 45), cert_dir, "inside")
    file_bastion.cli("apply", "-f", "-", input=gateway(
        f"{{mode: SIMPLE, serverCertificate: {good_cert}, privateKey: {cert_dir}/link.key}}"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = file_bastion.status()
        found = [d for d in status["diagnostics"] if d["name"] == "files-gw"]
        if found:
            break
        time.sleep(0.1)
    assert found, status
    assert found[0]["field"] == "spec.servers[0].tls.privateKey"
    assert "outside the allowed directories" in found[0]["message"]
