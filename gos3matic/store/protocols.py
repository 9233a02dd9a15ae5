"""The seam between the engine and S3: what the engine and the commands may ask of a store.

Two clients implement it: boto3 (store/boto.py) for everything, and the native store
(store/native.py, HTTP on the engine's loop) for the per-object hot path when it reaches the bucket
exactly as boto3 does. The bucket-level requests are plain calls; the hot path is awaitable, so
that one event loop keeps hundreds of requests in flight.
Parameters and answers use boto3's names and shapes, whichever client sends the request. Tests
fake these protocols with an in-memory store (tests/support/memstore.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from gos3matic.core.sizes import CopiedInParts
from gos3matic.store.flow import FlowControl


@dataclass(frozen=True)
class Connection:
    """Where and as whom to talk to S3; None means boto3's own resolution (env, config, role)."""

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    expected_bucket_owner: str | None = None


def owner_params(account: str | None) -> dict[str, str]:
    """--expected-bucket-owner as boto3 names it on a request: S3 then refuses (403) a bucket
    that another account owns. Nothing when no account is expected."""
    return {"ExpectedBucketOwner": account} if account else {}


def source_owner_params(account: str | None) -> dict[str, str]:
    """The same for the source bucket of a copy (CopyObject, UploadPartCopy)."""
    return {"ExpectedSourceBucketOwner": account} if account else {}


def copy_owner_params(account: str | None) -> dict[str, str]:
    """Both, for a copy onto itself: its source bucket is the bucket too."""
    return {**owner_params(account), **source_owner_params(account)}


@dataclass(frozen=True)
class Listed:
    """One object of a listing."""

    key: str
    size: int
    etag: str


class ObjectStore(Protocol):
    """The per-object requests of the hot path, awaited on the engine's event loop. Each attempt
    of each request passes through `flow`, the run's concurrency window and pacer."""

    flow: FlowControl

    async def head_object(self, key: str) -> Mapping[str, Any]:
        """HeadObject's answer; S3Error NotFound when there is no such key."""
        ...

    async def get_object_acl(self, key: str) -> Mapping[str, Any]: ...

    async def copy_object(self, params: Mapping[str, Any]) -> str | None:
        """CopyObject with `core.metadata.copy_params`; the new VersionId, if versioned."""
        ...


class LargeCopier(Protocol):
    """Copies onto themselves of objects over the single-copy limit, in parts."""

    def copy(self, params: Mapping[str, Any], size: int) -> CopiedInParts:
        """The same params as copy_object; the upload is aborted on every failure."""
        ...

    def shutdown(self) -> None: ...


class Bucket(Protocol):
    """The bucket-level requests: access, ownership, listings, markers, large copies."""

    name: str
    expected_owner: str | None

    @property
    def endpoint_url(self) -> str: ...

    def check_access(self) -> None:
        """EnvironmentProblem, before any write, when the bucket is missing or not ours."""
        ...

    def acls_enabled(self) -> bool:
        """False when Object Ownership is BucketOwnerEnforced: no object can carry grants."""
        ...

    def list_objects(self, prefix: str) -> Iterator[Listed]: ...

    def list_folders(self, prefix: str) -> Iterator[str]:
        """The common prefixes one level under PREFIX, as GoCD's poller lists them."""
        ...

    def head_object(self, key: str) -> Mapping[str, Any]:
        """HeadObject's answer, through boto3; S3Error NotFound when there is no such key."""
        ...

    def head_metadata(self, key: str) -> dict[str, str] | None:
        """A key's user metadata, or None when there is no such object."""
        ...

    def put_marker(
        self,
        key: str,
        metadata: Mapping[str, str],
        if_none_match: bool = False,
        if_match: str | None = None,
        body: bytes = b"",
    ) -> str | None:
        """A zero-byte object with this metadata (BODY instead: a lease); its new VersionId.

        if_none_match: written only if no object has the key (S3Error PreconditionFailed if one
        does); if_match: only if the object's ETag is this one. A store that ignores the
        conditions writes anyway, so callers read back.
        """
        ...

    def large_copier(
        self, stop: threading.Event, threshold: int, part_size: int | None, acls_enabled: bool
    ) -> LargeCopier: ...


@dataclass(frozen=True)
class Store:
    """One bucket as every command sees it: its bucket-level requests and its hot path."""

    bucket: Bucket
    objects: ObjectStore

    @property
    def flow(self) -> FlowControl:
        return self.objects.flow
