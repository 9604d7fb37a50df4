"""Bounded client loops that run beside a test's changes and count every failure."""

from __future__ import annotations

import http.client
import re
import socket
import ssl
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.harness import handshake_serial


@dataclass
class Tally:
    ok: int = 0
    errors: list[str] = field(default_factory=list)
    serials: Counter[int] = field(default_factory=Counter)
    serial_sequence: list[int] = field(default_factory=list)


class HandshakeLoop(threading.Thread):
    """A new TLS connection per iteration; records the serial each handshake presented."""

    def __init__(self, host: str, port: int, cafile: Path, max_count: int = 5000,
                 max_seconds: float = 60.0, address: str = "127.0.0.1") -> None:
        super().__init__(daemon=True)
        self.host, self.port, self.cafile, self.address = host, port, cafile, address
        self.max_count, self.max_seconds = max_count, max_seconds
        self.tally = Tally()
        self._stop_event = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        for _ in range(self.max_count):
            if self._stop_event.is_set() or time.monotonic() > deadline:
                break
            try:
                serial = handshake_serial(self.host, self.port, self.cafile,
                                          address=self.address)
                self.tally.serials[serial] += 1
                self.tally.serial_sequence.append(serial)
                self.tally.ok += 1
            except Exception as exc:  # every failure is counted, none hidden
                self.tally.errors.append(f"{type(exc).__name__}: {exc}")

    def finish(self) -> Tally:
        self._stop_event.set()
        self.join(timeout=30)
        return self.tally


class LoopbackHTTPS(http.client.HTTPSConnection):
    """An HTTPS connection to 127.0.0.1 that sends `host` as SNI and Host."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext) -> None:
        super().__init__(host, port, context=context, timeout=5)
        self._tls = context

    def connect(self) -> None:
        raw = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


class KeepAliveLoop(threading.Thread):
    """HTTP/1.1 requests over one kept-alive TLS connection (reconnecting only if the gateway
    closes it), checking each status."""

    def __init__(self, host: str, port: int, cafile: Path, path: str = "/status/200",
                 max_count: int = 5000, max_seconds: float = 60.0) -> None:
        super().__init__(daemon=True)
        self.host, self.port, self.cafile, self.path = host, port, cafile, path
        self.max_count, self.max_seconds = max_count, max_seconds
        self.tally = Tally()
        self.connections = 0
        self._stop_event = threading.Event()

    def _connect(self) -> http.client.HTTPSConnection:
        context = ssl.create_default_context(cafile=str(self.cafile))
        context.check_hostname = False
        self.connections += 1
        return LoopbackHTTPS(self.host, self.port, context)

    def run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        conn = None
        for _ in range(self.max_count):
            if self._stop_event.is_set() or time.monotonic() > deadline:
                break
            try:
                if conn is None:
                    conn = self._connect()
                conn.request("GET", self.path, headers={"Host": self.host})
                response = conn.getresponse()
                body = response.read()
                if response.status != 200:
                    self.tally.errors.append(
                        f"status {response.status} at {time.monotonic():.3f}: {body[:160]!r}")
                else:
                    self.tally.ok += 1
                if response.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as exc:
                self.tally.errors.append(f"{type(exc).__name__}: {exc}")
                conn = None
        if conn is not None:
            conn.close()

    def finish(self) -> Tally:
        self._stop_event.set()
        self.join(timeout=30)
        return self.tally


class H2Load(threading.Thread):
    """h2load (4 HTTP/2 connections, 4 streams each, 500 requests/s each) in back-to-back runs
    of `run_seconds` until told to stop, so the load covers the whole test and ends soon after
    it; every run's counts are added up. One run of a long `run_seconds` keeps the same
    connections for the whole test."""

    def __init__(self, host: str, port: int, path: str, run_seconds: int = 5,
                 max_runs: int = 40) -> None:
        super().__init__(daemon=True)
        self.host, self.port, self.path = host, port, path
        self.run_seconds, self.max_runs = run_seconds, max_runs
        self.counts = {"done": 0, "succeeded": 0, "failed": 0, "errored": 0, "timeout": 0,
                       "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0}
        self.reports: list[str] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        for _ in range(self.max_runs):
            if self._stop_event.is_set():
                break
            out = subprocess.run(
                ["h2load", "-D", str(self.run_seconds), "-c", "4", "-m", "4", "-t", "1",
                 "--rps", "500", f"--connect-to=127.0.0.1:{self.port}",
                 f"https://{self.host}:{self.port}{self.path}"],
                capture_output=True, text=True, timeout=self.run_seconds + 60)
            report = out.stdout + out.stderr
            self.reports.append(report)
            summary = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) "
                                r"succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", report)
            codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx",
                              report)
            if not summary or not codes:
                self.counts["errored"] += 1
                continue
            for key, value in zip(("done", "succeeded", "failed", "errored", "timeout"),
                                  map(int, summary.groups()), strict=True):
                self.counts[key] += value
            for key, value in zip(("2xx", "3xx", "4xx", "5xx"), map(int, codes.groups()),
                                  strict=True):
                self.counts[key] += value

    def finish(self) -> dict[str, int]:
        self._stop_event.set()
        self.join(timeout=self.run_seconds + 90)
        return self.counts
