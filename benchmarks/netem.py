"""A loopback TCP forwarder that adds a round trip to every answer, and can throttle like S3.

    python benchmarks/netem.py --target 127.0.0.1:PORT --rtt-ms 200 [--throttle-rps 400]

Every byte from the server reaches the client `rtt` later, so each request/response exchange
takes one round trip more, as it would against a distant S3. New connections cost no round trip
here (real S3 charges one for TCP and more for TLS): a client that opens many is not penalised.

With a throttle, requests above a token bucket of R requests/s (burst B) are answered by the
forwarder itself, after the same round trip, with S3's `503 SlowDown`; the rest go to the server.
Both directions are framed as HTTP/1.1 (Content-Length, chunked, HEAD, 1xx), so answers keep
their order on a connection and the counters are exact: requests, throttled, in flight (sent by
a client, answer not yet delivered) and its peak, status classes from the server, and the CPU
time of the forwarder itself, so that a run can show the forwarder was not its bottleneck.

As a library, in this process (its own event-loop thread):

    with Netem(("127.0.0.1", port), rtt_ms=200) as netem:   # netem.endpoint_url, netem.stats()

or in a process of its own, the same interface (`NetemProcess`), so that it neither shares a GIL
with the code being measured nor counts that code's CPU as its own. Only ever 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
MAX_HEAD = 64 * 1024  # bytes of request line + headers; more is not an S3 client talking
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r\n]*chunked", re.IGNORECASE)
# Seconds a piece may be delivered early: asyncio wakes timers a little early, and a server that
# writes an answer in many small pieces (moto does) costs one timer and one send per piece unless
# the pieces that arrive within this window leave together.
EARLY = 0.001
SLOW_DOWN_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
    b"<RequestId>GOS3MATICNETEM</RequestId></Error>"
)


@dataclass
class Stats:
    """Counters since start; `peak_*` since start or since the last stats(reset_peaks=True)."""

    requests: int = 0  # requests received from clients
    forwarded: int = 0  # ... of which went to the server
    throttled: int = 0  # ... of which were answered 503 SlowDown by the forwarder
    in_flight: int = 0  # received, answer not yet delivered to the client
    peak_in_flight: int = 0
    in_flight_seconds: float = 0.0  # in_flight integrated over time: its mean is this / wall
    connections: int = 0  # accepted so far
    open_connections: int = 0
    peak_connections: int = 0
    statuses: dict[str, int] = field(default_factory=dict)  # from the server: "2xx": count, ...
    bytes_to_server: int = 0
    bytes_to_client: int = 0
    cpu_seconds: float = 0.0  # CPU time of the forwarder's thread (or process)
    wall_seconds: float = 0.0  # since start

    def since(self, before: Stats) -> Stats:
        """What happened between `before` and this snapshot (peaks as they are in this one)."""
        statuses = {
            name: count - before.statuses.get(name, 0) for name, count in self.statuses.items()
        }
        return Stats(
            requests=self.requests - before.requests,
            forwarded=self.forwarded - before.forwarded,
            throttled=self.throttled - before.throttled,
            in_flight=self.in_flight,
            peak_in_flight=self.peak_in_flight,
            in_flight_seconds=self.in_flight_seconds - before.in_flight_seconds,
            connections=self.connections - before.connections,
            open_connections=self.open_connections,
            peak_connections=self.peak_connections,
            statuses={name: count for name, count in statuses.items() if count},
            bytes_to_server=self.bytes_to_server - before.bytes_to_server,
            bytes_to_client=self.bytes_to_client - before.bytes_to_client,
            cpu_seconds=self.cpu_seconds - before.cpu_seconds,
            wall_seconds=self.wall_seconds - before.wall_seconds,
        )


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; one token per request let through."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens, self.last = burst, clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class _Framer:
    """Cuts one direction of an HTTP/1.1 connection into messages, calling back as it goes:
    on_head(head) -> how the body is delimited, on_data(piece) for the bytes after the head
    (chunk framing included), on_end() when a message is complete.

    The body is ("length", n), ("chunked", 0), ("close", 0): the rest of the connection, or
    ("none", 0).
    """

    def __init__(
        self,
        on_head: Callable[[bytes], tuple[str, int]],
        on_data: Callable[[bytes], None],
        on_end: Callable[[], None],
    ) -> None:
        self.on_head, self.on_data, self.on_end = on_head, on_data, on_end
        self.state = "head"
        self.buffer = bytearray()  # a head, or a chunk-size / trailer line, not yet complete
        self.remaining = 0

    def feed(self, data: bytes) -> None:
        at, size = 0, len(data)
        # Each pass consumes at least one byte, or finishes a message whose head it consumed.
        for _ in range(2 * size + 2):
            state = self.state
            if state == "end":
                self.state = "head"
                self.on_end()
                continue
            if at >= size:
                return
            if state == "head":
                if self.buffer:
                    self.buffer += data[at:]
                    data, at = bytes(self.buffer), 0
                    size = len(data)
                    self.buffer.clear()
                end = data.find(b"\r\n\r\n", at)
                if end < 0:
                    if size - at > MAX_HEAD:
                        raise ValueError("HTTP head too long")
                    self.buffer += data[at:]
                    return
                self._head(data[at : end + 4])
                at = end + 4
            elif state in ("length", "chunk-data", "chunk-crlf"):
                take = min(self.remaining, size - at)
                self.on_data(data[at : at + take])
                at += take
                self.remaining -= take
                if self.remaining == 0:
                    if state == "chunk-data":
                        self.state, self.remaining = "chunk-crlf", 2
                    else:
                        self.state = "end" if state == "length" else "chunk-size"
            elif state in ("chunk-size", "trailer"):
                end = data.find(b"\n", at)
                stop = size if end < 0 else end + 1
                self.buffer += data[at:stop]
                self.on_data(data[at:stop])
                at = stop
                if end < 0:
                    if len(self.buffer) > MAX_HEAD:
                        raise ValueError("chunk line too long")
                    return
                line = bytes(self.buffer).strip()
                self.buffer.clear()
                if state == "chunk-size":
                    self.remaining = int(line.split(b";", 1)[0], 16)
                    self.state = "chunk-data" if self.remaining else "trailer"
                elif not line:  # the empty line after the last chunk's trailers
                    self.state = "end"
            else:  # "close": everything until the connection ends
                self.on_data(data[at:])
                return

    def _head(self, head: bytes) -> None:
        kind, length = self.on_head(head)
        if kind == "length" and length > 0:
            self.state, self.remaining = "length", length
        elif kind in ("chunked", "close"):
            self.state = "chunk-size" if kind == "chunked" else "close"
        else:
            self.state = "end"


def _message_body(head: bytes) -> tuple[str, int]:
    """How the body after this head is delimited, by its own headers."""
    if _CHUNKED.search(head):
        return "chunked", 0
    length = _CONTENT_LENGTH.search(head)
    return ("length", int(length[1])) if length else ("none", 0)


class _Exchange:
    """One request on a connection: answered by the server, or by the forwarder (throttled)."""

    __slots__ = ("answer", "interim", "local", "method")

    def __init__(self, method: bytes, local: bool) -> None:
        self.method = method
        self.local = local  # throttled: the forwarder answers
        self.answer: bytes | None = None  # the forwarder's answer, once the request is complete
        self.interim = False  # the server's answer so far is a 1xx


class _ClientSide(asyncio.Protocol):
    """A client's connection to the forwarder; it opens its own connection to the server."""

    def __init__(self, netem: Netem) -> None:
        self.netem = netem
        self.loop = netem.loop
        self.transport: Any = None
        self.server: _ServerSide | None = None
        self.early: list[bytes] = []  # client bytes that came before the server connection
        self.requests = _Framer(self._request, self._request_data, self._request_end)
        self.exchanges: collections.deque[_Exchange] = collections.deque()
        self.delayed: collections.deque[tuple[float, bytes, int]] = collections.deque()
        self.timer: asyncio.TimerHandle | None = None
        self.closing = False

    # -- client -> server ------------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.netem._opened(self)
        self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        host, port = self.netem.target
        try:
            _, server = await self.loop.create_connection(lambda: _ServerSide(self), host, port)
        except OSError:
            self.transport.close()
            return
        self.server = server
        for data in self.early:
            server.transport.write(data)
        self.early.clear()

    def data_received(self, data: bytes) -> None:
        try:
            self.requests.feed(data)
        except ValueError:
            self.transport.close()

    def _request(self, head: bytes) -> tuple[str, int]:
        stats = self.netem.stats
        stats.requests += 1
        self.netem._in_flight(1)
        bucket = self.netem.bucket
        local = bucket is not None and not bucket.take()
        self.exchanges.append(_Exchange(head.split(b" ", 1)[0], local))
        if local:
            stats.throttled += 1
        else:
            stats.forwarded += 1
            self._to_server(head)
        return _message_body(head)

    def _request_data(self, piece: bytes) -> None:
        if not self.exchanges[-1].local:
            self._to_server(piece)

    def _request_end(self) -> None:
        exchange = self.exchanges[-1]
        if exchange.local:
            exchange.answer = _slow_down(exchange.method)
            self._answer_ready()

    def _to_server(self, data: bytes) -> None:
        self.netem.stats.bytes_to_server += len(data)
        if self.server is None:
            self.early.append(data)
        else:
            self.server.transport.write(data)

    def eof_received(self) -> bool:
        if self.server is not None and self.server.transport.can_write_eof():
            self.server.transport.write_eof()
        return True  # half-close: answers may still be on their way

    def connection_lost(self, exc: BaseException | None) -> None:
        unanswered = len(self.exchanges) + sum(done for _, _, done in self.delayed)
        self.netem._closed(self, unanswered)
        self.exchanges.clear()
        self.delayed.clear()
        if self.timer is not None:
            self.timer.cancel()
        if self.server is not None:
            self.server.transport.close()

    def pause_writing(self) -> None:  # the client reads slower than the server answers
        if self.server is not None:
            self.server.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.server is not None:
            self.server.transport.resume_reading()

    # -- server -> client, one round trip later --------------------------------------------------

    def answer_head(self, head: bytes) -> tuple[str, int]:
        """The head of the server's answer to the oldest request it has: pass it on."""
        exchange = self.exchanges[0]
        status = int(head[9:12])  # "HTTP/1.1 200 OK"
        exchange.interim = 100 <= status < 200
        if not exchange.interim:
            name = f"{status // 100}xx"
            self.netem.stats.statuses[name] = self.netem.stats.statuses.get(name, 0) + 1
        self._deliver(head, 0)
        if exchange.interim or exchange.method == b"HEAD" or status in (204, 304):
            return "none", 0
        kind, length = _message_body(head)
        return ("close", 0) if kind == "none" else (kind, length)

    def answer_data(self, piece: bytes) -> None:
        self._deliver(piece, 0)

    def answer_end(self) -> None:
        if self.exchanges[0].interim:
            return
        self.exchanges.popleft()
        self._deliver(b"", 1)
        self._answer_ready()

    def _answer_ready(self) -> None:
        """Deliver the forwarder's own answers that are next in line, after earlier answers."""
        for _ in range(len(self.exchanges)):
            if not self.exchanges or self.exchanges[0].answer is None:
                return
            self._deliver(self.exchanges.popleft().answer or b"", 1)

    def _deliver(self, data: bytes, completes: int) -> None:
        if self.netem.rtt <= 0 and not self.delayed:
            self._write(data, completes)
            return
        due = self.loop.time() + self.netem.rtt
        if self.delayed and (
            not data or (self.delayed[-1][0] >= due - EARLY and len(self.delayed[-1][1]) < 65536)
        ):
            # With the piece before it: an answer's end, or bytes that came right after
            last_due, last, done = self.delayed[-1]
            self.delayed[-1] = (last_due, last + data if data else last, done + completes)
            return
        self.delayed.append((due, data, completes))
        if self.timer is None:
            self.timer = self.loop.call_at(self.delayed[0][0], self._flush)

    def _flush(self) -> None:
        self.timer = None
        now = self.loop.time() + EARLY
        pieces, completes = [], 0
        while self.delayed and self.delayed[0][0] <= now:
            _, data, done = self.delayed.popleft()
            pieces.append(data)
            completes += done
        self._write(b"".join(pieces), completes)
        if self.delayed:
            self.timer = self.loop.call_at(self.delayed[0][0], self._flush)
        elif self.closing:
            self.transport.close()

    def _write(self, data: bytes, completes: int) -> None:
        if data and not self.transport.is_closing():
            self.transport.write(data)
            self.netem.stats.bytes_to_client += len(data)
        if completes:
            self.netem._in_flight(-completes)

    def server_closed(self) -> None:
        self.closing = True
        if not self.delayed:
            self.transport.close()


