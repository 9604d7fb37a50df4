"""Two real Envoys with different labels on one control plane: each receives only the Gateways
that select it and only their credentials (read from each Envoy's own /config_dump), and each
serves only its own hosts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests import certs
from tests.e2e.harness import Bastion, curl, free_port, handshake_serial, wait_admin
from tests.manifests import tls_secret_json as secret


def gateway(name: str, selector: str, port: int, host: str, credential: str) -> str:
    return (f"apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: {name}}}\n"
            f"spec:\n  selector: {{{selector}}}\n  servers:\n"
            f"  - port: {{number: {port}, name: https, protocol: HTTPS}}\n"
            f"    tls: {{mode: SIMPLE, credentialName: {credential}}}\n"
            f"    hosts: [{host}]\n")


def routes(name: str, host: str, gw: str) -> str:
    return (f"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}}}"
            f"\nspec:\n  hosts: [{host}]\n  gateways: [{gw}]\n  http:\n"
            f"  - directResponse: {{status: 200, body: {{string: {name}}}}}\n")


def config_dump(admin: str) -> dict:
    with urllib.request.urlopen(f"http://{admin}/config_dump?include_eds", timeout=10) as r:
        return json.loads(r.read())


def dumped(dump: dict, kind: str) -> list[str]:
    """Names of the dynamic resources of one kind in a config dump."""
    names = []
    for section in dump["configs"]:
        if kind == "secrets" and "dynamic_active_secrets" in section:
            names += [s["name"] for s in section["dynamic_active_secrets"]]
        if kind == "listeners" and "dynamic_listeners" in section:
            names += [x["name"] for x in section["dynamic_listeners"]]
    return sorted(names)


def test_each_gateway_group_holds_only_what_selects_it(tmp_path: Path) -> None:
    b_port = free_port()
    bastion = Bastion(tmp_path, serve_args=("--port-map", f"8443={b_port}"))
    bastion.start()
    second = None
    try:
        log = open(tmp_path / "gateway-b.log", "wb")  # noqa: SIM115
        second = subprocess.Popen(
            [sys.executable, "-m", "bastion", "gateway", "--gateway-name", "edge-b",
             "--gateway-label", "app=edge-b"], env=bastion.env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
        a, b = certs.leaf("a.example.com", 11), certs.leaf("b.example.com", 22)
        bastion.cli("apply", "-f", "-", input="\n---\n".join([
            secret("a-credential", a), secret("b-credential", b),
            gateway("gw-a", "istio: ingressgateway", 443, "a.example.com", "a-credential"),
            gateway("gw-b", "app: edge-b", 8443, "b.example.com", "b-credential"),
            routes("a", "a.example.com", "gw-a"), routes("b", "b.example.com", "gw-b")]))
        deadline = time.monotonic() + 30
        while len(bastion.status()["gateways"]) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        bastion.cli("wait", "--timeout", "20s", "vs", "b")
        groups = sorted(g["group"] for g in bastion.status()["gateways"])
        assert groups == ["istio-system/{app=edge-b}", "istio-system/{istio=ingressgateway}"]

        a_dump = config_dump(bastion.status()["envoy"]["admin"])
        b_dump = config_dump(wait_admin(bastion.state_dir / "gateways" / "edge-b" /
                                        "envoy-admin-address"))
        # Each also holds its own group's session-ticket keys (derived per group).
        assert dumped(a_dump, "secrets") == ["bastion:session-ticket-keys",
                                             "kubernetes://a-credential"]
        assert dumped(b_dump, "secrets") == ["bastion:session-ticket-keys",
                                             "kubernetes://b-credential"]
        assert dumped(a_dump, "listeners") == [f"127.0.0.1_{bastion.secure_port}"]
        assert dumped(b_dump, "listeners") == [f"127.0.0.1_{b_port}"]
        # Neither the other's certificate nor its key material is anywhere in a dump.
        b_text, a_text = json.dumps(b_dump), json.dumps(a_dump)
        assert "a-credential" not in b_text and "a.example.com" not in b_text
        assert "b-credential" not in a_text and "b.example.com" not in a_text

        cafile = tmp_path / "root.crt"
        cafile.write_bytes(certs.ca("root1")[0].cert)
        assert handshake_serial("a.example.com", bastion.secure_port, cafile) == 11
        assert handshake_serial("b.example.com", b_port, cafile) == 22
        served = curl("b.example.com", b_port, "/", cacert=cafile)
        assert served.stdout == "b", served.stderr
        refused = curl("a.example.com", b_port, "/", cacert=cafile)
        assert refused.returncode != 0
    finally:
        if second is not None:
            second.send_signal(signal.SIGTERM)
            try:
                second.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(second.pid, signal.SIGKILL)
        bastion.stop()
