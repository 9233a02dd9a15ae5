"""The hot path: HeadObject, GetObjectAcl and CopyObject from the engine's own event loop.

Each request is signed here (store/sign.py), written to a keep-alive connection of store/http.py
and awaited; its headers are built and its answer read by tables from botocore's service model
(store/model.py), so the engine sees boto3's parameters and boto3's answers whichever client
sent the request. Each attempt passes through the run's flow control and the one retry policy
(store/retry.py).

Where to send is boto3's decision, not ours: `open_object_store` learns the URL, the addressing
style and the signing region from a real boto3 HEAD at start (after any region redirect), checks
that this store gets the same answer, and otherwise hands back boto3's own store. So does a proxy
setting that applies to the endpoint: this transport speaks to S3 directly (docs/s3-notes.md).
"""

from __future__ import annotations

import http
import os
import re
import ssl
import urllib.request
import xml.etree.ElementTree as ElementTree
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import botocore.parsers
from botocore.awsrequest import HeadersDict
from botocore.utils import should_bypass_proxies

from gos3matic import __version__
from gos3matic.errors import EnvironmentProblem, NetworkError, S3Error
from gos3matic.store.boto import BOTO3_THREADS, Boto3Bucket, ThreadedObjectStore
from gos3matic.store.flow import FlowControl
from gos3matic.store.http import Pool, Response
from gos3matic.store.model import CopySerializer, HeadParser
from gos3matic.store.protocols import Connection, Listed, ObjectStore, copy_owner_params
from gos3matic.store.retry import RequestLog, with_retries, with_retries_async
from gos3matic.store.sign import EMPTY_SHA256, Keys, Signer

USER_AGENT = f"gos3matic/{__version__}"
_SIGV4 = re.compile(r"AWS4-HMAC-SHA256 Credential=[^/]*/\d{8}/(?P<region>[^/]+)/s3/aws4_request")


@dataclass(frozen=True)
class Route:
    """Where one bucket's objects live: the host, the path before the key, the signing region."""

    scheme: str
    host: str  # as the Host header carries it: name[:port]
    key_path: str  # '/bucket/' path-style, '/' virtual-hosted
    region: str | None  # None: the request goes unsigned, as boto3 sends it anonymously

    def path(self, key: str) -> str:
        return self.key_path + quote_key(key)

    @property
    def port(self) -> int:
        return urlsplit(f"{self.scheme}://{self.host}").port or (
            443 if self.scheme == "https" else 80
        )

    @property
    def hostname(self) -> str:
        return urlsplit(f"{self.scheme}://{self.host}").hostname or self.host


def quote_key(key: str) -> str:
    # botocore's percent_encode(key, safe='/~'): the same bytes boto3 puts in the URL.
    return quote(key, safe="/~")


def tls_context() -> ssl.SSLContext:
    """The system's trust store, or only the CA bundle AWS_CA_BUNDLE names, as boto3 reads it."""
    return ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE") or None)


