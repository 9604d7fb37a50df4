"""Bad and deleted credentials fail safely and per server: the affected host is refused, every
other host keeps serving, the reason is reported, and the server comes back when fixed."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests import certs
from tests.e2e.harness import Bastion, handshake_serial
from tests.e2e.loops import HandshakeLoop
from tests.manifests import secret_json as secret

GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https-a, protocol: HTTPS}
    tls: {mode: SIMPLE, credentialName: a-credential}
    hosts: [a.example.com]
  - port: {number: 443, name: https-b, protocol: HTTPS}
    tls: {mode: SIMPLE, credentialName: b-credential}
    hosts: [b.example.com]
"""




def refused(host: str, port: int, cafile: Path) -> bool:
    try:
        handshake_serial(host, port, cafile)
    except OSError:
        return True
    return False


def wait_refused(host: str, port: int, cafile: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if refused(host, port, cafile):
            return
        time.sleep(0.1)
    raise AssertionError(f"{host} still served after {timeout}s")


@pytest.fixture
def two_hosts(bastion: Bastion, tmp_path: Path) -> Path:
    return serve_two_hosts(bastion, tmp_path)


def serve_two_hosts(bastion: Bastion, tmp_path: Path) -> Path:
    a, b = certs.leaf("a.example.com", 1), certs.leaf("b.example.com", 2)
    bastion.cli("apply", "-f", "-", input="\n---\n".join([
        secret("a-credential", tls_crt=a.cert, tls_key=a.key),
        secret("b-credential", tls_crt=b.cert, tls_key=b.key), GATEWAY]))
    bastion.cli("wait", "--timeout", "10s", "gateway", "gw")
    cafile = tmp_path / "root.crt"
    cafile.write_bytes(certs.ca("root1")[0].cert)
    assert handshake_serial("b.example.com", bastion.secure_port, cafile) == 2
    return cafile


BAD = {
    "not PEM": ({"tls_crt": b"garbage", "tls_key": b"garbage"}, "certificate is not valid PEM"),
    "key mismatch": ({"tls_crt": certs.leaf("b.example.com", 2).cert,
                      "tls_key": certs.leaf("other.example.com", 3).key},
                     "private key does not match the certificate"),
    "missing key": ({"tls_crt": certs.leaf("b.example.com", 2).cert},
                    "needs keys 'tls.crt' and 'tls.key'"),
    "empty values": ({"cert": b"", "key": b""}, "keys 'cert' and 'key' are empty"),
    "token key": ({"cert": certs.leaf("b.example.com", 2).cert,
                   "key": certs.leaf("b.example.com", 2).key, "token": b"t"},
                  "carries a 'token' key"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_credential_is_contained_and_recovers(bastion: Bastion, two_hosts: Path,
                                                  case: str) -> None:
    cafile, port = two_hosts, bastion.secure_port
    values, reason = BAD[case]
    loop = HandshakeLoop("a.example.com", port, cafile, max_count=5000, max_seconds=60)
    loop.start()
    bastion.cli("apply", "-f", "-", input=secret("b-credential", **values))
    bastion.cli("wait", "--timeout", "10s", "-n", "istio-system", "secret", "b-credential")
    assert refused("b.example.com", port, cafile)
    status = bastion.status()
    messages = [d["message"] for d in status["diagnostics"]]
    assert any(reason in m and "b-credential" in m for m in messages), messages
    assert reason in (bastion.state_dir / "bastion.log").read_text()
    # Fixed: the server comes back by itself.
    good = certs.leaf("b.example.com", 2)
    bastion.cli("apply", "-f", "-", input=secret("b-credential", tls_crt=good.cert,
                                                  tls_key=good.key))
    bastion.cli("wait", "--timeout", "10s", "-n", "istio-system", "secret", "b-credential")
    assert handshake_serial("b.example.com", port, cafile) == 2
    tally = loop.finish()
    assert tally.errors == [] and tally.ok > 0 and set(tally.serials) == {1}
    assert all(t["nacks"] == 0 for t in bastion.status()["gateways"][0]["types"].values())


def test_deleted_credential_stops_after_grace_and_returns(quick_grace_bastion: Bastion,
                                                          tmp_path: Path) -> None:
    bastion = quick_grace_bastion
    cafile, port = serve_two_hosts(bastion, tmp_path), bastion.secure_port
    loop = HandshakeLoop("a.example.com", port, cafile, max_count=5000, max_seconds=60)
    loop.start()
    deleted_at = time.monotonic()
    bastion.cli("-n", "istio-system", "delete", "secret", "b-credential")
    # Within the grace period the old certificate is still served, and everything that shows
    # the Secret says when it goes ...
    assert handshake_serial("b.example.com", port, cafile) == 2
    notice = bastion.status()["deletedSecrets"]["istio-system/b-credential"]
    assert re.fullmatch(r"deleted, withdrawn in [012] s", notice), notice
    described = bastion.cli("describe", "secret", "b-credential", "-n", "istio-system").stdout
    assert re.search(r"Deleted: +deleted, withdrawn in [012] s", described), described
    assert "deleted, withdrawn in" in bastion.cli("status").stdout
    # ... and after it, the server is no longer programmed.
    wait_refused("b.example.com", port, cafile)
    assert time.monotonic() - deleted_at >= 1.9
    assert bastion.status()["deletedSecrets"] == {}
    messages = [d["message"] for d in bastion.status()["diagnostics"]]
    assert any("secret istio-system/b-credential not found" in m for m in messages), messages
    log = (bastion.state_dir / "bastion.log").read_text()
    assert "secret kubernetes://b-credential removed from the gateway" in log
    assert "Secret istio-system/b-credential deleted; withdrawn in 2 s unless created again" in log
    assert ("Secret istio-system/b-credential: deleted 2 s ago and not created again; "
            "withdrawn from the gateway") in log
    b = certs.leaf("b.example.com", 2)
    bastion.cli("apply", "-f", "-", input=secret("b-credential", tls_crt=b.cert, tls_key=b.key))
    bastion.cli("wait", "--timeout", "10s", "-n", "istio-system", "secret", "b-credential")
    assert handshake_serial("b.example.com", port, cafile) == 2
    tally = loop.finish()
    assert tally.errors == [] and tally.ok > 0


def test_create_secret_warns_about_names_and_keys_gateways_never_use(bastion: Bastion,
                                                                     tmp_path: Path) -> None:
    pair = certs.leaf("a.example.com")
    cert, key = certs.write(pair, tmp_path, "a")
    result = bastion.cli("create", "-n", "istio-system", "secret", "tls", "istio-cred",
                         f"--cert={cert}", f"--key={key}")
    assert "Warning: secret 'istio-cred': names starting with 'istio' or 'prometheus'" in (
        result.stderr)
    result = bastion.cli("create", "-n", "istio-system", "secret", "generic", "with-token",
                         f"--from-file=cert={cert}", f"--from-file=key={key}",
                         "--from-literal=token=x")
    assert "a secret with a 'token' key is never used by a gateway" in result.stderr
    clean = bastion.cli("create", "-n", "istio-system", "secret", "tls", "fine",
                        f"--cert={cert}", f"--key={key}")
    assert clean.stderr == ""
    mismatch = bastion.cli("create", "secret", "tls", "bad", f"--cert={cert}",
                           f"--key={certs.write(certs.leaf('z.example.com', 9), tmp_path, 'z')[1]}",
                           check=False)
    assert mismatch.returncode == 1
    assert "private key does not match the certificate" in mismatch.stderr
    assert bastion.cli("get", "secret", "bad", check=False).returncode == 1
