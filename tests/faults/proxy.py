"""A small TCP proxy for fault tests: put it between a process and Postgres or RabbitMQ, then
cut, refuse or stall the traffic at a moment of the test's choosing.

    proxy = await TcpProxy.open("127.0.0.1", 5432)     # listens on 127.0.0.1:<free port>
    dsn = f"postgresql://root@127.0.0.1:{proxy.port}/db"
    ...
    await proxy.cut()          # every open connection is reset (RST), as a network drop
    proxy.refuse()             # new connections are refused (ECONNREFUSED), as a server down
    await proxy.accept()       # ... and accepted again, on the same port
    proxy.stall()              # bytes stop flowing both ways; connections stay open
    proxy.resume()             # ... and flow again (nothing is lost, as a healed partition)
    await proxy.close()        # stop listening and cut everything

It forwards bytes only; it knows nothing of the protocols, so it works for AMQP, Postgres, HTTP.
Each accepted connection opens its own connection to the target. Use it as an async context
manager to be sure it is closed:

    async with await TcpProxy.open(host, port) as proxy: ...
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from types import TracebackType

_CHUNK = 64 * 1024


def _reset(writer: asyncio.StreamWriter) -> None:
    """Closes the socket with an RST rather than a FIN, as a dropped network path looks to
    the peer (SO_LINGER with a zero timeout), without waiting for buffered data."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Pair:
    """One client connection and its connection to the target."""

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream = upstream
        self.tasks: list[asyncio.Task[None]] = []

    def reset(self) -> None:
        _reset(self.client)
        _reset(self.upstream)
        for task in self.tasks:
            task.cancel()


class TcpProxy:
    """Forwards 127.0.0.1:<port> to target_host:target_port. See the module docstring."""

    def __init__(self, target_host: str, target_port: int, *, listen_host: str = "127.0.0.1"):
        self.target_host = target_host
        self.target_port = target_port
        self.listen_host = listen_host
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pairs: set[_Pair] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._closed = False
        self.accepted = 0  # connections accepted since open(), for assertions

    @classmethod
    async def open(
        cls, target_host: str, target_port: int, *, listen_host: str = "127.0.0.1"
    ) -> TcpProxy:
        proxy = cls(target_host, target_port, listen_host=listen_host)
        await proxy._listen()
        return proxy

    @property
    def address(self) -> str:
        return f"{self.listen_host}:{self.port}"

    @property
    def connections(self) -> int:
        """Connections currently open through the proxy."""
        return len(self._pairs)

    @property
    def refusing(self) -> bool:
        return self._server is None

    async def _listen(self) -> None:
        # Port 0 the first time; the same port again after refuse()/accept(), so clients that
        # were configured with it can reconnect. SO_REUSEADDR (asyncio's default on Unix)
        # lets it bind again at once; another process taking the port meanwhile is not
        # something a test on one host has to fear, but it is retried briefly anyway.
        for attempt in range(50):
            try:
                self._server = await asyncio.start_server(
                    self._on_client, self.listen_host, self.port, reuse_address=True
                )
                break
            except OSError:
                if attempt == 49 or self.port == 0:
                    raise
                await asyncio.sleep(0.02)  # noqa: TID251 - retrying a bind, not synchronising
        assert self._server is not None
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closed:
            _reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            _reset(writer)  # the target is down: the client sees its connection reset
            return
        self.accepted += 1
        pair = _Pair(writer, up_writer)
        self._pairs.add(pair)
        pair.tasks = [
            asyncio.create_task(self._pump(reader, up_writer, pair)),
            asyncio.create_task(self._pump(up_reader, writer, pair)),
        ]
        await asyncio.gather(*pair.tasks, return_exceptions=True)
        self._pairs.discard(pair)
        for w in (writer, up_writer):
            w.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pair: _Pair
    ) -> None:
        try:
            while True:
                data = await reader.read(_CHUNK)
                await self._flowing.wait()
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            # One side ended: end the other one too (a half-closed pair would hang a client).
            if pair in self._pairs:
                for task in pair.tasks:
                    if task is not asyncio.current_task():
                        task.cancel()

    async def cut(self) -> int:
        """Resets every open connection (both sides see an RST); returns how many. New
        connections are still accepted unless refuse() was called."""
        pairs, self._pairs = list(self._pairs), set()
        for pair in pairs:
            pair.reset()
        await asyncio.gather(*(t for p in pairs for t in p.tasks), return_exceptions=True)
        return len(pairs)

    def refuse(self) -> None:
        """Stops listening: new connections get ECONNREFUSED. Open ones are untouched (call
        cut() too for a full outage)."""
        if self._server is not None:
            self._server.close()
            self._server = None

    async def accept(self) -> None:
        """Listens again on the same port after refuse()."""
        if self._server is None and not self._closed:
            await self._listen()

    def stall(self) -> None:
        """Holds every byte in both directions (open and new connections stay open), as a
        network partition that does not reset anything. resume() delivers what was held."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    async def close(self) -> None:
        self._closed = True
        self._flowing.set()
        server, self._server = self._server, None
        if server is not None:
            server.close()
        await self.cut()
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), timeout=2)

    async def __aenter__(self) -> TcpProxy:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
