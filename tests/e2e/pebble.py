"""Let's Encrypt's test ACME server, Pebble, and its DNS server pebble-challtestsrv, started
and stopped by a test: every name resolves to 127.0.0.1 (where the gateway under test listens)
unless the test points it elsewhere, validation happens at once, and certificates live as long
as the test asks."""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import urllib.request
from pathlib import Path

from tests import certs
from tests.e2e.harness import free_port, wait_port


class Pebble:
    def __init__(self, workdir: Path, http_port: int, validity_s: int = 3600) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.port, self.management_port = free_port(), free_port()
        self.dns_port, self.dns_management_port = free_port(), free_port()
        wfe = certs.leaf("localhost", 7001, "pebble-wfe", sans=("localhost",))
        self.wfe_ca = certs.ca("pebble-wfe")[0].cert
        cert, key = certs.write(wfe, workdir, "wfe")
        config = {"pebble": {
            "listenAddress": f"127.0.0.1:{self.port}",
            "managementListenAddress": f"127.0.0.1:{self.management_port}",
            "certificate": str(cert), "privateKey": str(key),
            "httpPort": http_port, "tlsPort": free_port(),
            "ocspResponderURL": "", "externalAccountBindingRequired": False,
            "certificateValidityPeriod": validity_s}}
        (workdir / "pebble.json").write_text(json.dumps(config))
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def directory(self) -> str:
        return f"https://localhost:{self.port}/dir"

    @property
    def ca_bundle(self) -> str:
        """For an Issuer's `caBundle`: the CA of Pebble's own HTTPS certificate."""
        return base64.b64encode(self.wfe_ca).decode()

    def start(self) -> None:
        env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
        self._spawn("dns", ["pebble-challtestsrv", "-dns01", f"127.0.0.1:{self.dns_port}",
                            "-http01", "", "-https01", "", "-tlsalpn01", "",
                            "-management", f"127.0.0.1:{self.dns_management_port}",
                            "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""], env)
        wait_port(self.dns_management_port)
        self._spawn("pebble", ["pebble", "-config", str(self.workdir / "pebble.json"),
                               "-dnsserver", f"127.0.0.1:{self.dns_port}"], env)
        wait_port(self.port)
        wait_port(self.management_port)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115
        self.processes.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                               env=env, start_new_session=True))

    def root(self) -> bytes:
        """The root Pebble issues under (made anew at each start)."""
        context = ssl.create_default_context(cadata=self.wfe_ca.decode())
        context.check_hostname = False
        with urllib.request.urlopen(f"https://127.0.0.1:{self.management_port}/roots/0",
                                    context=context, timeout=5) as response:
            return response.read()

    def point(self, host: str, address: str) -> None:
        """Make `host` resolve to `address` (an address where nothing answers fails the
        HTTP-01 validation)."""
        body = json.dumps({"host": host.rstrip(".") + ".", "addresses": [address]}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.dns_management_port}/add-a", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=5):
            pass

    def log(self) -> str:
        return (self.workdir / "pebble.log").read_text(errors="replace")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
