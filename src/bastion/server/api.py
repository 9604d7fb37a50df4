"""The API the CLI talks to: one JSON request and one JSON answer per connection, over a Unix
socket in the state directory (mode 0600), like kubectl talking to an API server; and, for
operators on other hosts, over TCP with mutual TLS."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from cryptography import x509

from bastion.errors import BadRequest, ServerUnavailable, UserError
from bastion.identity import admin_of

log = logging.getLogger("bastion.api")
MAX_REQUEST = 256 * 1024 * 1024

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


async def _answer(line: bytes, handle: Handler) -> dict[str, Any]:
    """The caller's mistakes are refused in one line; anything else is a bug in bastion, logged
    with its traceback and reported as an internal error, never as the caller's fault."""
    try:
        request = json.loads(line)
    except (ValueError, RecursionError):
        return {"ok": False, "error": "bad request: not one JSON object"}
    if not isinstance(request, dict):
        return {"ok": False, "error": "bad request: request must be an object"}
    try:
        return await handle(request)
    except UserError as exc:
        return {"ok": False, "error": f"bad request: {exc}" if isinstance(exc, BadRequest)
                else str(exc)}
    except Exception as exc:
        log.exception("internal error handling operation %r", str(request.get("op"))[:40])
        return {"ok": False, "error": f"internal error: {type(exc).__name__} (see the "
                                      "control plane's log)"}


async def _serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     handle: Handler) -> None:
    try:
        line = await reader.readline()
        answer = await _answer(line, handle)
        writer.write(json.dumps(answer).encode() + b"\n")
        await writer.drain()
    finally:
        writer.close()


async def serve_api(path: Path, handle: Handler) -> asyncio.base_events.Server:
    path.unlink(missing_ok=True)

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _serve_one(reader, writer, handle)

    old = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(on_client, path=str(path), limit=MAX_REQUEST)
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    return server


async def serve_remote_api(address: str, context: ssl.SSLContext, handle: Handler
                           ) -> asyncio.base_events.Server:
    """The same API over TCP with mutual TLS, for operators elsewhere (`bastion --server`):
    only a client certificate naming an operator (`bastion certs admin`) is answered; a
    gateway's certificate, valid for xDS, is refused. Each operation is logged with who
    asked for it."""
    host, _, port = address.rpartition(":")

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        who = admin_of(x509.load_der_x509_certificate(der)) if der else None
        if who is None:
            writer.write(json.dumps({"ok": False, "error": (
                "permission denied: the client certificate is not an operator's (`bastion "
                "certs admin` issues them)")}).encode() + b"\n")
            writer.close()
            return

        async def audited(request: dict[str, Any]) -> dict[str, Any]:
            log.info("remote API: %s by admin %s from %s", str(request.get("op"))[:40], who,
                     writer.get_extra_info("peername"))
            return await handle(request)

        await _serve_one(reader, writer, audited)

    try:
        return await asyncio.start_server(on_client, host.strip("[]"), int(port), ssl=context,
                                          limit=MAX_REQUEST)
    except OSError as exc:
        raise ServerUnavailable(f"cannot listen for the remote API on {address}: {exc}"
                                ) from None