class _ServerSide(asyncio.Protocol):
    def __init__(self, client: _ClientSide) -> None:
        self.client = client
        self.transport: Any = None
        self.answers = _Framer(client.answer_head, client.answer_data, client.answer_end)

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.answers.feed(data)
        except (ValueError, IndexError):  # not HTTP as we know it, or an answer nobody asked for
            self.transport.close()

    def eof_received(self) -> bool:
        if self.answers.state == "close" and self.client.exchanges:
            self.client.answer_end()  # an answer delimited by the end of the connection
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self.client.server_closed()

    def pause_writing(self) -> None:
        self.client.transport.pause_reading()

    def resume_writing(self) -> None:
        self.client.transport.resume_reading()


def _slow_down(method: bytes) -> bytes:
    head = (
        "HTTP/1.1 503 Slow Down\r\n"
        "Content-Type: application/xml\r\n"
        f"Content-Length: {len(SLOW_DOWN_BODY)}\r\n"
        "x-amz-request-id: GOS3MATICNETEM\r\n"
        "Server: AmazonS3\r\n"
        "Connection: keep-alive\r\n\r\n"
    ).encode()
    return head if method == b"HEAD" else head + SLOW_DOWN_BODY


class Netem:
    """The forwarder on its own event-loop thread in this process."""

    def __init__(
        self,
        target: tuple[str, int] | str,
        rtt_ms: float = 0.0,
        throttle_rps: float | None = None,
        burst: float | None = None,
        port: int = 0,
    ) -> None:
        self.target = _loopback(target)
        self.rtt = rtt_ms / 1000.0
        self.throttle_rps = throttle_rps
        self.burst = burst if burst is not None else max(1.0, (throttle_rps or 0) / 10)
        self.requested_port = port
        self.port = 0
        self.stats = Stats()
        self.bucket: TokenBucket | None = None
        self.loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._started = 0.0
        self._sides: set[_ClientSide] = set()
        self._in_flight_since = 0.0

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def _serve(self) -> None:
        self._server = await self.loop.create_server(
            lambda: _ClientSide(self), HOST, self.requested_port, backlog=4096
        )
        self.port = self._server.sockets[0].getsockname()[1]
        if self.throttle_rps:
            self.bucket = TokenBucket(self.throttle_rps, self.burst, self.loop.time)
        self._started = time.monotonic()

    def start(self) -> Netem:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(self._serve())
            except BaseException as error:
                failure.append(error)
                ready.set()
                return
            ready.set()
            self.loop.run_forever()

        self._thread = threading.Thread(target=run, name="netem", daemon=True)
        self._thread.start()
        if not ready.wait(30) or failure:
            raise RuntimeError(f"netem did not start: {failure[0] if failure else 'timeout'}")
        return self

    def snapshot(self, reset_peaks: bool = False) -> Stats:
        """The counters, read on the loop's own thread (call from the loop thread: `_snapshot`)."""
        if self._thread is None or threading.current_thread() is self._thread:
            return self._snapshot(reset_peaks)
        future = asyncio.run_coroutine_threadsafe(self._async_snapshot(reset_peaks), self.loop)
        return future.result(timeout=30)

    async def _async_snapshot(self, reset_peaks: bool) -> Stats:
        return self._snapshot(reset_peaks)

    def _snapshot(self, reset_peaks: bool) -> Stats:
        self._in_flight(0)  # bring the integral up to now
        stats = Stats(**{**asdict(self.stats), "statuses": dict(self.stats.statuses)})
        stats.cpu_seconds = time.thread_time() if self._thread else time.process_time()
        stats.wall_seconds = time.monotonic() - self._started
        if reset_peaks:
            self.stats.peak_in_flight = self.stats.in_flight
            self.stats.peak_connections = self.stats.open_connections
        return stats

    def _opened(self, side: _ClientSide) -> None:
        self._sides.add(side)
        self.stats.connections += 1
        self.stats.open_connections += 1
        self.stats.peak_connections = max(self.stats.peak_connections, self.stats.open_connections)

    def _closed(self, side: _ClientSide, unanswered: int) -> None:
        self._sides.discard(side)
        self.stats.open_connections -= 1
        if unanswered:
            self._in_flight(-unanswered)

    def _in_flight(self, change: int) -> None:
        now = self.loop.time()
        stats = self.stats
        stats.in_flight_seconds += stats.in_flight * (now - self._in_flight_since)
        self._in_flight_since = now
        stats.in_flight += change
        stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)

    def stop(self) -> None:
        if self._thread is None:
            return

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for side in list(self._sides):
                side.transport.abort()
                if side.server is not None:
                    side.server.transport.abort()
            await asyncio.sleep(0)  # let the aborts run their connection_lost
            self.loop.stop()

        asyncio.run_coroutine_threadsafe(close(), self.loop)
        self._thread.join(30)
        self._thread = None
        self.loop.close()

    def __enter__(self) -> Netem:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


