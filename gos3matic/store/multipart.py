"""Objects over the single-copy limit: a multipart copy onto itself.

The copy is s3transfer's managed copy (parts in parallel, abort on failure), wrapped so that it
carries every property `core.metadata.copy_params` sends, keeps the tags, retries and fails like
every other request of ours, and stops when the run is interrupted. The part plan it follows is
pure and lives in core/sizes.py. See docs/s3-notes.md, "Sizes".
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from s3transfer.exceptions import CancelledError
from s3transfer.manager import TransferConfig, TransferManager
from s3transfer.subscribers import BaseSubscriber

from gos3matic.core.metadata import ObjectRefused
from gos3matic.core.sizes import (
    DEFAULT_PART_SIZE,
    DEFAULT_THRESHOLD,
    CopiedInParts,
    part_plan,
    tagging_header,
)
from gos3matic.store.flow import STOP_POLL
from gos3matic.store.protocols import owner_params, source_owner_params
from gos3matic.store.retry import RequestLog, with_retries
from gos3matic.store.translate import operation_name, translated

T = TypeVar("T")

PART_CONCURRENCY = 10  # UploadPartCopy requests in flight, across all objects of a run

# -- the copy --


class CopyInterrupted(ObjectRefused):
    """The run was interrupted during this object's multipart copy; its upload was aborted."""


class _Requests:
    """The boto3 client as s3transfer sees it: each request under our retry policy, raising our
    errors, with what s3transfer does not pass on added per operation.

    s3transfer refuses some CreateMultipartUpload parameters (BucketKeyEnabled), drops `Tagging`
    from it (then re-reads tags after completion, from the new object on a copy onto itself),
    and knows nothing of ExpectedSourceBucketOwner. Those are added here, per key: a run copies
    each key once, and only one of its workers copies it.
    """

    def __init__(self, client: Any, owner: str | None, log: RequestLog | None = None) -> None:
        self._client = client
        self._log = log
        self.meta = client.meta  # s3transfer registers its event handlers here
        self._owner = owner_params(owner)
        self._source_owner = source_owner_params(owner)
        self._create_extras: dict[tuple[str, str], dict[str, Any]] = {}
        self._unaborted: dict[tuple[str, str], str] = {}  # s3transfer only logs a failed abort
        self._versions: dict[tuple[str, str], str] = {}  # s3transfer drops Complete's answer
        self._lock = threading.Lock()

    def expect(self, bucket: str, key: str, create_extras: Mapping[str, Any]) -> None:
        with self._lock:
            if (bucket, key) in self._create_extras:
                raise RuntimeError(f"s3://{bucket}/{key} is already being copied")
            self._create_extras[bucket, key] = dict(create_extras)

    def forget(self, bucket: str, key: str) -> tuple[str | None, str | None]:
        """Done with this key: the id of an upload of it that could not be aborted, if any, and
        the VersionId its completion created, if any."""
        with self._lock:
            self._create_extras.pop((bucket, key), None)
            return self._unaborted.pop((bucket, key), None), self._versions.pop((bucket, key), None)

    def _call(self, operation: Callable[..., T], **params: Any) -> T:
        def attempt() -> T:
            with translated():
                return operation(**params, **self._owner)

        what = (operation_name(operation), str(params.get("Key", "")))
        return with_retries(attempt, what=what, log=self._log)

    def get_object_tagging(self, **params: Any) -> Any:
        return self._call(self._client.get_object_tagging, **params)

    def create_multipart_upload(self, **params: Any) -> Any:
        with self._lock:
            extras = self._create_extras[params["Bucket"], params["Key"]]
        return self._call(self._client.create_multipart_upload, **params, **extras)

    def upload_part_copy(self, **params: Any) -> Any:
        return self._call(self._client.upload_part_copy, **params, **self._source_owner)

    def complete_multipart_upload(self, **params: Any) -> Any:
        response = self._call(self._client.complete_multipart_upload, **params)
        if response.get("VersionId"):
            with self._lock:
                self._versions[params["Bucket"], params["Key"]] = response["VersionId"]
        return response

    def abort_multipart_upload(self, **params: Any) -> Any:
        try:
            return self._call(self._client.abort_multipart_upload, **params)
        except Exception:
            with self._lock:
                self._unaborted[params["Bucket"], params["Key"]] = params["UploadId"]
            raise


