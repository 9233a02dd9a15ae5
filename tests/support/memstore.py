"""An S3 bucket in memory, behind the protocols of gos3matic/store/protocols.py.

It answers as S3 does where the engine relies on it (docs/s3-notes.md): a REPLACE copy keeps only
what the request sends again; CopySourceIfMatch guards a copy (412); a copy onto itself that
changes nothing is refused; an archived object cannot be copied; a copy in parts gets a new ETag
and only the tags it is sent. Each request goes through the retry policy, and each per-object
request through the run's flow control, as the real stores send them, so retries and throttles
are counted. Every attempt is logged; faults and concurrent writers can be injected per request.

`MemoryStore` is the bucket (the `Bucket` protocol) and holds the objects; its `objects` is the
hot path (`ObjectStore`) on the same objects. The two cannot be one class: both protocols name a
`head_object`, one plain, one awaitable.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import email.utils
import hashlib
import itertools
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple, TypeVar
from urllib.parse import parse_qsl

from gos3matic.core.metadata import ObjectRefused
from gos3matic.core.sizes import CopiedInParts, part_plan, tagging_header
from gos3matic.errors import NetworkError, NotFound, S3Error
from gos3matic.store.flow import FlowControl
from gos3matic.store.protocols import LargeCopier, Listed, Store
from gos3matic.store.retry import with_retries, with_retries_async

T = TypeVar("T")

# S3's own lists, written out here rather than taken from gos3matic: a property the product
# forgets to send again must be lost in the fake as it is in S3.
CONTENT_HEADERS = (
    "ContentType",
    "CacheControl",
    "ContentDisposition",
    "ContentEncoding",
    "ContentLanguage",
    "Expires",
    "WebsiteRedirectLocation",
)
ENCRYPTION = ("ServerSideEncryption", "SSEKMSKeyId", "BucketKeyEnabled")
OBJECT_LOCK = ("ObjectLockMode", "ObjectLockRetainUntilDate", "ObjectLockLegalHoldStatus")
PROPERTIES = (*CONTENT_HEADERS, "StorageClass", *ENCRYPTION, *OBJECT_LOCK)
COPY_PARAMS = frozenset(
    {
        *PROPERTIES,
        "Bucket",
        "Key",
        "CopySource",
        "CopySourceIfMatch",
        "MetadataDirective",
        "Metadata",
        "TaggingDirective",
        "Tagging",
        "ACL",
        "GrantFullControl",
        "GrantRead",
        "GrantReadACP",
        "GrantWriteACP",
        "ExpectedBucketOwner",
        "ExpectedSourceBucketOwner",
    }
)
DEFAULT_CONTENT_TYPE = "binary/octet-stream"
ARCHIVED = frozenset({"GLACIER", "DEEP_ARCHIVE"})
METADATA_LIMIT = 2048
OWNER_ID = "c0ffee00" * 8  # the canonical user id of the bucket's (and every object's) owner
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
GRANT_PERMISSIONS = {
    "GrantFullControl": "FULL_CONTROL",
    "GrantRead": "READ",
    "GrantReadACP": "READ_ACP",
    "GrantWriteACP": "WRITE_ACP",
}
_GRANTEE = re.compile(r'(id|uri|emailAddress)="([^"]*)"')
PRECONDITION = "At least one of the pre-conditions you specified did not hold"
_EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)

# Faults to inject: each raise is a fresh copy, with the operation that met it.
SLOW_DOWN = S3Error.of("SlowDown", "Please reduce your request rate.", 503)
INTERNAL_ERROR = S3Error.of("InternalError", "We encountered an internal error.", 500)
ACCESS_DENIED = S3Error.of("AccessDenied", "Access Denied", 403)
CONNECTION_RESET = NetworkError("Connection was closed before we received a valid response")


class Request(NamedTuple):
    """One attempt the store answered (or failed): S3's operation name and the key or prefix."""

    operation: str
    key: str


@dataclass
class StoredObject:
    """One object as S3 keeps it. `properties` uses HeadObject's names (ContentType, StorageClass,
    ServerSideEncryption, ...); `grants` is GetObjectAcl's `Grants`."""

    body: bytes
    etag: str
    last_modified: dt.datetime
    metadata: dict[str, str] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    grants: list[dict[str, Any]] = field(default_factory=list)
    version_id: str | None = None

    @property
    def storage_class(self) -> str:
        return str(self.properties.get("StorageClass", "STANDARD"))


