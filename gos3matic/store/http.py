"""HTTP/1.1 over keep-alive connections on the engine's own event loop: the hot path's wire.

One `asyncio.Protocol` per connection, answers parsed by httptools (llhttp, in C), TLS by the
standard `ssl` module. A request is bytes written to an idle connection and one future the caller
awaits, settled from the connection's callbacks on the same thread: no thread hand-off, no timer
per request. One sweep a second looks at every request in flight and ends those that heard
nothing for IDLE_TIMEOUT seconds.

Connections are spread over every address the endpoint's name resolves to, and the name is
resolved again every RESOLVE_EVERY seconds: a connection to an address that left the answer is
closed instead of reused. A connection the server closed (idle keep-alive, `Connection: close`)
is dropped from the pool; a request whose connection closed or was reset before the end of its
answer fails with NetworkError, and the caller's retry policy sends it again on another one.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections import deque
from typing import Any

import httptools

from gos3matic.errors import EndpointUnreachable, NetworkError

CONNECT_TIMEOUT = 10.0  # seconds, as boto3's connect_timeout in store/boto.py
IDLE_TIMEOUT = 120.0  # seconds without a byte from S3, as boto3's read_timeout in store/boto.py
SWEEP_EVERY = 1.0  # seconds between two looks at the requests in flight
RESOLVE_EVERY = 60.0  # seconds between two resolutions of the endpoint's name


class Response:
    """One answer: status, headers (latin-1 decoded, as http.client decodes them), body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        lower = name.lower()
        return next((v for n, v in self.headers if n.lower() == lower), None)


class _Connection(asyncio.Protocol):
    """One keep-alive connection: at most one request at a time."""

    def __init__(self, pool: Pool, address: Any) -> None:
        self.pool = pool
        self.address = address
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[Response] | None = None
        self.parser: Any = None
        self.head = False
        self.heard = 0.0
        self.answered = False  # a byte of the current answer came
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.keep_alive = True
        self.closed = False
        self.counted = False  # holds one of the pool's places

    # -- the request --

    def send(self, data: bytes, head: bool, waiter: asyncio.Future[Response]) -> None:
        self.waiter, self.head, self.answered = waiter, head, False
        self.headers, self.body = [], []
        self.parser = httptools.HttpResponseParser(self)
        self.heard = time.monotonic()
        assert self.transport is not None
        self.transport.write(data)

    def fail(self, error: BaseException) -> None:
        """End the request in flight with ERROR and close the connection."""
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # -- asyncio.Protocol --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:  # bytes nobody asked for: this connection cannot be trusted
            self.closed = True
            self.pool.forget(self)
            if self.transport is not None:
                self.transport.abort()
            return
        self.answered = True
        self.heard = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self.pool.forget(self)
            self.fail(NetworkError(f"malformed answer from {self.pool.origin}: {error}"))

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        if self.waiter is None:
            return
        when = "during its answer" if self.answered else "before answering"
        how = f"reset the connection ({exc})" if exc else "closed the connection"
        self.fail(NetworkError(f"{self.pool.origin} {how} {when}"))

    # -- httptools' callbacks --

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()
        if self.head:  # an answer to HEAD has no body, whatever Content-Length says
            self._done()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if not self.head:
            self._done()

    def _done(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is None:
            return
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self.headers]
        body = b"".join(self.body)
        self.headers, self.body = [], []
        if not waiter.done():
            waiter.set_result(Response(self.status, headers, body))
        if self.keep_alive and not self.closed:
            self.pool.release(self)
        else:
            self.closed = True
            self.pool.forget(self)
            if self.transport is not None:
                self.transport.close()


