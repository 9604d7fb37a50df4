"""The local API the CLI talks to: one JSON request and one JSON answer per connection, over a
Unix socket in the state directory (mode 0600), like kubectl talking to an API server."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bastion.errors import BadRequest, UserError

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


async def serve_api(path: Path, handle: Handler) -> asyncio.base_events.Server:
    path.unlink(missing_ok=True)

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            answer = await _answer(line, handle)
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        finally:
            writer.close()

    old = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(on_client, path=str(path), limit=MAX_REQUEST)
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    return server
