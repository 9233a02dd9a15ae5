"""The hot path through awscrt's native S3 client: HEAD, GetObjectAcl and CopyObject per object.

botocore spends ~1.8 ms of CPU per request, so a Python process tops out near 250 requests/s
(docs/s3-notes.md, "Rates"). awscrt signs, pools connections and parses HTTP in C; this module
only turns boto3's parameters into headers and headers back into boto3's response shape, both
driven by botocore's service model. Everything else (listing, marker, bucket-level calls) stays
with boto3 in store/boto.py, and so does the decision where to send a request:
`open_object_store` learns the URL and signing region from a real boto3 HEAD, checks that the
native client gets the same answer, and otherwise hands back the boto3 store unchanged.
"""

from __future__ import annotations

import asyncio
import hashlib
import http
import os
import re
import threading
import time
import urllib.request
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, urlsplit

import botocore.handlers
import botocore.parsers
import botocore.serialize
from botocore.awsrequest import HeadersDict
from botocore.credentials import RefreshableCredentials
from botocore.utils import should_bypass_proxies

from gos3matic.errors import EnvironmentProblem, NetworkError, S3Error
from gos3matic.store.boto import (
    BOTO3_THREADS,
    Boto3Bucket,
    ThreadedObjectStore,
    add_object_lock_md5,
    parse_timestamp,
)
from gos3matic.store.flow import FlowControl
from gos3matic.store.protocols import Connection, ObjectStore, copy_owner_params
from gos3matic.store.retry import RequestLog, with_retries, with_retries_async

try:
    from awscrt import auth as crt_auth
    from awscrt import exceptions as crt_exceptions
    from awscrt import http as crt_http
    from awscrt import io as crt_io
    from awscrt import s3 as crt_s3
    from s3transfer.crt import BotocoreCRTCredentialsWrapper

    # Older awscrt cannot switch its own retries off: they would multiply retry.py's policy.
    HAVE_CRT = hasattr(getattr(crt_s3, "S3RetryMode", None), "NONE")
except ImportError:  # no wheel for this platform: boto3 does the work
    HAVE_CRT = False

# aws-c-s3 runs at most ceil(throughput_target_gbps / 0.4) DEFAULT requests at once, and its
# connection override can only lower that (s3_client.c; benchmarks/results/crt-inflight.txt): a
# target with room to spare, the override at our ceiling.
GBPS_PER_REQUEST = 0.4
THROUGHPUT_TARGET_GBPS = 1000.0
CONNECT_TIMEOUT_MS = 10_000  # as boto3's connect_timeout in store/boto.py
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()
IDLE_TIMEOUT = 120.0  # seconds without a byte from S3, as boto3's read_timeout in store/boto.py
_SIGV4 = re.compile(r"AWS4-HMAC-SHA256 Credential=[^/]*/\d{8}/(?P<region>[^/]+)/s3/aws4_request")
# CRT failures that mean the request got no answer: worth another attempt, like boto3's
# ConnectionError. Anything else from CRT is a bug or a setup problem and is raised as it is.
_TRANSPORT_PREFIXES = ("AWS_IO_", "AWS_ERROR_HTTP_", "AWS_ERROR_S3_", "AWS_ERROR_PRIORITY_QUEUE")
# Answers CRT names itself instead of handing back as S3ResponseError: read as boto3 reads them.
_NAMED_ANSWERS = {
    "AWS_ERROR_S3_SLOW_DOWN": ("SlowDown", 503),
    "AWS_ERROR_S3_INTERNAL_ERROR": ("InternalError", 500),
    "AWS_ERROR_S3_REQUEST_TIMEOUT": ("RequestTimeout", 400),
}


@dataclass(frozen=True)
class Route:
    """Where one bucket's objects live: the host, the path before the key, the signing region."""

    scheme: str
    host: str
    key_path: str  # '/bucket/' path-style, '/' virtual-hosted
    region: str | None  # None: the request goes unsigned, as boto3 sends it anonymously

    def path(self, key: str) -> str:
        return self.key_path + _quote_key(key)


def _quote_key(key: str) -> str:
    # botocore's percent_encode(key, safe='/~'): the same bytes boto3 puts in the URL.
    return quote(key, safe="/~")