class Pool:
    """Keep-alive connections to one endpoint, opened on demand up to `size`, on one loop.

    The pool belongs to the event loop of its first request; a request from another loop (a new
    `asyncio.run`) starts a new pool, and the sweep task closes its connections when its loop
    ends.
    """

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int,
        size: int,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.scheme, self.host, self.port = scheme, host, port
        self.origin = f"{scheme}://{host}:{port}"
        self.size = max(1, size)
        self.ssl = ssl_context
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self.addresses: list[Any] = []
        self.resolved_at = -RESOLVE_EVERY
        self._next_address = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: list[_Connection] = []
        self._busy: set[_Connection] = set()
        self._count = 0  # open or opening
        self._waiting: deque[asyncio.Future[_Connection | None]] = deque()
        self._sweeper: asyncio.Task[None] | None = None
        self._resolving: asyncio.Future[Any] | None = None

    # -- one request --

    async def request(self, data: bytes, head: bool = False) -> Response:
        """Send DATA (a whole request without body) and await its answer."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._bind(loop)
        connection = None
        while self._idle:
            candidate = self._idle.pop()
            if not candidate.closed:
                connection = candidate
                break
        if connection is None:
            connection = await self._connection(loop)
        waiter: asyncio.Future[Response] = loop.create_future()
        self._busy.add(connection)
        connection.send(data, head, waiter)
        return await waiter

    def release(self, connection: _Connection) -> None:
        self._busy.discard(connection)
        if self.addresses and connection.address not in self.addresses:
            connection.closed = True  # its address left the name's answer: a fresh one next
            self.forget(connection)
            if connection.transport is not None:
                connection.transport.close()
            return
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self._idle.append(connection)

    def forget(self, connection: _Connection) -> None:
        """A closed connection: out of the pool, and room for another."""
        if connection in self._busy:
            self._busy.discard(connection)
        elif connection in self._idle:
            self._idle.remove(connection)
        if connection.counted:
            connection.counted = False
            self._count -= 1
            while self._waiting:  # someone waiting for a connection opens its own now
                waiter = self._waiting.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    break

    async def _connection(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        while self._count >= self.size:
            waiter: asyncio.Future[_Connection | None] = loop.create_future()
            self._waiting.append(waiter)
            try:
                handed = await waiter
            except asyncio.CancelledError:
                handed = waiter.result() if waiter.done() and not waiter.cancelled() else None
                if handed is not None:
                    self.release(handed)  # handed over as we were cancelled
                raise
            if handed is not None and not handed.closed:
                return handed
        return await self._open(loop)

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        self._count += 1
        if not self.addresses:
            try:
                await self._resolve(loop)
            except BaseException:
                self._count -= 1
                raise
        address = self.addresses[self._next_address % len(self.addresses)]
        self._next_address += 1
        family, _, proto, _, sockaddr = address
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(self, address),
                    sockaddr[0],
                    sockaddr[1],
                    family=family,
                    proto=proto,
                    ssl=self.ssl,
                    server_hostname=self.host if self.ssl is not None else None,
                ),
                self.connect_timeout,
            )
        except BaseException as error:
            self._count -= 1
            raise _connect_error(error, self.origin) from None
        connection.counted = True
        if connection.closed:  # closed before we saw it
            self.forget(connection)
            raise NetworkError(f"{self.origin} closed the connection as it opened")
        return connection

    async def _resolve(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            found = await loop.getaddrinfo(
                self.host, self.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except socket.gaierror as error:
            if error.errno == socket.EAI_AGAIN and self.addresses:
                return  # a resolver hiccup: keep the addresses we have
            if error.errno == socket.EAI_AGAIN:
                raise NetworkError(f"cannot resolve {self.host} for now ({error})") from None
            raise EndpointUnreachable(
                f"cannot resolve the host name of {self.origin} ({error.strerror}): check "
                "--endpoint-url, $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL or the region"
            ) from None
        self.resolved_at = time.monotonic()
        if found:
            self.addresses = list(dict.fromkeys(found))
            for connection in [c for c in self._idle if c.address not in self.addresses]:
                connection.closed = True  # its address left the answer: close it, not reuse it
                self.forget(connection)
                if connection.transport is not None:
                    connection.transport.close()

    # -- the pool's life on one loop --

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._idle, self._busy, self._count, self._waiting = [], set(), 0, deque()
        self._sweeper = loop.create_task(self._sweep())

    async def _sweep(self) -> None:
        """Every SWEEP_EVERY s: end the requests silent for idle_timeout s; re-resolve the name
        every RESOLVE_EVERY s. When the loop ends, close every connection."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                await asyncio.sleep(SWEEP_EVERY)
                now = time.monotonic()
                for connection in [c for c in self._busy if now - c.heard >= self.idle_timeout]:
                    self.forget(connection)
                    connection.fail(
                        NetworkError(f"no answer from {self.origin} for {self.idle_timeout:.0f} s")
                    )
                if now - self.resolved_at >= RESOLVE_EVERY and self._resolving is None:
                    self._resolving = loop.create_task(self._resolve(loop))
                    self._resolving.add_done_callback(self._resolved)
        finally:
            for connection in [*self._idle, *self._busy]:
                connection.closed = True
                if connection.transport is not None:
                    connection.transport.abort()
            self._idle, self._busy = [], set()

    def _resolved(self, task: asyncio.Future[Any]) -> None:
        self._resolving = None
        if not task.cancelled():
            task.exception()  # a failed re-resolution keeps the addresses we have


def _connect_error(error: BaseException, origin: str) -> BaseException:
    if isinstance(error, ssl.SSLCertVerificationError):
        return EndpointUnreachable(
            f"TLS with {origin} failed: its certificate is not trusted "
            f"({error.verify_message or error.reason}); set AWS_CA_BUNDLE to the CA that signed it"
        )
    if isinstance(error, ssl.SSLError) and not isinstance(
        error, (ssl.SSLEOFError, ssl.SSLZeroReturnError)
    ):
        hint = (
            ": it answers in plain HTTP, use http://"
            if "WRONG_VERSION_NUMBER" in str(error)
            else ""
        )
        return EndpointUnreachable(f"TLS with {origin} failed ({error.reason}){hint}")
    if isinstance(error, asyncio.TimeoutError):
        return NetworkError(f"cannot connect to {origin}: no answer in time")
    if isinstance(error, (OSError, EOFError)):
        return NetworkError(f"cannot connect to {origin}: {error}")
    return error
