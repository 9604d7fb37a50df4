"""The real httpbin (PyPI `httpbin`) served locally over HTTP/1.1 keep-alive."""

from __future__ import annotations

import argparse
import logging
import warnings


def serve(host: str, port: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("httpbin").setLevel(logging.ERROR)
        from httpbin import app
    from werkzeug.serving import WSGIRequestHandler, run_simple

    WSGIRequestHandler.protocol_version = "HTTP/1.1"
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    print(f"httpbin listening on {host}:{port}", flush=True)
    run_simple(host, port, app, threaded=True, use_reloader=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
