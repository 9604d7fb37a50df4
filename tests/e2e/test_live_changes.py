"""Changing one server never interrupts another: servers, hosts, TLS modes and VirtualServices
change while loops on an unchanged host count every failure. Also: several Gateways merge, and
wildcard and catch-all hosts pick certificates as Istio's do."""

from __future__ import annotations

import json
from pathlib import Path

from tests import certs
from tests.e2e.harness import Backend, Bastion, curl, handshake_serial
from tests.e2e.loops import HandshakeLoop, KeepAliveLoop
from tests.manifests import gateway_yaml as gateway
from tests.manifests import sample_manifest
from tests.manifests import tls_secret_json as secret


def vs(name: str, hosts: list[str], gateway_name: str) -> str:
    return (f"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}}}\n"
            f"spec:\n  hosts: {json.dumps(hosts)}\n  gateways: [{gateway_name}]\n  http:\n"
            "  - route: [{destination: {host: httpbin, port: {number: 8000}}}]\n")


def test_changes_to_one_server_never_interrupt_another(bastion: Bastion, httpbin: Backend,
                                                       tmp_path: Path) -> None:
    root = certs.ca("root1")[0].cert
    cafile = tmp_path / "root.crt"
    cafile.write_bytes(root)
    client = certs.write(certs.leaf("client.example.com", 50), tmp_path, "client")
    manifest = sample_manifest(bastion.cli("samples", "manifest", "httpbin").stdout,
                               httpbin.port)
    bastion.cli("apply", "-f", "-", input="\n---\n".join([
        manifest,
        secret("a-credential", certs.leaf("a.example.com", 1)),
        secret("b-credential", certs.leaf("b.example.com", 2), ca=root),
        gateway("gw-a", [("https", "SIMPLE", "a-credential", ["a.example.com"])]),
        vs("a", ["a.example.com"], "gw-a")]))
    bastion.cli("wait", "--timeout", "10s", "vs", "a")
    port = bastion.secure_port

    def b_status(*extra: str) -> str:
        result = curl("b.example.com", port, "/status/200", cafile, extra)
        if result.returncode != 0:
            return f"refused({result.returncode})"
        return result.stderr.split("< HTTP/2 ", 1)[1].split()[0]

    keepalive = KeepAliveLoop("a.example.com", port, cafile, max_count=20000, max_seconds=120)
    handshakes = HandshakeLoop("a.example.com", port, cafile, max_count=20000, max_seconds=120)
    keepalive.start()
    handshakes.start()
    with_cert = ("--cert", str(client[0]), "--key", str(client[1]))
    steps = [
        # (what changes, manifest, object to wait for, expected result for b, curl args)
        ("add server b in a second Gateway",
         gateway("gw-b", [("https", "SIMPLE", "b-credential", ["b.example.com"])]),
         ("gateway", "gw-b"), "404", ()),
        ("route b", vs("b", ["b.example.com"], "gw-b"), ("vs", "b"), "200", ()),
        ("switch b to MUTUAL",
         gateway("gw-b", [("https", "MUTUAL", "b-credential", ["b.example.com"])]),
         ("gateway", "gw-b"), "refused", ()),
        ("b with a client certificate", None, None, "200", with_cert),
        ("switch b back to SIMPLE",
         gateway("gw-b", [("https", "SIMPLE", "b-credential", ["b.example.com"])]),
         ("gateway", "gw-b"), "200", ()),
        ("add a host to b",
         gateway("gw-b", [("https", "SIMPLE", "b-credential", ["b.example.com", "c.example.com"])]),
         ("gateway", "gw-b"), "200", ()),
        ("unroute b", None, None, None, ()),
        ("remove server b", None, None, "refused", ()),
    ]
    for what, manifest_text, wait_for, expected, extra in steps:
        if what == "unroute b":
            bastion.cli("delete", "vs", "b")
            bastion.cli("wait", "--timeout", "10s", "gateway", "gw-b")
            assert b_status() == "404", what
            continue
        if what == "remove server b":
            bastion.cli("delete", "gateway", "gw-b")
            bastion.cli("wait", "--timeout", "10s", "gateway", "gw-a")
            assert b_status().startswith("refused"), what
            continue
        if manifest_text is not None:
            bastion.cli("apply", "-f", "-", input=manifest_text)
            bastion.cli("wait", "--timeout", "10s", *wait_for)
        got = b_status(*extra)
        assert got.startswith(expected), f"{what}: {got}"
    kept, shook = keepalive.finish(), handshakes.finish()
    assert kept.errors == [], kept.errors[:5]
    assert shook.errors == [], shook.errors[:5]
    assert kept.ok > 20 and shook.ok > 20
    # The kept-alive connection was never cut by the changes to other servers.
    assert keepalive.connections == 1


def test_wildcards_and_catch_all(bastion: Bastion, tmp_path: Path) -> None:
    cafile = tmp_path / "root.crt"
    cafile.write_bytes(certs.ca("root1")[0].cert)
    bastion.cli("apply", "-f", "-", input="\n---\n".join([
        secret("exact-credential", certs.leaf("foo.example.com", 1)),
        secret("wild-credential", certs.leaf("*.example.com", 2)),
        secret("any-credential", certs.leaf("default.test", 3)),
        gateway("gw-exact", [("https", "SIMPLE", "exact-credential", ["foo.example.com"])]),
        gateway("gw-wild", [("https", "SIMPLE", "wild-credential", ["*.example.com"])]),
        gateway("gw-any", [("https", "SIMPLE", "any-credential", ["*"])])]))
    for name in ("gw-exact", "gw-wild", "gw-any"):
        bastion.cli("wait", "--timeout", "10s", "gateway", name)
    port = bastion.secure_port
    assert handshake_serial("foo.example.com", port, cafile) == 1  # most specific wins
    assert handshake_serial("bar.example.com", port, cafile) == 2
    assert handshake_serial("other.test", port, cafile) == 3
    assert handshake_serial(None, port, cafile) == 3  # no SNI at all: the `*` server
    listeners = bastion.cli("proxy-config", "listener").stdout
    assert "foo.example.com" in listeners and "*.example.com" in listeners
