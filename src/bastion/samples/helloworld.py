"""Istio's helloworld sample, as a tiny local server: `GET /hello` answers
`Hello version: v1, instance: <host>`, as the sample's container does."""

from __future__ import annotations

import argparse
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def make_handler(version: str, instance: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "helloworld"
        # Headers and body leave in separate writes: without TCP_NODELAY each kept-alive
        # request waits for the client's delayed ACK (about 40 ms).
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] == "/hello":
                status, body = 200, f"Hello version: {version}, instance: {instance}\n"
            elif self.path == "/health":
                status, body = 200, "ok\n"
            else:
                status, body = 404, "not found\n"
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def serve(host: str, port: int, version: str, instance: str | None = None) -> None:
    server = ThreadingHTTPServer((host, port),
                                 make_handler(version, instance or socket.gethostname()))
    server.daemon_threads = True
    print(f"helloworld {version} listening on {host}:{server.server_address[1]}", flush=True)
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--version", default="v1")
    args = parser.parse_args()
    serve(args.host, args.port, args.version)


if __name__ == "__main__":
    main()