class NativeObjectStore:
    """The `ObjectStore` of one bucket over store/http.py, in boto3's shapes."""

    def __init__(
        self,
        route: Route,
        service_model: Any,
        credentials: Any,
        max_connections: int,
        expected_owner: str | None = None,
        flow: FlowControl | None = None,
        ssl_context: ssl.SSLContext | None = None,
        log: RequestLog | None = None,
    ) -> None:
        self.route = route
        self.log = log  # the run's request log (-v, --log): each attempt told there
        self.flow = flow or FlowControl(max_connections)
        if route.scheme == "https" and ssl_context is None:
            ssl_context = tls_context()
        self.pool = Pool(
            route.scheme,
            route.hostname,
            route.port,
            max_connections,
            ssl_context if route.scheme == "https" else None,
        )
        self.signer: Signer | None = None
        self.keys: Keys | None = None
        if route.region is not None:
            if credentials is None:
                raise EnvironmentProblem("no credentials to sign with")
            self.keys = Keys(credentials)
            self.signer = Signer(self.keys, route.region)
        self._head = HeadParser(service_model.operation_model("HeadObject").output_shape)
        self._copy = CopySerializer(service_model.operation_model("CopyObject"))
        self._acl_shape = service_model.operation_model("GetObjectAcl").output_shape
        self._xml = botocore.parsers.create_parser("rest-xml")
        self._owner = [("x-amz-expected-bucket-owner", expected_owner)] if expected_owner else []
        self._copy_owner = copy_owner_params(expected_owner)  # as headers by CopySerializer

    # -- ObjectStore --

    async def head_object(self, key: str) -> Mapping[str, Any]:
        path = self.route.path(key)
        answer = await with_retries_async(
            lambda: self.send("HEAD", "HeadObject", path),
            self.flow,
            what=("HeadObject", key),
            log=self.log,
        )
        return self._head.parse(answer.headers)

    async def get_object_acl(self, key: str) -> Mapping[str, Any]:
        path = self.route.path(key)
        answer = await with_retries_async(
            lambda: self.send("GET", "GetObjectAcl", path, "acl"),
            self.flow,
            what=("GetObjectAcl", key),
            log=self.log,
        )
        parsed: dict[str, Any] = self._xml.parse(
            {"status_code": 200, "headers": HeadersDict(), "body": answer.body}, self._acl_shape
        )
        parsed.pop("ResponseMetadata", None)
        return parsed

    async def copy_object(self, params: Mapping[str, Any]) -> str | None:
        headers = self._copy.headers({**params, **self._copy_owner})
        path = self.route.path(params["Key"])
        answer = await with_retries_async(
            lambda: self.send("PUT", "CopyObject", path, "", headers, owner=False),
            self.flow,
            what=("CopyObject", params["Key"]),
            log=self.log,
        )
        return answer.header("x-amz-version-id")

    def list_pages(self, prefix: str) -> AsyncIterator[list[Listed]]:
        """The objects under PREFIX, a page at a time, the next page requested ahead."""
        from gos3matic.store.listing import NativeListing

        return NativeListing(self).objects(prefix)

    # -- one attempt --

    async def send(
        self,
        method: str,
        operation: str,
        path: str,
        query: str = "",
        headers: list[tuple[str, str]] | None = None,
        owner: bool = True,
    ) -> Response:
        """One attempt, no retries (the caller's policy decides): the answer, or an S3Error or
        NetworkError (EndpointUnreachable when no retry can help)."""
        request = self.encode(method, path, query, headers or [], owner)
        answer = await self.pool.request(request, method == "HEAD")
        if answer.status >= 300:
            raise s3_error(answer.status, answer.body, operation)
        if method == "PUT" and b"<Error>" in answer.body:
            # A copy can fail after its 200 went out; botocore reads that as a 500, and so do we.
            raise s3_error(500, answer.body, operation)
        return answer

    def encode(
        self,
        method: str,
        path: str,
        query: str,
        headers: list[tuple[str, str]],
        owner: bool = True,
    ) -> bytes:
        """The request's bytes: request line, headers, signature; no body."""
        sent = [("host", self.route.host), *(self._owner if owner else ()), *headers]
        if self.signer is not None and self.keys is not None:
            stamp = self.signer.timestamp()
            keys = self.keys.current()
            sent.append(("x-amz-date", stamp))
            sent.append(("x-amz-content-sha256", EMPTY_SHA256))
            if keys.token:
                sent.append(("x-amz-security-token", keys.token))
            sent.append(("authorization", self.signer.sign(method, path, query, sent, stamp, keys)))
        target = f"{path}?{query}" if query else path
        lines = [f"{method} {target} HTTP/1.1", f"user-agent: {USER_AGENT}"]
        if method != "HEAD" and method != "GET":
            lines.append("content-length: 0")
        lines.extend(f"{name}: {value}" for name, value in sent)
        lines.append("\r\n")
        return "\r\n".join(lines).encode()  # header values in UTF-8, as boto3 sends them


def s3_error(status: int, body: bytes | None, operation: str) -> S3Error:
    """An S3 error answer as boto3 and translate.to_s3_error would read it."""
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
    its requests in a pool of threads. Either way every attempt goes through `flow`.

    A TLS failure or a host name that does not resolve (EndpointUnreachable) is raised: boto3
    could not do better, and the run must end saying why."""
    flow = flow or FlowControl(max_connections)
    fallback = ThreadedObjectStore(bucket, flow, threads=min(max_connections, BOTO3_THREADS))
    if os.environ.get("GOS3MATIC_NO_NATIVE") or os.environ.get("GOS3MATIC_NO_CRT"):
        return fallback
    try:
        native = _native_store(bucket, connection, probe_key, max_connections, flow)
    except (S3Error, NetworkError, ValueError):
        return fallback
    return fallback if native is None else native


def _native_store(
    bucket: Boto3Bucket,
    connection: Connection,
    probe_key: str,
    max_connections: int,
    flow: FlowControl,
) -> NativeObjectStore | None:
    client = bucket.client
    if client.meta.config.proxies or uses_proxy(client.meta.endpoint_url):
        return None  # this transport connects directly: boto3 goes through the proxy
    boto3_status, sent = _probe_with_boto3(bucket, probe_key)
    if sent is None:
        return None
    route = _route(sent, probe_key)
    if route is None:
        return None
    credentials = client._get_credentials()  # botocore has no public accessor
    if route.region is not None and credentials is None:
        return None
    store = NativeObjectStore(
        route,
        client.meta.service_model,
        credentials,
        max_connections,
        connection.expected_bucket_owner,
        flow=FlowControl(max_connections),  # the probe's requests are not the run's
        log=bucket.log,
    )
    import asyncio

    path = route.path(probe_key)
    try:
        # Under the policy, as boto3's probe: one dropped reply must not cost the native path.
        with_retries(
            lambda: asyncio.run(store.send("HEAD", "HeadObject", path)),
            what=("HeadObject", probe_key),
            log=bucket.log,
        )
        native_status = 200
    except S3Error as error:
        native_status = error.status
    if native_status != boto3_status:
        return None
    store.flow = flow
    return store


def uses_proxy(endpoint_url: str) -> bool:
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
    quoted = quote_key(key)
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
            return None  # SigV4a, S3 Express or anything else not signed as plain SigV4
        region = signed["region"]
    return Route(url.scheme, url.netloc, url.path[: len(url.path) - len(quoted)], region)
