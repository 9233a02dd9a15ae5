"""A loopback HTTP proxy between the CLI and a local S3 server that injects S3's failures on cue.

The CLI gets ``--endpoint-url`` of the proxy; the proxy forwards each request to the real server
with its headers unchanged (Host included: the client signed for the proxy's address, and neither
moto nor SeaweedFS checks signatures). Rules say which requests to hit and how:

    503 SlowDown / 500 InternalError / 403 AccessDenied, each with S3's XML error body;
    a reply dropped after the server acted (forward, then close the socket without answering);
    a request dropped before it reached the server; added latency; a callback before forwarding.

Which requests a rule hits is decided by a random.Random seeded from (seed, operation, key, part
number, how many times that request was seen): the same seed makes the same decisions for the
same attempts, whatever order the client's threads send them in and whatever the bucket is
called. Every injection is counted, so that a test can prove its faults really happened.

Used by the tests (tests/e2e/test_faults.py and others) and by benchmarks/soak.py; not installed.
"""

from __future__ import annotations

import enum
import http.client
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

HOST = "127.0.0.1"
# Not forwarded: they describe one connection, not the request; the proxy sets its own lengths.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "expect",  # http.server already answered the 100-continue
        "content-length",
    }
)


class Fault(enum.Enum):
    SLOW_DOWN = "503 SlowDown"
    INTERNAL_ERROR = "500 InternalError"
    ACCESS_DENIED = "403 AccessDenied"
    DROP_REPLY = "reply dropped after the server acted"
    DROP_REQUEST = "connection closed before the request reached the server"
    DELAY = "latency added"
    CALL = "callback before forwarding"


# The faults that take the place of the server's answer: at most one per request.
ANSWERS = frozenset(
    {
        Fault.SLOW_DOWN,
        Fault.INTERNAL_ERROR,
        Fault.ACCESS_DENIED,
        Fault.DROP_REPLY,
        Fault.DROP_REQUEST,
    }
)
_ERRORS = {
    Fault.SLOW_DOWN: (503, "Slow Down", "SlowDown", "Please reduce your request rate."),
    Fault.INTERNAL_ERROR: (
        500,
        "Internal Server Error",
        "InternalError",
        "We encountered an internal error. Please try again.",
    ),
    Fault.ACCESS_DENIED: (403, "Forbidden", "AccessDenied", "Access Denied"),
}


@dataclass(frozen=True)
class Request:
    """One request as the proxy saw it (path-style addressing, as the CLI uses locally)."""

    operation: str  # the S3 operation, e.g. CopyObject, UploadPartCopy, ListObjectsV2
    method: str
    bucket: str
    key: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lowercased


@dataclass(frozen=True)
class Rule:
    """Hit the requests it matches with `fault`, each with probability `rate`.

    The rules that answer (every fault but DELAY and CALL) share one draw per request: they
    partition [0, 1), so the rates of the ones a request matches add up, and at most one fires.
    DELAY and CALL rules draw for themselves and let the request go on.
    """

    fault: Fault
    rate: float = 1.0
    operations: frozenset[str] | None = None  # None: every operation
    key: str | None = None  # None: every key
    when: Callable[[Request], bool] | None = None  # any other condition on the request
    limit: int | None = None  # at most this many injections
    delay: float = 0.0  # seconds, for DELAY
    action: Callable[[Request], None] | None = None  # for CALL
    code: str | None = None  # another error code in the XML body, e.g. SignatureDoesNotMatch
    details: str = ""  # more XML elements in the body, e.g. <AWSAccessKeyId>...</AWSAccessKeyId>

    def matches(self, request: Request) -> bool:
        return (
            (self.operations is None or request.operation in self.operations)
            and (self.key is None or request.key == self.key)
            and (self.when is None or self.when(request))
        )


def only(*operations: str) -> frozenset[str]:
    return frozenset(operations)


