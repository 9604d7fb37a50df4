"""A real HTTP backend for end-to-end tests: it listens on a free port of a loopback address,
remembers every request that reaches it (so a test can count retries, see rewritten paths and
headers set by the gateway), and answers as told: a status, a delay, per path prefix."""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509

from tests.e2e.harness import free_port


@dataclass(frozen=True)
class Seen:
    host: str
    path: str
    headers: dict[str, str]  # lower-case names; a repeated header's values joined by ","


@dataclass(frozen=True)
class Answer:
    status: int = 200
    delay_s: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()


class Recorder:
    """Answers `status` (or the `answers` entry of the longest matching path prefix) with its
    name as the body; with a TLS `context`, also the serial of the client's certificate.
    Without `keep_alive`, each connection serves one request (so each request shows the
    client certificate of a new handshake)."""

    def __init__(self, name: str = "backend", host: str = "127.0.0.1", status: int = 200,
                 context: ssl.SSLContext | None = None, keep_alive: bool = True) -> None:
        self.name, self.status = name, status
        self.answers: dict[str, Answer] = {}
        self.seen: list[Seen] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"
            disable_nagle_algorithm = True  # headers and body go out in two writes

            def do_GET(self) -> None:
                headers: dict[str, str] = {}
                for key, value in self.headers.items():
                    key = key.lower()
                    headers[key] = f"{headers[key]},{value}" if key in headers else value
                recorder.seen.append(Seen(headers.get("host", ""), self.path, headers))
                answer = recorder.answer(self.path)
                if answer.delay_s:
                    time.sleep(answer.delay_s)
                peer = ""
                der = self.connection.getpeercert(  # type: ignore[attr-defined]
                    binary_form=True) if context is not None else None
                if der:  # a client certificate was asked for and presented
                    peer = f" client-serial={x509.load_der_x509_certificate(der).serial_number}"
                body = f"{recorder.name}{peer}".encode()
                self.send_response(answer.status)
                for key, value in answer.headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer((host, self.port), Handler)
        self.server.daemon_threads = True
        if context is not None:
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str) -> Answer:
        prefixes = [p for p in self.answers if path.startswith(p)]
        return self.answers[max(prefixes, key=len)] if prefixes else Answer(self.status)

    @property
    def hits(self) -> int:
        return len(self.seen)

    def paths(self, prefix: str = "/") -> list[str]:
        return [s.path for s in self.seen if s.path.startswith(prefix)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