@dataclass
class _Fault:
    operation: str
    key: str | None
    error: Exception
    remaining: int | None  # None: every attempt
    after: int = 0  # attempts answered before the first fault


@dataclass
class _Hook:
    operation: str
    key: str | None
    action: Callable[[], None]
    remaining: int | None


@dataclass
class _Upload:
    key: str
    params: dict[str, Any]
    parts: dict[int, bytes] = field(default_factory=dict)


def md5_etag(body: bytes) -> str:
    return '"' + hashlib.md5(body, usedforsecurity=False).hexdigest() + '"'


def multipart_etag(parts: list[bytes]) -> str:
    """S3's ETag of an object assembled from parts: the MD5 of the parts' MD5s, and their count."""
    digests = b"".join(hashlib.md5(part, usedforsecurity=False).digest() for part in parts)
    return f'"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(parts)}"'


def private_acl() -> list[dict[str, Any]]:
    return [{"Grantee": {"Type": "CanonicalUser", "ID": OWNER_ID}, "Permission": "FULL_CONTROL"}]


def parse_grants(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """x-amz-grant-* parameters as GetObjectAcl's grants: exactly what they name, in order."""
    grants = []
    for param, permission in GRANT_PERMISSIONS.items():
        for kind, who in _GRANTEE.findall(params.get(param, "")):
            grantee = {
                "id": {"Type": "CanonicalUser", "ID": who},
                "uri": {"Type": "Group", "URI": who},
                "emailAddress": {"Type": "AmazonCustomerByEmail", "EmailAddress": who},
            }[kind]
            grants.append({"Grantee": grantee, "Permission": permission})
    return grants


def _fresh(error: Exception, operation: str) -> Exception:
    """A new instance of an injected error; a HEAD's error has no body, only its status."""
    if isinstance(error, S3Error):
        if operation == "HeadObject":
            return S3Error.of("", "", error.status, operation)
        return S3Error.of(error.code, error.message, error.status, operation)
    return type(error)(*error.args)


class MemoryStore:
    """One bucket in memory: the `Bucket` protocol, and `objects`, the `ObjectStore` on it."""

    def __init__(
        self,
        name: str = "bucket",
        *,
        flow: FlowControl | None = None,
        versioning: bool = False,
        acls: bool = True,
        default_encryption: str | None = "AES256",
        keeps_folder_metadata: bool = True,
        latency: float = 0.0,
        page_size: int = 1000,
    ) -> None:
        """acls: False as under Object Ownership "bucket owner enforced". keeps_folder_metadata:
        False as SeaweedFS, which drops the user metadata of a key ending in '/' (the marker).
        latency: seconds each per-object request takes on the event loop."""
        self.name = name
        self.expected_owner: str | None = None
        self.versioning = versioning
        self.acls = acls
        self.default_encryption = default_encryption
        self.keeps_folder_metadata = keeps_folder_metadata
        self.page_size = page_size
        self.stored: dict[str, StoredObject] = {}
        self.history: dict[str, list[StoredObject]] = {}  # older versions, when versioning
        self.uploads: dict[str, _Upload] = {}  # multipart uploads neither completed nor aborted
        self.requests: list[Request] = []
        self.objects = MemoryObjects(self, flow or FlowControl(), latency)
        self._faults: list[_Fault] = []
        self._hooks: list[_Hook] = []
        self._lock = threading.RLock()  # the listing, part copies and the loop share the objects
        self._clock = itertools.count(1)
        self._ids = itertools.count(1)

    def store(self) -> Store:
        return Store(self, self.objects)

    @property
    def flow(self) -> FlowControl:
        return self.objects.flow

    # -- setting up and reading back, as an independent client: not logged, never faulted --

    def put(
        self,
        key: str,
        body: bytes = b"",
        *,
        metadata: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        grants: Mapping[str, str] | None = None,
        **properties: Any,
    ) -> StoredObject:
        """PutObject. properties: HeadObject's names (ContentType="text/plain", StorageClass=...);
        grants: x-amz-grant-* parameters, {"GrantRead": 'uri="..."'}; None means private."""
        unknown = set(properties) - set(PROPERTIES)
        if unknown:
            raise TypeError(f"not an object property: {sorted(unknown)}")
        params = {**properties, "Metadata": dict(metadata or {}), **(grants or {})}
        with self._lock:
            return self._write(key, body, params, dict(tags or {}))

    def head(self, key: str) -> dict[str, Any]:
        """HeadObject's answer, read without a request."""
        with self._lock:
            return self._head(key)

    def sent(self, operation: str, key: str | None = None) -> int:
        """How many attempts of this operation (on this key) the store was sent."""
        return sum(1 for r in self.requests if r.operation == operation and key in (None, r.key))

    def written_keys(self) -> list[str]:
        """The keys of every write attempted: CopyObject, PutObject, multipart uploads."""
        writes = ("CopyObject", "PutObject", "CreateMultipartUpload")
        return [r.key for r in self.requests if r.operation in writes]

    # -- injecting faults and other writers --

    def fail(
        self,
        operation: str,
        error: Exception,
        *,
        times: int | None = 1,
        key: str | None = None,
        after: int = 0,
    ) -> None:
        """The next `times` attempts of `operation` (on `key`) fail with `error` (None: all),
        once `after` attempts have been answered."""
        with self._lock:
            self._faults.append(_Fault(operation, key, error, times, after))

    def before(
        self,
        operation: str,
        action: Callable[[], None],
        *,
        times: int | None = 1,
        key: str | None = None,
    ) -> None:
        """Run `action` as the next `times` attempts of `operation` (on `key`) arrive."""
        with self._lock:
            self._hooks.append(_Hook(operation, key, action, times))

    def change_before_copy(
        self,
        key: str,
        *,
        times: int | None = 1,
        metadata: Mapping[str, str] | None = None,
        operation: str = "CopyObject",
    ) -> None:
        """Another writer uploads new content to `key` between our HEAD and our copy: a new body
        (so a new ETag) and, if given, new user metadata; its other properties stay."""

        def overwrite() -> None:
            current = self.stored[key]
            rebuilt = dict(current.metadata if metadata is None else metadata)
            params = {**current.properties, "Metadata": rebuilt}
            self._write(key, current.body + b" (rebuilt)", params, dict(current.tags))

        self.before(operation, overwrite, times=times, key=key)

    # -- Bucket --

    @property
    def endpoint_url(self) -> str:
        return f"memory://{self.name}"

    def check_access(self) -> None:
        self._sync("HeadBucket", "", lambda: None)

    def acls_enabled(self) -> bool:
        return self.acls

    def list_objects(self, prefix: str) -> Iterator[Listed]:
        after = ""
        while True:
            page, truncated = self._sync(
                "ListObjectsV2", prefix, partial(self._page, prefix, after)
            )
            yield from page
            if not truncated:
                return
            after = page[-1].key

    def list_folders(self, prefix: str) -> Iterator[str]:
        after = ""
        while True:
            page, truncated = self._sync(
                "ListObjectsV2", prefix, partial(self._folder_page, prefix, after)
            )
            yield from (entry for entry, folder in page if folder)
            if not truncated:
                return
            after = page[-1][0]

    def head_object(self, key: str) -> Mapping[str, Any]:
        return self._sync("HeadObject", key, lambda: self._head(key))

    def head_metadata(self, key: str) -> dict[str, str] | None:
        try:
            head = self.head_object(key)
        except NotFound:
            return None
        return dict(head.get("Metadata") or {})

    def put_marker(
        self,
        key: str,
        metadata: Mapping[str, str],
        if_none_match: bool = False,
        if_match: str | None = None,
        body: bytes = b"",
    ) -> str | None:
        def put() -> str | None:
            if if_none_match and key in self.stored:
                raise S3Error.of("PreconditionFailed", PRECONDITION, 412, "PutObject")
            if if_match is not None and (
                key not in self.stored or self._head(key).get("ETag") != if_match
            ):
                raise S3Error.of("PreconditionFailed", PRECONDITION, 412, "PutObject")
            kept = metadata if self.keeps_folder_metadata or not key.endswith("/") else {}
            return self._write(key, body, {"Metadata": dict(kept)}, {}).version_id

        return self._sync("PutObject", key, put)

    def large_copier(
        self, stop: threading.Event, threshold: int, part_size: int | None, acls_enabled: bool
    ) -> LargeCopier:
        return MemoryLargeCopier(self, stop, part_size, acls_enabled)

    # -- answering a request --

    def _sync(self, operation: str, key: str, answer: Callable[[], T]) -> T:
        """A request sent as Boto3Bucket sends it: under the retry policy, outside the flow."""
        return with_retries(lambda: self._answer(operation, key, answer))

    def _answer(self, operation: str, key: str, answer: Callable[[], T]) -> T:
        """One attempt: logged, other writers' hooks run, an injected fault raised, or answered."""
        with self._lock:
            self.requests.append(Request(operation, key))
            for hook in self._due(self._hooks, operation, key):
                hook.action()
            for fault in self._due(self._faults, operation, key):
                raise _fresh(fault.error, operation)
            return answer()

    def _due(self, pending: list[Any], operation: str, key: str) -> list[Any]:
        """The first pending fault or hook for this attempt, counted down."""
        for item in pending:
            if item.operation == operation and item.key in (None, key):
                if getattr(item, "after", 0) > 0:
                    item.after -= 1
                    return []
                if item.remaining is not None:
                    item.remaining -= 1
                    if item.remaining == 0:
                        pending.remove(item)
                return [item]
        return []

    def _page(self, prefix: str, after: str) -> tuple[list[Listed], bool]:
        keys = sorted(k for k in self.stored if k.startswith(prefix) and k > after)
        page = [Listed(k, len(self.stored[k].body), self.stored[k].etag) for k in keys]
        return page[: self.page_size], len(keys) > self.page_size

    def _folder_page(self, prefix: str, after: str) -> tuple[list[tuple[str, bool]], bool]:
        """Contents and CommonPrefixes (Delimiter '/') in key order, as one page holds them;
        each entry says whether it is a common prefix."""
        entries: list[tuple[str, bool]] = []
        for key in sorted(k for k in self.stored if k.startswith(prefix)):
            slash = key.find("/", len(prefix))
            entry = (key, False) if slash < 0 else (key[: slash + 1], True)
            if entry[0] > after and (not entries or entries[-1] != entry):
                entries.append(entry)
        return entries[: self.page_size], len(entries) > self.page_size

    def _head(self, key: str) -> dict[str, Any]:
        stored = self.stored.get(key)
        if stored is None:
            raise S3Error.of("NotFound", "", 404, "HeadObject")
        head: dict[str, Any] = {
            "ResponseMetadata": {"HTTPStatusCode": 200},
            "AcceptRanges": "bytes",
            "LastModified": stored.last_modified,
            "ContentLength": len(stored.body),
            "ETag": stored.etag,
            "Metadata": dict(stored.metadata),
        }
        for name, value in stored.properties.items():
            if name == "StorageClass" and value == "STANDARD":
                continue  # S3 sends no x-amz-storage-class for STANDARD
            head[name] = value
        expires = stored.properties.get("Expires")
        if isinstance(expires, dt.datetime):
            head["ExpiresString"] = email.utils.format_datetime(expires, usegmt=True)
        elif isinstance(expires, str):
            del head["Expires"]  # botocore only parses the dates it can
            head["ExpiresString"] = expires
        if stored.version_id is not None:
            head["VersionId"] = stored.version_id
        return head

    def _acl(self, key: str) -> dict[str, Any]:
        if key not in self.stored:
            raise S3Error.of("NoSuchKey", "The specified key does not exist.", 404, "GetObjectAcl")
        return {
            "Owner": {"DisplayName": "owner", "ID": OWNER_ID},
            "Grants": copy.deepcopy(self.stored[key].grants),
        }

    def _copy(self, params: Mapping[str, Any]) -> str | None:
        unknown = set(params) - COPY_PARAMS
        if unknown:
            raise ValueError(f"Unknown parameter in input: {sorted(unknown)}")  # as botocore
        if params["Bucket"] != self.name or params["CopySource"]["Bucket"] != self.name:
            raise S3Error.of(
                "NoSuchBucket", "The specified bucket does not exist", 404, "CopyObject"
            )
        key, source_key = params["Key"], params["CopySource"]["Key"]
        source = self.stored.get(source_key)
        if source is None:
            raise S3Error.of("NoSuchKey", "The specified key does not exist.", 404, "CopyObject")
        if source.storage_class in ARCHIVED:
            raise S3Error.of(
                "ObjectNotInActiveTierError",
                "The source object of the COPY action is not in the active tier",
                403,
                "CopyObject",
            )
        if_match = params.get("CopySourceIfMatch")
        if if_match is not None and if_match != source.etag:
            raise S3Error.of(
                "PreconditionFailed",
                PRECONDITION,
                412,
                "CopyObject",
            )
        replace = params.get("MetadataDirective", "COPY") == "REPLACE"
        changes = {"StorageClass", "WebsiteRedirectLocation", *ENCRYPTION} & set(params)
        if key == source_key and not replace and not changes:
            raise S3Error.of(
                "InvalidRequest",
                "This copy request is illegal because it is trying to copy an object to itself "
                "without changing the object's metadata, storage class, website redirect "
                "location or encryption attributes.",
                400,
                "CopyObject",
            )
        written = dict(params)
        if not replace:  # COPY: the source's metadata and content headers, whatever is sent
            for name in CONTENT_HEADERS:
                written.pop(name, None)
                if name in source.properties:
                    written[name] = source.properties[name]
            written["Metadata"] = dict(source.metadata)
        if params.get("TaggingDirective", "COPY") == "COPY":
            tags = dict(source.tags)
        else:
            tags = dict(parse_qsl(params.get("Tagging", "")))
        return self._write(key, source.body, written, tags).version_id

    def _write(
        self,
        key: str,
        body: bytes,
        params: Mapping[str, Any],
        tags: dict[str, str],
        etag: str | None = None,
    ) -> StoredObject:
        """A new object (or version) at `key` from a create request's parameters: what they do
        not say gets S3's default (binary/octet-stream, STANDARD, the bucket's encryption, a
        private ACL), whatever the object before it had."""
        metadata = {name.lower(): value for name, value in (params.get("Metadata") or {}).items()}
        size = sum(len(k.encode()) + len(str(v).encode()) for k, v in metadata.items())
        if size > METADATA_LIMIT:
            raise S3Error.of(
                "MetadataTooLarge", "Your metadata headers exceed the maximum allowed size.", 400
            )
        properties = {name: params[name] for name in PROPERTIES if name in params}
        properties.setdefault("ContentType", DEFAULT_CONTENT_TYPE)
        properties.setdefault("StorageClass", "STANDARD")
        if properties.get("ServerSideEncryption") not in ("aws:kms", "aws:kms:dsse"):
            properties.pop("SSEKMSKeyId", None)
            properties.pop("BucketKeyEnabled", None)
        if "ServerSideEncryption" not in properties and self.default_encryption:
            properties["ServerSideEncryption"] = self.default_encryption
        grants = parse_grants(params)
        acl = params.get("ACL")
        if not self.acls and (grants or acl not in (None, "bucket-owner-full-control")):
            raise S3Error.of("AccessControlListNotSupported", "The bucket does not allow ACLs", 400)
        if acl not in (None, "private", "bucket-owner-full-control"):
            raise ValueError(f"the in-memory store knows no canned ACL {acl!r}")
        stored = StoredObject(
            body=body,
            etag=etag or md5_etag(body),
            last_modified=_EPOCH + dt.timedelta(seconds=next(self._clock)),
            metadata=metadata,
            properties=properties,
            tags=tags,
            grants=grants or private_acl(),
            version_id=f"v{next(self._ids)}" if self.versioning else None,
        )
        if self.versioning and key in self.stored:
            self.history.setdefault(key, []).append(self.stored[key])
        self.stored[key] = stored
        return stored


class MemoryObjects:
    """The `ObjectStore` of a MemoryStore: every attempt inside the run's flow control, taking
    `latency` seconds on the event loop, under the retry policy."""

    def __init__(self, bucket: MemoryStore, flow: FlowControl, latency: float) -> None:
        self.bucket = bucket
        self.flow = flow
        self.latency = latency
        self.attempts = 0  # attempts sent on the hot path, as the store counted them
        self.answering = 0
        self.peak_answering = 0  # the most attempts answered at once, as the store counted them

    async def _send(self, operation: str, key: str, answer: Callable[[], T]) -> T:
        async def attempt() -> T:
            self.attempts += 1
            self.answering += 1
            self.peak_answering = max(self.peak_answering, self.answering)
            try:
                await asyncio.sleep(self.latency)
                return self.bucket._answer(operation, key, answer)
            finally:
                self.answering -= 1

        return await with_retries_async(attempt, self.flow)

    async def head_object(self, key: str) -> Mapping[str, Any]:
        return await self._send("HeadObject", key, lambda: self.bucket._head(key))

    async def get_object_acl(self, key: str) -> Mapping[str, Any]:
        return await self._send("GetObjectAcl", key, lambda: self.bucket._acl(key))

    async def copy_object(self, params: Mapping[str, Any]) -> str | None:
        return await self._send("CopyObject", params["Key"], lambda: self.bucket._copy(params))


class MemoryLargeCopier:
    """A copy in parts onto itself, as MultipartCopier makes it: the object's tags read and sent
    explicitly, every part guarded by the ETag, the upload aborted on any failure. The result
    carries exactly what the create request said, and an ETag of the form <md5>-<parts>."""

    def __init__(
        self, bucket: MemoryStore, stop: threading.Event, part_size: int | None, acls: bool
    ) -> None:
        self.bucket = bucket
        self.stop = stop
        self.part_size = part_size
        self.acls = acls
        self.shut_down = False

    def copy(self, params: Mapping[str, Any], size: int) -> CopiedInParts:
        bucket, key = self.bucket, params["Key"]
        source_key, if_match = params["CopySource"]["Key"], params["CopySourceIfMatch"]
        if self.stop.is_set():
            raise ObjectRefused("interrupted before its multipart copy started")
        tags = bucket._sync("GetObjectTagging", key, lambda: dict(bucket.stored[key].tags))
        create = {
            name: value
            for name, value in params.items()
            if name not in ("CopySource", "CopySourceIfMatch", "MetadataDirective")
        }
        if tags:
            create["Tagging"] = tagging_header([{"Key": k, "Value": v} for k, v in tags.items()])
        if self.acls and not any(name.startswith("Grant") for name in params):
            create["ACL"] = "private"
        upload_id = bucket._sync("CreateMultipartUpload", key, lambda: self._create(key, create))
        plan = part_plan(size, self.part_size)
        try:
            for number in range(plan.parts):
                if self.stop.is_set():
                    raise ObjectRefused("interrupted during its multipart copy; upload aborted")
                start = number * plan.part_size
                end = min(start + plan.part_size, size)

                def part(number: int = number, start: int = start, end: int = end) -> None:
                    source = bucket.stored.get(source_key)
                    if source is None or source.etag != if_match:
                        raise S3Error.of(
                            "PreconditionFailed",
                            PRECONDITION,
                            412,
                            "UploadPartCopy",
                        )
                    bucket.uploads[upload_id].parts[number] = source.body[start:end]

                bucket._sync("UploadPartCopy", key, part)
            version_id = bucket._sync(
                "CompleteMultipartUpload", key, lambda: self._complete(upload_id)
            )
        except BaseException:
            bucket._sync("AbortMultipartUpload", key, lambda: bucket.uploads.pop(upload_id, None))
            raise
        return CopiedInParts(plan.object_size, plan.part_size, version_id)

    def _create(self, key: str, params: dict[str, Any]) -> str:
        upload_id = f"upload-{next(self.bucket._ids)}"
        self.bucket.uploads[upload_id] = _Upload(key, params)
        return upload_id

    def _complete(self, upload_id: str) -> str | None:
        upload = self.bucket.uploads.pop(upload_id)
        parts = [upload.parts[n] for n in sorted(upload.parts)]
        tags = dict(parse_qsl(upload.params.get("Tagging", "")))
        etag = multipart_etag(parts)
        return self.bucket._write(upload.key, b"".join(parts), upload.params, tags, etag).version_id

    def shutdown(self) -> None:
        self.shut_down = True