def operation_of(
    method: str, key: str, query: dict[str, list[str]], headers: dict[str, str]
) -> str:
    """The S3 operation of a path-style request, from its method, query and headers."""
    copy = "x-amz-copy-source" in headers
    if not key:
        if method == "HEAD":
            return "HeadBucket"
        if method == "GET" and "ownershipControls" in query:
            return "GetBucketOwnershipControls"
        if method == "GET" and "uploads" in query:
            return "ListMultipartUploads"
        if method == "GET" and "versions" in query:
            return "ListObjectVersions"
        if method == "GET":
            return "ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"
        return f"{method} bucket"
    if method == "HEAD":
        return "HeadObject"
    if method == "GET":
        for sub, name in (("acl", "GetObjectAcl"), ("tagging", "GetObjectTagging")):
            if sub in query:
                return name
        return "GetObject"
    if method == "PUT":
        if "partNumber" in query:
            return "UploadPartCopy" if copy else "UploadPart"
        if "tagging" in query:
            return "PutObjectTagging"
        if "acl" in query:
            return "PutObjectAcl"
        return "CopyObject" if copy else "PutObject"
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
    return f"{method} object"


def error_body(code: str, message: str, resource: str, request_id: str, details: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>{details}"
        f"<Resource>{escape(resource)}</Resource><RequestId>{request_id}</RequestId></Error>"
    ).encode()


