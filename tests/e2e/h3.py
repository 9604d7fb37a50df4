"""A minimal HTTP/3 client on aioquic: one GET over a new QUIC connection."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import QuicEvent


class _Client(QuicConnectionProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""

    def quic_event_received(self, event: QuicEvent) -> None:
        for h3_event in self.h3.handle_event(event):
            self._h3_event(h3_event)

    def _h3_event(self, event: H3Event) -> None:
        if isinstance(event, HeadersReceived):
            for name, value in event.headers:
                if name == b":status":
                    self.status = int(value)
                else:
                    self.headers[name.decode()] = value.decode()
        elif isinstance(event, DataReceived):
            self.body += event.data
        if getattr(event, "stream_ended", False) and not self.answered.done():
            self.answered.set_result(None)

    async def get(self, host: str, path: str) -> tuple[int, dict[str, str], bytes]:
        stream = self._quic.get_next_available_stream_id()
        self.h3.send_headers(stream, [(b":method", b"GET"), (b":scheme", b"https"),
                                      (b":authority", host.encode()), (b":path", path.encode())],
                             end_stream=True)
        self.transmit()
        await asyncio.wait_for(self.answered, 10)
        return self.status, self.headers, self.body


async def _get(host: str, port: int, cafile: Path, path: str,
               client: tuple[Path, Path] | None) -> tuple[int, dict[str, str], bytes]:
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name=host)
    config.load_verify_locations(str(cafile))
    if client is not None:
        config.load_cert_chain(str(client[0]), str(client[1]))
    async with connect("127.0.0.1", port, configuration=config, create_protocol=_Client,
                       wait_connected=True) as protocol:
        assert isinstance(protocol, _Client)
        return await protocol.get(host, path)


def h3_get(host: str, port: int, cafile: Path, path: str = "/",
           client: tuple[Path, Path] | None = None, timeout: float = 10.0
           ) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of GET `path` over HTTP/3 to 127.0.0.1:`port` with SNI `host`."""
    return asyncio.run(asyncio.wait_for(_get(host, port, cafile, path, client), timeout))