class _KnownObject(BaseSubscriber):
    """Tells s3transfer the size and ETag we already read, so it does not HEAD again."""

    def __init__(self, size: int, etag: str, done: threading.Event) -> None:
        self._size = size
        self._etag = etag
        self._done = done

    def on_queued(self, future: Any, **kwargs: Any) -> None:
        future.meta.provide_transfer_size(self._size)
        if hasattr(future.meta, "provide_object_etag"):  # s3transfer >= 0.14 guards parts itself
            future.meta.provide_object_etag(self._etag)

    def on_done(self, future: Any, **kwargs: Any) -> None:
        self._done.set()


class MultipartCopier:
    """Multipart copies of objects onto themselves, parts in parallel, for one run.

    `copy(params, size)` takes the very arguments `metadata.copy_params` builds for CopyObject and
    raises what a single copy would: S3Error (PreconditionFailed when any part found the object
    changed), NetworkError, or CopyInterrupted once `stop` is set. On every failure the upload is
    aborted before `copy` returns.
    """

    def __init__(
        self,
        client: Any,
        stop: threading.Event,
        *,
        threshold: int = DEFAULT_THRESHOLD,
        part_size: int | None = None,
        expected_owner: str | None = None,
        concurrency: int = PART_CONCURRENCY,
        acls_enabled: bool = False,
        log: RequestLog | None = None,
    ) -> None:
        self._stop = stop
        self._acls_enabled = acls_enabled
        self._requests = _Requests(client, expected_owner, log)
        self.part_size = part_size
        config = TransferConfig(
            multipart_threshold=threshold,
            multipart_chunksize=DEFAULT_PART_SIZE if part_size is None else part_size,
            max_request_concurrency=concurrency,
        )
        self._manager = TransferManager(self._requests, config)  # type: ignore[arg-type]  # a duck-typed client
        self._submit_lock = threading.Lock()  # TransferManager numbers transfers unlocked

    def copy(self, params: Mapping[str, Any], size: int) -> CopiedInParts:
        bucket, key = params["Bucket"], params["Key"]
        if self._stop.is_set():
            raise CopyInterrupted("interrupted before its multipart copy started")
        allowed = set(TransferManager.ALLOWED_COPY_ARGS)
        extra_args = {name: value for name, value in params.items() if name in allowed}
        create_extras = {
            name: value
            for name, value in params.items()
            if name not in allowed and name not in ("Bucket", "Key", "CopySource")
        }
        tag_set = self._requests.get_object_tagging(Bucket=bucket, Key=key).get("TagSet") or []
        if tag_set:
            create_extras["Tagging"] = tagging_header(tag_set)
        if self._acls_enabled and not any(name.startswith("Grant") for name in params):
            # Said explicitly: moto gives an upload completed without any ACL header no ACL at all.
            create_extras["ACL"] = "private"

        done = threading.Event()
        self._requests.expect(bucket, key, create_extras)
        try:
            with self._submit_lock:
                future = self._manager.copy(
                    copy_source={"Bucket": bucket, "Key": key},
                    bucket=bucket,
                    key=key,
                    extra_args=extra_args,
                    subscribers=[_KnownObject(size, params["CopySourceIfMatch"], done)],
                )
            while not done.wait(STOP_POLL):
                if self._stop.is_set():
                    future.cancel()  # parts not started are skipped; then the upload is aborted
                    break
            future.result()  # returns once a failed upload is aborted
        except CancelledError:
            raise CopyInterrupted(
                "interrupted during its multipart copy; the upload was aborted"
            ) from None
        finally:
            upload_left, version_id = self._requests.forget(bucket, key)
            if upload_left is not None:
                raise ObjectRefused(
                    f"its multipart copy failed and upload {upload_left} could not be aborted; "
                    f"abort it: aws s3api abort-multipart-upload --bucket {bucket} "
                    f"--key {key} --upload-id {upload_left}"
                )
        plan = part_plan(size, self.part_size)
        return CopiedInParts(plan.object_size, plan.part_size, version_id)

    def shutdown(self) -> None:
        self._manager.shutdown(cancel=self._stop.is_set())

    def __enter__(self) -> MultipartCopier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()