class _HeadShape:
    """HeadObject's response headers -> boto3's response dict, by botocore's output shape."""

    def __init__(self, output_shape: Any) -> None:
        self.members: dict[str, tuple[str, str]] = {}
        for name, member in output_shape.members.items():
            where = member.serialization.get("location")
            if where == "header":
                self.members[member.serialization["name"].lower()] = (name, member.type_name)
            elif where == "headers":
                self.metadata_member, self.metadata_prefix = name, member.serialization["name"]

    def parse(self, headers: list[tuple[str, str]]) -> dict[str, Any]:
        parsed: dict[str, Any] = {}
        metadata: dict[str, str] = {}
        prefix, cut = self.metadata_prefix, len(self.metadata_prefix)
        for raw_name, value in headers:
            name = raw_name.lower()
            if name.startswith(prefix):
                _add(metadata, name[cut:], value)  # S3 stores the keys lowercased
                continue
            member = self.members.get(name)
            if member is None:
                continue
            member_name, type_name = member
            if member_name in parsed:  # a repeated header: urllib3 joins them
                parsed[member_name] = f"{parsed[member_name]}, {value}"
            elif type_name == "timestamp":
                if member_name == "Expires":
                    # botocore's handle_expires_header: the raw value always, a datetime if valid
                    parsed["ExpiresString"] = value
                    when = _timestamp_or_none(value)
                    if when is not None:
                        parsed["Expires"] = when
                else:
                    parsed[member_name] = parse_timestamp(value)
            elif type_name in ("long", "integer"):
                parsed[member_name] = int(value)
            elif type_name == "boolean":
                parsed[member_name] = value == "true"
            else:
                parsed[member_name] = value
        parsed[self.metadata_member] = metadata
        return parsed


def _add(into: dict[str, str], name: str, value: str) -> None:
    into[name] = f"{into[name]}, {value}" if name in into else value


def _timestamp_or_none(value: str) -> datetime | None:
    try:
        return parse_timestamp(value)
    except (TypeError, ValueError, OverflowError):
        return None


