"""Credential rotation: only the secret is pushed, new handshakes present the new certificate,
and no handshake fails while it happens, whether by replacement or by delete-then-create."""

from __future__ import annotations

from pathlib import Path

from tests import certs
from tests.e2e.harness import Bastion, handshake_serial
from tests.e2e.loops import HandshakeLoop
from tests.manifests import HTTPBIN_GATEWAY, sample_manifest, tls_secret_json

GATEWAY = HTTPBIN_GATEWAY

HOST = "httpbin.example.com"


def secret_json(pair: certs.Pair) -> str:
    return tls_secret_json("httpbin-credential", pair)


def test_rotation_never_costs_a_handshake(bastion: Bastion, tmp_path: Path) -> None:
    old = certs.leaf(HOST, 11, "root1")
    new = certs.leaf(HOST, 22, "root2")
    certs.write(old, tmp_path, "old")
    certs.write(new, tmp_path, "new")
    bundle = tmp_path / "both-roots.crt"
    bundle.write_bytes(certs.ca("root1")[0].cert + certs.ca("root2")[0].cert)

    bastion.cli("apply", "-f", "-", input=secret_json(old) + "\n---\n" + GATEWAY)
    bastion.cli("wait", "--timeout", "10s", "gateway", "mygateway")
    assert handshake_serial(HOST, bastion.secure_port, bundle) == 11
    before = bastion.status()["gateways"][0]["types"]

    loop = HandshakeLoop(HOST, bastion.secure_port, bundle, max_count=20000, max_seconds=90)
    loop.start()
    expected = 11
    for i in range(5):
        pair, stem, expected = (new, "new", 22) if expected == 11 else (old, "old", 11)
        if i % 2 == 0:  # replacement in place
            bastion.cli("apply", "-f", "-", input=secret_json(pair))
        else:  # the task's way: delete, then create again
            bastion.cli("-n", "istio-system", "delete", "secret", "httpbin-credential")
            bastion.cli("create", "-n", "istio-system", "secret", "tls", "httpbin-credential",
                        f"--cert={tmp_path / (stem + '.crt')}",
                        f"--key={tmp_path / (stem + '.key')}")
        bastion.cli("wait", "--timeout", "10s", "-n", "istio-system", "secret",
                    "httpbin-credential")
        assert handshake_serial(HOST, bastion.secure_port, bundle) == expected
    tally = loop.finish()

    assert tally.errors == [], tally.errors[:5]
    assert tally.ok > 20, "the loop must have overlapped the rotations"
    assert set(tally.serials) == {11, 22}
    after = bastion.status()["gateways"][0]["types"]
    # Only SDS changed: the listener, routes and clusters Envoy holds are the same versions.
    for kind in ("LDS", "RDS", "CDS"):
        if kind in before:
            assert after[kind]["acked"] == before[kind]["acked"], kind
    assert after["SDS"]["acked"] != before["SDS"]["acked"]
    log = (bastion.state_dir / "bastion.log").read_text()
    assert log.count("secret kubernetes://httpbin-credential updated") >= 5
    assert "secret kubernetes://httpbin-credential removed" not in log


def test_connections_open_before_rotation_keep_working(bastion: Bastion,
                                                       tmp_path: Path) -> None:
    from tests.e2e.harness import Backend
    from tests.e2e.loops import LoopbackHTTPS

    backend = Backend("httpbin", tmp_path)
    try:
        manifest = sample_manifest(bastion.cli("samples", "manifest", "httpbin").stdout,
                                   backend.port)
        vs = ("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: h}\n"
              "spec:\n  hosts: [httpbin.example.com]\n  gateways: [mygateway]\n  http:\n"
              "  - route: [{destination: {host: httpbin, port: {number: 8000}}}]\n")
        old = certs.leaf(HOST, 11, "root1")
        bastion.cli("apply", "-f", "-", input="\n---\n".join(
            [manifest, secret_json(old), GATEWAY, vs]))
        bastion.cli("wait", "--timeout", "10s", "vs", "h")
        import ssl

        context = ssl.create_default_context()
        context.load_verify_locations(cadata=certs.ca("root1")[0].cert.decode())
        context.check_hostname = False
        conn = LoopbackHTTPS(HOST, bastion.secure_port, context)
        conn.request("GET", "/status/200")
        first = conn.getresponse()
        first.read()
        assert first.status == 200
        bastion.cli("apply", "-f", "-", input=secret_json(certs.leaf(HOST, 22, "root2")))
        bastion.cli("wait", "--timeout", "10s", "-n", "istio-system", "secret",
                    "httpbin-credential")
        # The connection opened before the rotation still carries requests.
        for _ in range(3):
            conn.request("GET", "/status/200")
            response = conn.getresponse()
            response.read()
            assert response.status == 200
        conn.close()
    finally:
        backend.stop()