class NetemProcess:
    """The same forwarder in a process of its own (this file run with --control)."""

    def __init__(
        self,
        target: tuple[str, int] | str,
        rtt_ms: float = 0.0,
        throttle_rps: float | None = None,
        burst: float | None = None,
    ) -> None:
        host, port = _loopback(target)
        self.command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--target",
            f"{host}:{port}",
            "--rtt-ms",
            str(rtt_ms),
            "--control",
        ]
        if throttle_rps:
            self.command += ["--throttle-rps", str(throttle_rps)]
        if burst is not None:
            self.command += ["--burst", str(burst)]
        self.rtt_ms, self.throttle_rps = rtt_ms, throttle_rps
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> NetemProcess:
        self.proc = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        line = self._read_line()
        self.port = int(json.loads(line)["port"])
        return self

    def _read_line(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError(f"netem exited: {' '.join(self.command)}")
        return line

    def snapshot(self, reset_peaks: bool = False) -> Stats:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write("reset-peaks\n" if reset_peaks else "stats\n")
        self.proc.stdin.flush()
        return Stats(**json.loads(self._read_line()))

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.stdin is not None:
            proc.stdin.close()  # EOF: the forwarder exits
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> NetemProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def _loopback(target: tuple[str, int] | str) -> tuple[str, int]:
    if isinstance(target, str):
        host, _, port = target.rpartition(":")
        target = (host, int(port))
    if target[0] not in (HOST, "localhost"):
        raise ValueError(f"netem forwards to {HOST} only, not {target[0]}")
    return HOST, int(target[1])


def _control(netem: Netem) -> None:
    """--control: the port as a JSON line, then one JSON line of stats per line read on stdin."""
    print(json.dumps({"port": netem.port}), flush=True)
    for line in sys.stdin:  # until EOF: the parent is gone or done
        stats = netem.snapshot(reset_peaks=line.strip() == "reset-peaks")
        stats.cpu_seconds = time.process_time()  # the whole process: it does nothing else
        print(json.dumps(asdict(stats)), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True, help="127.0.0.1:PORT of the S3 server")
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="added to every answer")
    parser.add_argument("--throttle-rps", type=float, help="requests/s let through (token bucket)")
    parser.add_argument("--burst", type=float, help="token bucket size (default: rps / 10)")
    parser.add_argument("--port", type=int, default=0, help="to listen on (default: a free one)")
    parser.add_argument("--control", action="store_true", help="driven by NetemProcess")
    args = parser.parse_args()
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    if not args.control:  # blocked before the loop thread starts, so that it inherits the mask
        signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    netem = Netem(args.target, args.rtt_ms, args.throttle_rps, args.burst, args.port).start()
    try:
        if args.control:
            _control(netem)
            return 0
        throttle = f", {args.throttle_rps:g} requests/s" if args.throttle_rps else ""
        print(
            f"{netem.endpoint_url} -> {args.target}, +{args.rtt_ms:g} ms{throttle}; Ctrl+C stops",
            flush=True,
        )
        signal.sigwait(stop_signals)
        stats = netem.snapshot()
        stats.cpu_seconds = time.process_time()
        print(describe(stats), flush=True)
        return 0
    finally:
        netem.stop()


def describe(stats: Stats) -> str:
    share = stats.cpu_seconds / stats.wall_seconds if stats.wall_seconds else 0.0
    throttled = f" ({stats.throttled / stats.requests:.1%})" if stats.requests else ""
    return (
        f"{stats.requests} requests, {stats.throttled} throttled{throttled}, peak in flight "
        f"{stats.peak_in_flight}, {stats.connections} connections (peak {stats.peak_connections}); "
        f"forwarder CPU {stats.cpu_seconds:.2f} s in {stats.wall_seconds:.1f} s ({share:.0%} of "
        f"a core), {1e6 * stats.cpu_seconds / max(stats.requests, 1):.0f} us per request"
    )


if __name__ == "__main__":
    sys.exit(main())
