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

log = logging.getLogger("bastion.api")
MAX_REQUEST = 256 * 1024 * 1024

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


async def serve_api(path: Path, handle: Handler) -> asyncio.base_events.Server:
    path.unlink(missing_ok=True)

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("request must be an object")
                answer = await handle(request)
            except (ValueError, KeyError, TypeError) as exc:
                answer = {"ok": False, "error": f"bad request: {exc}"}
            except RecursionError:
                answer = {"ok": False, "error": "bad request: nested too deeply"}
            except Exception as exc:
                log.exception("internal error handling %s", str(line[:80]))
                answer = {"ok": False, "error": f"internal error: {type(exc).__name__}"}
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
