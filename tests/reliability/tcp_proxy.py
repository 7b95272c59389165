"""A loopback TCP proxy that a test can switch into an outage and back.

It stands between the app and a backend it must not restart (the Cosmos DB test server
keeps its data in memory), and simulates the ways a store becomes unreachable:

- `refuse`: the listening socket is closed, so new connections are refused (ECONNREFUSED),
  like a backend whose process is down; open connections are cut.
- `reset`: connections are accepted and immediately reset (RST), like a load balancer
  with no healthy backend; open connections are cut.

`restore()` listens again on the same port, so clients reconnect by themselves.
Bytes are piped untouched (TLS passes through end to end).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Literal

Mode = Literal["pass", "refuse", "reset"]
_CHUNK = 64 * 1024


class TcpProxy:
    """Listens on a free loopback port; `target` may be set after `start` (a backend that
    must know the proxy's port before it starts)."""

    def __init__(self, target: tuple[str, int] | None = None) -> None:
        self.target = target
        self.port = 0
        self.mode: Mode = "pass"
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0  # accepted and piped to the target, for tests to check the path

    @property
    def host(self) -> str:
        return "127.0.0.1"

    async def start(self) -> None:
        await self._listen(0)

    async def _listen(self, port: int) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, port, reuse_address=True)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def outage(self, mode: Literal["refuse", "reset"]) -> None:
        """Starts an outage: cuts every open connection and refuses or resets new ones."""
        self.mode = mode
        if mode == "refuse" and self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self._cut_all()

    async def restore(self) -> None:
        """Ends the outage: accepts and pipes connections again, on the same port."""
        self.mode = "pass"
        if self._server is None:
            await self._listen(self.port)

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self._cut_all()
        if self._pipes:
            await asyncio.gather(*self._pipes, return_exceptions=True)

    def _cut_all(self) -> None:
        for writer in list(self._writers):
            _reset(writer)
        self._writers.clear()
        for task in list(self._pipes):
            task.cancel()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self.mode != "pass" or self.target is None:
            _reset(client_writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(client_writer)
            return
        self.connections += 1
        self._writers.update((client_writer, upstream_writer))
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        try:
            await asyncio.gather(_pump(client_reader, upstream_writer), _pump(upstream_reader, client_writer))
        except (asyncio.CancelledError, OSError):
            pass
        finally:
            self._pipes.discard(task)
            for writer in (client_writer, upstream_writer):
                self._writers.discard(writer)
                writer.close()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(OSError):
            if writer.can_write_eof():
                writer.write_eof()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Closes with an RST rather than a FIN: the peer sees 'connection reset'."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
