"""A tiny HTTP/1.1 server on 127.0.0.1 that answers with bytes a test chose, or misbehaves.

For what no real S3 server can be asked to do on cue: an answer with exactly these header bytes
(repeated headers, raw UTF-8, odd Expires), or a connection closed before answering, reset,
closed after each answer, or left without an answer. Every request it read is kept.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

# What to do with one request: bytes to send back, or one of these.
CLOSE = "close"  # close the connection without a byte of answer
RESET = "reset"  # reset it (RST) without a byte of answer
SILENT = "silent"  # never answer; keep the connection open

Behaviour = Callable[["Seen"], "bytes | str"]


@dataclass
class Seen:
    """One request as it came: request line, headers (lower-cased names), connection number."""

    line: str
    headers: dict[str, str]
    connection: int
    index_on_connection: int

    @property
    def method(self) -> str:
        return self.line.split(" ", 1)[0]

    @property
    def target(self) -> str:
        return self.line.split(" ")[1]


def answer(
    status: int = 200,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    reason: str = "OK",
    length: bool = True,
) -> bytes:
    """An HTTP/1.1 answer; header values are written as UTF-8 bytes."""
    lines = [f"HTTP/1.1 {status} {reason}".encode()]
    for name, value in headers or []:
        lines.append(f"{name}: {value}".encode())
    if length:
        lines.append(f"Content-Length: {len(body)}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@dataclass
class RawServer:
    behaviour: Behaviour
    tls: ssl.SSLContext | None = None
    seen: list[Seen] = field(default_factory=list, repr=False)
    connections: int = 0

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def serve(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                number = self.connections
            thread = threading.Thread(target=self._handle, args=(client, number), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _handle(self, client: socket.socket, number: int) -> None:
        conn: socket.socket = client
        try:
            if self.tls is not None:
                try:
                    conn = self.tls.wrap_socket(client, server_side=True)
                except (ssl.SSLError, OSError):
                    client.close()
                    return
            self._open.append(conn)
            conn.settimeout(30)
            buffer = b""
            index = 0
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                line, *header_lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for header in header_lines:
                    name, _, value = header.partition(":")
                    headers[name.strip().lower()] = value.strip()
                index += 1
                seen = Seen(line, headers, number, index)
                self.seen.append(seen)
                what = self.behaviour(seen)
                if what == CLOSE:
                    conn.close()
                    return
                if what == RESET:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    conn.close()
                    return
                if what == SILENT:
                    self._stop.wait(60)
                    return
                assert isinstance(what, bytes)
                conn.sendall(what)
                if b"\r\nconnection: close\r\n" in what.split(b"\r\n\r\n")[0].lower() + b"\r\n":
                    conn.close()
                    return
        except OSError:
            return
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for conn in self._open:
            with suppress(OSError):
                conn.close()
        for thread in self._threads:
            thread.join(timeout=2)


@contextmanager
def raw_server(behaviour: Behaviour, tls: ssl.SSLContext | None = None) -> Iterator[RawServer]:
    server = RawServer(behaviour, tls)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.close()
        thread.join(timeout=2)