class FaultProxy:
    """`with FaultProxy(upstream, rules, seed).running() as proxy:` then use `proxy.url`."""

    def __init__(
        self,
        upstream: str,
        rules: list[Rule] | tuple[Rule, ...] = (),
        seed: int = 0,
        record: bool = False,
    ) -> None:
        target = urlsplit(upstream)
        if target.scheme != "http" or target.hostname not in (HOST, "localhost"):
            raise ValueError(f"the fault proxy forwards to loopback http:// only, not {upstream}")
        self.upstream = (target.hostname, target.port or 80)
        self.rules = list(rules)
        self.seed = seed
        self.record = record
        self.lock = threading.Lock()
        self.seen: Counter[str] = Counter()  # requests by operation
        self.injected: Counter[tuple[Fault, str]] = Counter()  # (fault, operation)
        self.answered: Counter[tuple[str, int]] = Counter()  # the server's (operation, status)
        self.requests: list[Request] = []  # every request, when record=True
        self._attempts: Counter[tuple[str, str, str]] = Counter()
        self._fired: Counter[int] = Counter()  # injections per rule index
        self._ids = 0
        self.server = _Server((HOST, 0), self._handler())
        self.url = f"http://{HOST}:{self.server.server_address[1]}"

    # -- what happened --

    def count(self, fault: Fault | None = None, operation: str | None = None) -> int:
        """Injections so far, of one fault and/or on one operation."""
        with self.lock:
            return sum(
                n
                for (f, op), n in self.injected.items()
                if (fault is None or f is fault) and (operation is None or op == operation)
            )

    def failures_injected(self) -> int:
        """Injections that took the place of an answer (errors and dropped connections)."""
        return sum(self.count(fault) for fault in ANSWERS)

    def total_seen(self) -> int:
        with self.lock:
            return sum(self.seen.values())

    # -- deciding --

    def decide(self, request: Request) -> tuple[Rule | None, list[Rule]]:
        """The rule that answers this request (or None), and the DELAY/CALL rules that fire."""
        part = request.query.get("partNumber", [""])[0]
        signature = (request.operation, request.key, part)
        with self.lock:
            self.seen[request.operation] += 1
            if self.record:
                self.requests.append(request)
            self._attempts[signature] += 1
            attempt = self._attempts[signature]
            draws = random.Random(f"{self.seed}|{'|'.join(signature)}|{attempt}")
            answer: Rule | None = None
            point, upto = draws.random(), 0.0
            side: list[Rule] = []
            for index, rule in enumerate(self.rules):
                if not rule.matches(request):
                    continue
                if rule.limit is not None and self._fired[index] >= rule.limit:
                    continue
                if rule.fault in ANSWERS:
                    upto += rule.rate
                    if answer is None and point < upto:
                        answer = rule
                        self._fired[index] += 1
                        self.injected[rule.fault, request.operation] += 1
                elif draws.random() < rule.rate:
                    side.append(rule)
                    self._fired[index] += 1
                    self.injected[rule.fault, request.operation] += 1
            self._ids += 1
        return answer, side

    def next_request_id(self) -> str:
        with self.lock:
            return f"FAULTPROXY{self._ids:010d}"

    # -- serving --

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as boto3 and the native store expect
            upstream: http.client.HTTPConnection | None = None

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def handle_request(self) -> None:
                body = self._read_body()
                split = urlsplit(self.path)
                query = parse_qs(split.query, keep_blank_values=True)
                bucket, _, key = unquote(split.path).lstrip("/").partition("/")
                headers = {name.lower(): value for name, value in self.headers.items()}
                request = Request(
                    operation_of(self.command, key, query, headers),
                    self.command,
                    bucket,
                    key,
                    query,
                    headers,
                )
                answer, side = proxy.decide(request)
                for rule in side:
                    if rule.fault is Fault.DELAY:
                        time.sleep(rule.delay)
                    elif rule.action is not None:
                        rule.action(request)
                fault = answer.fault if answer is not None else None
                if fault is Fault.DROP_REQUEST:
                    return self._hang_up()
                if answer is not None and fault in _ERRORS:
                    return self._answer_error(answer, split.path)
                status, reason, reply_headers, content = self._forward(body)
                with proxy.lock:
                    proxy.answered[request.operation, status] += 1
                if fault is Fault.DROP_REPLY:
                    return self._hang_up()
                self._answer(status, reason, reply_headers, content)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = handle_request

            def _read_body(self) -> bytes | None:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        chunk = self.rfile.read(size)
                        self.rfile.readline()
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass  # trailers
                            return b"".join(chunks)
                        chunks.append(chunk)
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else None

            def _forward(self, body: bytes | None) -> tuple[int, str, list[tuple[str, str]], bytes]:
                headers = {
                    name: value
                    for name, value in self.headers.items()
                    if name.lower() not in HOP_BY_HOP
                }
                if body is not None or self.command in ("PUT", "POST"):
                    headers["Content-Length"] = str(len(body or b""))
                for attempt in (1, 2):
                    fresh = self.upstream is None
                    if fresh:
                        self.upstream = http.client.HTTPConnection(*proxy.upstream, timeout=120)
                    connection = self.upstream
                    assert connection is not None
                    try:
                        connection.request(self.command, self.path, body=body, headers=headers)
                        response = connection.getresponse()
                        content = response.read()
                    except (ConnectionError, http.client.HTTPException, OSError):
                        connection.close()
                        self.upstream = None
                        if fresh or attempt == 2:
                            return self._bad_gateway()
                        continue  # the server closed a kept-alive connection: once more, anew
                    if response.will_close:
                        connection.close()
                        self.upstream = None
                    kept = [(n, v) for n, v in response.getheaders() if n.lower() not in HOP_BY_HOP]
                    if self.command == "HEAD":  # a HEAD's Content-Length is the object's size
                        kept += [
                            (n, v)
                            for n, v in response.getheaders()
                            if n.lower() == "content-length"
                        ]
                    return response.status, response.reason, kept, content
                raise AssertionError("unreachable")

            def _bad_gateway(self) -> tuple[int, str, list[tuple[str, str]], bytes]:
                body = error_body("BadGateway", "the fault proxy got no answer", self.path, "")
                return 502, "Bad Gateway", [("Content-Type", "application/xml")], body

            def _answer(
                self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes
            ) -> None:
                self.send_response_only(status, reason)
                for name, value in headers:
                    self.send_header(name, value)
                if not any(name.lower() == "content-length" for name, _ in headers):
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                self.wfile.flush()

            def _answer_error(self, rule: Rule, resource: str) -> None:
                status, reason, code, message = _ERRORS[rule.fault]
                request_id = proxy.next_request_id()
                body = b"" if self.command == "HEAD" else error_body(
                    rule.code or code, message, unquote(resource), request_id, rule.details
                )  # fmt: skip
                headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
                self._answer(status, reason, headers, body)

            def _hang_up(self) -> None:
                self.close_connection = True
                with suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

            def finish(self) -> None:
                if self.upstream is not None:
                    self.upstream.close()
                with suppress(OSError):  # the client hung up first
                    super().finish()

        return Handler

    @contextmanager
    def running(self) -> Iterator[FaultProxy]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # a client may open its whole pool at once; the default 5 drops SYNs

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up mid-request: nothing to report


@dataclass
class Transient:
    """Mixed transient faults at a total `rate`: half SlowDown, a quarter 500, a quarter dropped
    replies (after the server acted), on every operation unless `operations` says otherwise."""

    rate: float
    operations: frozenset[str] | None = None
    extra: list[Rule] = field(default_factory=list)

    def rules(self) -> list[Rule]:
        return [
            Rule(Fault.SLOW_DOWN, self.rate / 2, self.operations),
            Rule(Fault.INTERNAL_ERROR, self.rate / 4, self.operations),
            Rule(Fault.DROP_REPLY, self.rate / 4, self.operations),
            *self.extra,
        ]
