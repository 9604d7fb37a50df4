"""A loaded gateway through the task's delete-then-create rotation and through a credential that
is deleted for good: with default settings the rotation costs no request, and a withdrawn
server refuses new handshakes while the connections it already holds drain without a 5xx."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests import certs
from tests.e2e.harness import Backend, Bastion, handshake_serial
from tests.e2e.loops import H2Load, HandshakeLoop
from tests.e2e.test_credentials import wait_refused
from tests.e2e.test_load_rotation import HOST, ROUTES, gateway
from tests.manifests import tls_secret_json as secret

ROTATIONS = 10
DELETE_TO_CREATE_S = 2.0

SERVICE = ("apiVersion: v1\nkind: Service\nmetadata: {name: helloworld-v1}\n"
           "spec: {ports: [{name: http, port: 5000}]}\n")
MANIFESTS = "\n---\n".join([gateway(with_second=False), ROUTES, SERVICE])


def serve_hello(bastion: Bastion, backend: Backend, tmp_path: Path) -> Path:
    if shutil.which("h2load") is None:
        pytest.fail("h2load is required (scripts/setup-env.sh installs nghttp2-client)")
    endpoints = (f"apiVersion: v1\nkind: Endpoints\nmetadata: {{name: helloworld-v1}}\n"
                 f"subsets: [{{addresses: [{{ip: 127.0.0.1}}], ports: "
                 f"[{{name: http, port: {backend.port}}}]}}]\n")
    bastion.cli("apply", "-f", "-", input="\n---\n".join([
        MANIFESTS, endpoints, secret("hello-credential", certs.leaf(HOST, 100))]))
    bastion.cli("wait", "--timeout", "10s", "vs", "hello")
    cafile = tmp_path / "root.crt"
    cafile.write_bytes(certs.ca("root1")[0].cert)
    assert handshake_serial(HOST, bastion.secure_port, cafile) == 100
    return cafile


def test_delete_then_create_under_load_with_default_grace(bastion: Bastion,
                                                          helloworld: Backend,
                                                          tmp_path: Path) -> None:
    cafile, port = serve_hello(bastion, helloworld, tmp_path), bastion.secure_port
    files = [certs.write(certs.leaf(HOST, 100 + i), tmp_path, f"leaf{i}")
             for i in range(1, ROTATIONS + 1)]
    h2load = H2Load(HOST, port, "/hello")
    fresh = HandshakeLoop(HOST, port, cafile, max_count=50000, max_seconds=120)
    h2load.start()
    fresh.start()
    for i, (cert, key) in enumerate(files, start=1):
        bastion.cli("-n", "istio-system", "delete", "secret", "hello-credential")
        time.sleep(DELETE_TO_CREATE_S)
        bastion.cli("create", "-n", "istio-system", "secret", "tls", "hello-credential",
                    f"--cert={cert}", f"--key={key}")
        bastion.cli("wait", "--timeout", "10s", "-n", "istio-system", "secret",
                    "hello-credential")
        # Every new handshake after the create presents the new certificate.
        assert handshake_serial(HOST, port, cafile) == 100 + i
    shook, h2 = fresh.finish(), h2load.finish()
    print(f"h2load {h2}; new connections {shook.ok}, serials {sorted(shook.serials)}")
    assert h2["failed"] == h2["errored"] == h2["timeout"] == 0, h2load.reports[-1:]
    # In-flight streams at the end of a timed run have a status but are not "done".
    assert h2["5xx"] == h2["4xx"] == h2["3xx"] == 0, h2
    assert h2["2xx"] >= h2["succeeded"] == h2["done"] > 1000, h2
    assert shook.errors == [] and shook.ok > 100, shook.errors[:5]
    assert shook.serial_sequence == sorted(shook.serial_sequence)
    assert set(shook.serials) <= set(range(100, 101 + ROTATIONS))
    log = (bastion.state_dir / "bastion.log").read_text()
    assert "withdrawn from the gateway" not in log


def test_withdrawn_server_drains_without_5xx(quick_grace_bastion: Bastion, helloworld: Backend,
                                             tmp_path: Path) -> None:
    bastion = quick_grace_bastion
    cafile, port = serve_hello(bastion, helloworld, tmp_path), bastion.secure_port
    # One h2load run keeps its four connections for the whole test.
    h2load = H2Load(HOST, port, "/hello", run_seconds=14, max_runs=1)
    h2load.start()
    time.sleep(2)
    deleted_at = time.monotonic()
    bastion.cli("-n", "istio-system", "delete", "secret", "hello-credential")
    wait_refused(HOST, port, cafile)
    assert time.monotonic() - deleted_at >= 1.9
    h2 = h2load.finish()
    report = h2load.reports[-1] if h2load.reports else ""
    print(f"h2load {h2}\n{report}")
    # Streams refused by GOAWAY may fail; none may be answered with an error status.
    assert h2["5xx"] == h2["4xx"] == 0, report
    assert h2["2xx"] > 1000, report
    assert h2["2xx"] >= h2["succeeded"], report
    log = (bastion.state_dir / "bastion.log").read_text()
    assert ("Secret istio-system/hello-credential: deleted 2 s ago and not created again; "
            "withdrawn from the gateway") in log
    assert "secret istio-system/hello-credential not found" in log
    assert "cluster outbound|5000||helloworld-v1.default.svc.cluster.local is no longer " \
           "routed to; kept 50 s for connections draining" in log
