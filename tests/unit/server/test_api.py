"""The local API over its real Unix socket: the caller's mistakes are refused in one line that
says so; a bug in bastion is an internal error with its traceback in the log, never "bad
request"."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from bastion.cli.client import call
from bastion.errors import Conflict
from bastion.server.api import serve_api
from bastion.server.handlers import need


async def handle(request: dict[str, Any]) -> dict[str, Any]:
    if request.get("op") == "bug":
        return {"ok": True, "value": {}["missing"]}  # a KeyError inside bastion
    if request.get("op") == "conflict":
        raise Conflict('gateway "gw" already exists')
    return {"ok": True, "kind": need(request, "kind", str)}


def test_user_errors_and_bugs_are_told_apart(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> list[dict[str, Any]]:
        server = await serve_api(tmp_path / "api.sock", handle)
        try:
            requests = [{"op": "get", "kind": "gateway"}, {"op": "get"}, {"op": "conflict"},
                        {"op": "bug"}]
            return [await asyncio.to_thread(call, tmp_path, r, 5.0) for r in requests]
        finally:
            server.close()

    with caplog.at_level(logging.ERROR, logger="bastion.api"):
        ok, missing, conflict, bug = asyncio.run(scenario())
    assert ok == {"ok": True, "kind": "gateway"}
    assert missing == {"ok": False, "error": "bad request: field 'kind' must be a str"}
    assert conflict == {"ok": False, "error": 'gateway "gw" already exists'}
    assert bug["ok"] is False and bug["error"].startswith("internal error: KeyError")
    assert "bad request" not in bug["error"]
    assert any(r.exc_info and r.exc_info[0] is KeyError for r in caplog.records)


def test_a_request_that_is_not_json_is_refused(tmp_path: Path) -> None:
    async def scenario() -> bytes:
        server = await serve_api(tmp_path / "api.sock", handle)
        try:
            reader, writer = await asyncio.open_unix_connection(str(tmp_path / "api.sock"))
            writer.write(b"{not json\n")
            await writer.drain()
            answer = await reader.read()
            writer.close()
            return answer
        finally:
            server.close()

    assert b"bad request: not one JSON object" in asyncio.run(scenario())