class _CopyHeaders:
    """CopyObject's boto3 parameters -> its headers, by botocore's own serializer and handlers."""

    def __init__(self, operation_model: Any) -> None:
        self.operation = operation_model
        self.members = frozenset(operation_model.input_shape.members)
        self.serializer = botocore.serialize.create_serializer("rest-xml", include_validation=False)

    def headers(self, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        unknown = set(params) - self.members
        if unknown:
            raise TypeError(f"not a CopyObject parameter: {', '.join(sorted(unknown))}")
        given = dict(params)
        # Sent as read: boto3 would parse and re-format it, and refuse one it cannot parse.
        raw_expires = given.pop("Expires") if isinstance(given.get("Expires"), str) else None
        # botocore's before-parameter-build handlers for CopyObject, in its order
        botocore.handlers.handle_copy_source_param(given)
        botocore.handlers.validate_ascii_metadata(given)
        botocore.handlers.sse_md5(given)
        botocore.handlers.copy_source_sse_md5(given)
        serialized = self.serializer.serialize_to_request(given, self.operation)
        add_object_lock_md5(SimpleNamespace(headers=serialized["headers"]))  # as boto.py's
        headers = [(name, str(value)) for name, value in serialized["headers"].items()]
        if raw_expires is not None:
            headers.append(("Expires", raw_expires))
        return headers


class _Exchange:
    """One request's answer, filled in by CRT's event-loop threads, settled on the engine's loop."""

    __slots__ = ("body", "error", "future", "headers", "inbox", "last_heard")

    def __init__(self, inbox: _Inbox) -> None:
        self.inbox = inbox
        self.future: asyncio.Future[None] = inbox.loop.create_future()
        self.headers: list[tuple[str, str]] = []
        self.body: list[bytes] = []
        self.error: BaseException | None = None
        self.last_heard = time.monotonic()

    def on_headers(self, status_code: int, headers: list[tuple[str, str]], **_: Any) -> None:
        self.headers, self.last_heard = headers, time.monotonic()

    def on_body(self, chunk: bytes, offset: int, **_: Any) -> None:
        self.body.append(bytes(chunk))
        self.last_heard = time.monotonic()

    def on_done(self, error: BaseException | None = None, **_: Any) -> None:
        self.error = error
        self.inbox.put(self.future)


class _Inbox:
    """Answers handed from CRT's threads to the engine's loop: one wake-up of the loop for all
    the answers that arrive before it runs, not one each (each wake-up is a system call)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._answered: list[asyncio.Future[None]] = []
        self._lock = threading.Lock()

    def put(self, future: asyncio.Future[None]) -> None:
        with self._lock:
            self._answered.append(future)
            if len(self._answered) > 1:
                return  # a wake-up is already on its way
        self.loop.call_soon_threadsafe(self._settle)

    def _settle(self) -> None:
        with self._lock:
            answered, self._answered = self._answered, []
        for future in answered:
            if not future.done():
                future.set_result(None)


class CrtObjectStore:
    """The `ObjectStore` of one bucket through awscrt's S3 client, in boto3's shapes.

    Each request is a callback into CRT's own event loop; the engine's asyncio loop awaits its
    answer, so one thread keeps hundreds of requests in flight.
    """

    def __init__(
        self,
        client: Any,
        route: Route,
        service_model: Any,
        expected_owner: str | None = None,
        log: RequestLog | None = None,
    ) -> None:
        self.client = client
        self.route = route
        self.flow = FlowControl()  # open_store hands it the run's own
        self.log = log
        self._answers: _Inbox | None = None
        self._head = _HeadShape(service_model.operation_model("HeadObject").output_shape)
        self._copy = _CopyHeaders(service_model.operation_model("CopyObject"))
        self._acl_shape = service_model.operation_model("GetObjectAcl").output_shape
        self._parser = botocore.parsers.create_parser("rest-xml")
        self._owner = [("x-amz-expected-bucket-owner", expected_owner)] if expected_owner else []
        self._copy_owner = copy_owner_params(expected_owner)  # as headers by _CopyHeaders

    # -- ObjectStore --

    async def head_object(self, key: str) -> Mapping[str, Any]:
        exchange = await with_retries_async(
            lambda: self.send("HEAD", "HeadObject", key),
            self.flow,
            what=("HeadObject", key),
            log=self.log,
        )
        return self._head.parse(exchange.headers)

    async def get_object_acl(self, key: str) -> Mapping[str, Any]:
        exchange = await with_retries_async(
            lambda: self.send("GET", "GetObjectAcl", key, query="?acl"),
            self.flow,
            what=("GetObjectAcl", key),
            log=self.log,
        )
        parsed: dict[str, Any] = self._parser.parse(
            {"status_code": 200, "headers": HeadersDict(), "body": b"".join(exchange.body)},
            self._acl_shape,
        )
        parsed.pop("ResponseMetadata", None)
        return parsed

    async def copy_object(self, params: Mapping[str, Any]) -> str | None:
        headers = self._copy.headers({**params, **self._copy_owner})
        exchange = await with_retries_async(
            lambda: self.send("PUT", "CopyObject", params["Key"], headers),
            self.flow,
            what=("CopyObject", params["Key"]),
            log=self.log,
        )
        return next((v for n, v in exchange.headers if n.lower() == "x-amz-version-id"), None)

    # -- one request --

    def _inbox(self) -> _Inbox:
        loop = asyncio.get_running_loop()
        if self._answers is None or self._answers.loop is not loop:
            self._answers = _Inbox(loop)
        return self._answers

    async def send(
        self,
        method: str,
        operation: str,
        key: str,
        headers: list[tuple[str, str]] | None = None,
        query: str = "",
    ) -> _Exchange:
        """One attempt, no retries (the caller's policy decides): the answer, or an S3Error or
        NetworkError."""
        request = crt_http.HttpRequest(
            method,
            self.route.path(key) + query,
            crt_http.HttpHeaders(
                [("host", self.route.host), ("content-length", "0"), *self._owner, *(headers or ())]
            ),
        )
        exchange = _Exchange(self._inbox())
        head = method == "HEAD"
        pending = self.client.make_request(
            type=crt_s3.S3RequestType.DEFAULT,
            request=request,
            operation_name=operation,
            # Each callback takes the GIL on an event-loop thread: only the ones we read.
            on_headers=exchange.on_headers if method != "GET" else None,  # PUT: the VersionId
            on_body=None if head else exchange.on_body,
            on_done=exchange.on_done,
        )
        await _answered(pending, exchange)
        error = exchange.error
        if isinstance(error, crt_s3.S3ResponseError):
            raise _s3_error(error.status_code, error.body, operation)
        if isinstance(error, crt_exceptions.AwsCrtError):
            if error.name in _NAMED_ANSWERS:
                code, status = _NAMED_ANSWERS[error.name]
                raise S3Error.of(code, error.message, status, operation)
            if error.name.startswith(_TRANSPORT_PREFIXES):
                raise NetworkError(f"{error.name}: {error.message}")
            if error.name.startswith("AWS_AUTH_"):
                raise EnvironmentProblem(f"cannot sign the request: {error.message}")
        if error is not None:
            raise error
        body = b"".join(exchange.body)
        if method == "PUT" and b"<Error>" in body:
            # A copy can fail after its 200 went out; botocore reads that as a 500, and so do we.
            raise _s3_error(500, body, operation)
        return exchange

    def send_blocking(self, method: str, operation: str, key: str) -> _Exchange:
        """One attempt from outside the engine's loop: the probe at start-up."""
        return asyncio.run(self.send(method, operation, key))


async def _answered(pending: Any, exchange: _Exchange) -> None:
    """Until CRT finishes the request; cancelled after IDLE_TIMEOUT s of silence, like boto3."""
    loop = exchange.inbox.loop
    timed_out = False
    handle: asyncio.TimerHandle

    def watch() -> None:
        nonlocal handle, timed_out
        if exchange.future.done():
            return
        if time.monotonic() - exchange.last_heard >= IDLE_TIMEOUT:
            timed_out = True
            pending.cancel()  # CRT then ends it with AWS_ERROR_S3_CANCELED
        else:
            handle = loop.call_later(IDLE_TIMEOUT, watch)

    handle = loop.call_later(IDLE_TIMEOUT, watch)
    try:
        await exchange.future
    finally:
        handle.cancel()
    if timed_out:
        raise NetworkError(f"no answer from S3 for {IDLE_TIMEOUT:.0f} s")


def _s3_error(status: int, body: bytes | None, operation: str) -> S3Error:
    """An S3 error answer as boto3 and s3.to_s3_error would read it."""
    code, message = "", ""
    if body:
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError:
            root = None
        if root is not None:
            for element in root.iter():
                tag = element.tag.rpartition("}")[2]
                if tag == "Code" and not code:
                    code = element.text or ""
                elif tag == "Message" and not message:
                    message = element.text or ""
    if not code:  # HEAD answers carry no body, only a status
        message = message or _phrase(status)
    return S3Error.of(code, message, status, operation)


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


# -- construction: learn the route from boto3, check it, or fall back --


def open_object_store(
    bucket: Boto3Bucket,
    connection: Connection,
    probe_key: str,
    max_connections: int,
    flow: FlowControl | None = None,
) -> ObjectStore:
    """The native store when it reaches the bucket exactly as boto3 does; otherwise boto3's,
    its requests in a pool of threads. Either way every attempt goes through `flow`."""
    flow = flow or FlowControl(max_connections)
    fallback = ThreadedObjectStore(bucket, flow, threads=min(max_connections, BOTO3_THREADS))
    if not HAVE_CRT or os.environ.get("GOS3MATIC_NO_CRT"):
        return fallback
    try:
        native = _native_store(bucket, connection, probe_key, max_connections)
    except (S3Error, NetworkError, EnvironmentProblem, crt_exceptions.AwsCrtError, ValueError):
        return fallback
    if native is None:
        return fallback
    native.flow = flow
    return native


def _native_store(
    bucket: Boto3Bucket, connection: Connection, probe_key: str, max_connections: int
) -> CrtObjectStore | None:
    client = bucket.client
    if client.meta.config.proxies or _uses_proxy(client.meta.endpoint_url):
        return None  # CRT's S3 client takes no proxy settings
    boto3_status, sent = _probe_with_boto3(bucket, probe_key)
    if sent is None:
        return None
    route = _route(sent, probe_key)
    if route is None:
        return None
    credentials = client._get_credentials()  # as boto3.crt does: botocore has no public accessor
    native = _crt_client(route, credentials, max_connections)
    store = CrtObjectStore(
        native, route, client.meta.service_model, connection.expected_bucket_owner, bucket.log
    )
    try:
        # Under the policy, as boto3's probe: one dropped reply must not cost the native client.
        with_retries(
            lambda: store.send_blocking("HEAD", "HeadObject", probe_key),
            what=("HeadObject", probe_key),
            log=bucket.log,
        )
        crt_status = 200
    except S3Error as error:
        crt_status = error.status
    return store if crt_status == boto3_status else None


def _uses_proxy(endpoint_url: str) -> bool:
    scheme = urlsplit(endpoint_url).scheme
    return bool(urllib.request.getproxies().get(scheme)) and not should_bypass_proxies(endpoint_url)


def _probe_with_boto3(bucket: Boto3Bucket, key: str) -> tuple[int, Any]:
    """HEAD the key through boto3 and keep the last request it sent (after any region redirect)."""
    sent: list[Any] = []

    def keep(request: Any, **_: Any) -> None:
        sent.append(request)

    events = bucket.client.meta.events
    events.register("before-send.s3.HeadObject", keep)
    try:
        bucket.head_object(key)
        status = 200
    except S3Error as error:
        status = error.status
    finally:
        events.unregister("before-send.s3.HeadObject", keep)
    return status, (sent[-1] if sent else None)


def _route(sent: Any, key: str) -> Route | None:
    url = urlsplit(sent.url)
    quoted = _quote_key(key)
    if url.query or not url.path.endswith(quoted) or url.scheme not in ("http", "https"):
        return None
    authorization = sent.headers.get("Authorization")
    if authorization is None:
        region = None
    else:
        if isinstance(authorization, bytes):
            authorization = authorization.decode("ascii", "replace")
        signed = _SIGV4.match(authorization)
        if signed is None or "x-amz-s3session-token" in sent.headers:
            return None  # SigV4a, S3 Express or anything else CRT is not given to sign here
        region = signed["region"]
    return Route(url.scheme, url.netloc, url.path[: len(url.path) - len(quoted)], region)


def _credential_provider(credentials: Any) -> Any:
    if isinstance(credentials, RefreshableCredentials):  # roles, SSO: ask boto3 at each signing
        return BotocoreCRTCredentialsWrapper(credentials).to_crt_credentials_provider()
    # Keys that cannot change: no call into Python (and the GIL) for every request.
    frozen = credentials.get_frozen_credentials()
    return crt_auth.AwsCredentialsProvider.new_static(
        frozen.access_key, frozen.secret_key, frozen.token
    )


def _crt_client(route: Route, credentials: Any, max_connections: int) -> Any:
    signing = None
    if route.region is not None:
        if credentials is None:
            raise EnvironmentProblem("no credentials")
        signing = crt_auth.AwsSigningConfig(
            algorithm=crt_auth.AwsSigningAlgorithm.V4,
            signature_type=crt_auth.AwsSignatureType.HTTP_REQUEST_HEADERS,
            credentials_provider=_credential_provider(credentials),
            region=route.region,
            service="s3",
            use_double_uri_encode=False,
            should_normalize_uri_path=False,
            # Every request here has an empty body: sign its hash, as boto3 does over http.
            signed_body_value=EMPTY_BODY_SHA256,
            signed_body_header_type=crt_auth.AwsSignedBodyHeaderType.X_AMZ_CONTENT_SHA_256,
        )
    tls = None
    ca_bundle = os.environ.get("AWS_CA_BUNDLE")
    if route.scheme == "https" and ca_bundle:
        options = crt_io.TlsContextOptions()
        options.override_default_trust_store_from_path(ca_filepath=ca_bundle)
        tls = crt_io.ClientTlsContext(options).new_connection_options()
    return crt_s3.S3Client(
        region=route.region or "us-east-1",
        signing_config=signing,
        tls_mode=(
            crt_s3.S3RequestTlsMode.ENABLED
            if route.scheme == "https"
            else crt_s3.S3RequestTlsMode.DISABLED
        ),
        tls_connection_options=tls,
        max_active_connections_override=max_connections,
        # How many requests of type DEFAULT CRT runs at once follows from this target; the
        # connection override can only lower it (benchmarks/results/crt-inflight.txt).
        throughput_target_gbps=max(THROUGHPUT_TARGET_GBPS, max_connections * GBPS_PER_REQUEST),
        # retry.py alone decides retries, as for boto3 (store/boto.py)
        retry_config=crt_s3.S3RetryConfig(retry_mode=crt_s3.S3RetryMode.NONE),
        connect_timeout_ms=CONNECT_TIMEOUT_MS,
    )
