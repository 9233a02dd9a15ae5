"""Listing -> bounded pool -> one guarded copy per object -> results; the marker last, read back.

Data flows one way: the listing streams into the pool, each worker returns a result, the tally
collects them, and only a clean tally lets the marker be written. Every request goes through the
`Store` of store/protocols.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, Protocol

from gos3matic.core.metadata import (
    ObjectRefused,
    copy_params,
    grant_params,
    is_annotated,
    marker_metadata,
)
from gos3matic.core.outcome import Failure, MarkerState, Outcome, Plan, Result, Tally, Write
from gos3matic.core.poller import Folder, Marker, PollerView, folder_name, poller_view
from gos3matic.core.shards import owns
from gos3matic.errors import EnvironmentProblem, NetworkError, S3Error
from gos3matic.store.protocols import Bucket, LargeCopier, Listed, ObjectStore, Store
from gos3matic.store.retry import ATTEMPTS

STALE_READS = 3  # how often an object may change under us before it counts as failed
QUEUE_PER_WORKER = 4  # listed-but-not-started objects per worker: bounds memory


class Progress(Protocol):
    def listed(self, tally: Tally) -> None: ...

    def finished(self, tally: Tally) -> None: ...


def describe(error: BaseException) -> str:
    """One line a person can act on, for the summary and --json."""
    if isinstance(error, ObjectRefused):
        return str(error)
    if isinstance(error, S3Error):
        if error.code in ("NotFound", "NoSuchKey"):
            return "deleted since it was listed (NoSuchKey)"
        if error.code in ("ObjectNotInActiveTierError", "InvalidObjectState"):
            return f"archived and not restored ({error.code}); restore it first"
        if error.code == "BadRequest" and error.operation == "HeadObject":
            return "HEAD refused (400 Bad Request): likely SSE-C, which needs the customer key"
        detail = f": {error.message}" if error.message else ""
        return f"{error.code}{detail}"
    if isinstance(error, NetworkError):
        return f"no answer from S3 after {ATTEMPTS} attempts: {error}"
    return f"unexpected {type(error).__name__}: {error}"


class Annotator:
    """Annotates one object: HEAD, skip if done, merge, guarded copy; re-read when it changed."""

    def __init__(
        self,
        plan: Plan,
        objects: ObjectStore,
        keep_grants: bool,
        announce: Callable[[Write], None],
        copier: LargeCopier | None = None,
    ) -> None:
        self.plan = plan
        self.objects = objects
        self.keep_grants = keep_grants
        self.announce = announce
        self.copier = copier

    def __call__(self, listed: Listed) -> tuple[Result, int, str | None]:
        """What became of the object, the bytes copied, and the VersionId the copy created."""
        copied = False
        for _ in range(STALE_READS):
            head = self.objects.head_object(listed.key)
            if is_annotated(head, self.plan.annotation):
                return (Result.ANNOTATED if copied else Result.SKIPPED), 0, None
            params = copy_params(self.plan.bucket, listed.key, head, self.plan.annotation)
            params.update(self._grants(listed.key))  # only once the object is known copyable
            if self.plan.dry_run:
                self.announce(Write(self.plan.bucket, listed.key))
                return Result.WOULD_ANNOTATE, 0, None
            size = int(head.get("ContentLength", listed.size))
            try:
                copied = True
                if self.copier is not None and size > self.plan.multipart_threshold:
                    version_id = self.copier.copy(params, size).version_id
                else:
                    version_id = self.objects.copy_object(params)
            except S3Error as error:
                if error.code == "PreconditionFailed":
                    continue  # overwritten since our HEAD: merge over the new content
                raise
            return Result.ANNOTATED, size, version_id
        raise ObjectRefused(f"changed under every one of {STALE_READS} attempts to copy it")

    def _grants(self, key: str) -> dict[str, str]:
        if not self.keep_grants:
            return {}
        try:
            return grant_params(self.objects.get_object_acl(key))
        except S3Error as error:
            if error.code in ("NotImplemented", "MethodNotAllowed"):
                return {}  # a store without ACLs: nothing to keep
            raise ObjectRefused(
                f"cannot read its ACL to keep it ({error.code}); a copy would reset it"
            ) from None


def annotate_prefix(
    plan: Plan,
    store: Store,
    progress: Progress,
    stop: threading.Event,
    announce: Callable[[Write], None],
) -> Outcome:
    started = time.monotonic()
    bucket = store.bucket
    keep_grants = bucket.acls_enabled()
    copier = bucket.large_copier(stop, plan.multipart_threshold, plan.part_size, keep_grants)
    annotate = Annotator(plan, store.objects, keep_grants, announce, copier)
    tally = Tally()
    lock = threading.Lock()
    slots = threading.BoundedSemaphore(plan.workers * QUEUE_PER_WORKER)

    def record(listed: Listed, future: Future[tuple[Result, int, str | None]]) -> None:
        slots.release()
        if future.cancelled():
            return
        error = future.exception()
        with lock:
            if error is None:
                result, size, version_id = future.result()
                tally.count(result)
                tally.bytes_copied += size
                tally.new_versions += _new_version(version_id)
                if result is Result.ANNOTATED and size > plan.multipart_threshold:
                    tally.multipart += 1
            else:
                tally.failed += 1
                tally.failures.append(Failure(listed.key, describe(error)))
        progress.finished(tally)

    listing_failure: BaseException | None = None
    with ThreadPoolExecutor(plan.workers, thread_name_prefix="annotate") as pool:
        try:
            for listed in bucket.list_objects(plan.prefix):
                if listed.key == plan.marker_key:
                    continue
                if plan.shard is not None and not owns(plan.shard, listed.key):
                    tally.other_shards += 1
                    continue
                if not _wait_for_slot(slots, stop):
                    break
                with lock:
                    tally.listed += 1
                progress.listed(tally)
                future = pool.submit(annotate, listed)
                future.add_done_callback(partial(record, listed))
        except (S3Error, NetworkError) as error:
            listing_failure = error
        if stop.is_set():
            pool.shutdown(wait=True, cancel_futures=True)
    copier.shutdown()

    interrupted = stop.is_set()
    if listing_failure is not None:
        if tally.listed == 0:
            raise EnvironmentProblem(
                f"cannot list s3://{plan.bucket}/{plan.prefix}: {describe(listing_failure)}"
            )
        tally.failed += 1
        tally.failures.append(Failure(plan.prefix, f"listing stopped: {describe(listing_failure)}"))

    outcome = Outcome(tally, MarkerState.WITHHELD, interrupted=interrupted)
    finish_marker(plan, bucket, outcome, announce)
    outcome.elapsed = time.monotonic() - started
    return outcome


def _wait_for_slot(slots: threading.BoundedSemaphore, stop: threading.Event) -> bool:
    while not slots.acquire(timeout=0.2):
        if stop.is_set():
            return False
    if stop.is_set():
        slots.release()
        return False
    return True


def finish_marker(
    plan: Plan, bucket: Bucket, outcome: Outcome, announce: Callable[[Write], None]
) -> None:
    """The marker, only when the tally is clean: written and read back, or why it was not."""
    tally = outcome.tally
    if outcome.interrupted:
        outcome.marker = MarkerState.INTERRUPTED
    elif tally.failed:
        outcome.marker = MarkerState.WITHHELD
    elif tally.listed + tally.other_shards == 0 and not plan.allow_empty:
        outcome.marker = MarkerState.EMPTY
    elif plan.shard is not None:
        outcome.marker = MarkerState.SHARDED
    elif not plan.write_marker:
        outcome.marker = MarkerState.DISABLED
    elif plan.dry_run:
        outcome.marker = MarkerState.DRY_RUN
        announce(Write(plan.bucket, plan.marker_key, plan.marker_metadata))
    else:
        try:
            write_marker(plan, bucket, outcome)
        except (S3Error, NetworkError) as error:
            outcome.marker = MarkerState.WITHHELD
            tally.failed += 1
            tally.failures.append(Failure(plan.marker_key, f"marker: {describe(error)}"))


def write_marker(plan: Plan, bucket: Bucket, outcome: Outcome) -> None:
    """PUT the marker unless an identical one is there, then read it back: trust, but verify."""
    existing = bucket.head_metadata(plan.marker_key)
    wanted = marker_metadata(existing, plan.marker_metadata)
    if existing == wanted:  # equal, not just carrying it: a key this run leaves out must go
        outcome.marker, outcome.marker_verified = MarkerState.ALREADY_PRESENT, True
        return
    outcome.tally.new_versions += _new_version(bucket.put_marker(plan.marker_key, wanted))
    outcome.marker_written = True
    if _carries(bucket.head_metadata(plan.marker_key), wanted):
        outcome.marker, outcome.marker_verified = MarkerState.WRITTEN, True
    else:
        outcome.marker = MarkerState.NOT_KEPT


def _new_version(version_id: str | None) -> bool:
    # "null": versioning suspended, the write replaced the null version instead of adding one
    return version_id is not None and version_id != "null"


def _carries(metadata: Mapping[str, Any] | None, expected: Mapping[str, str]) -> bool:
    return metadata is not None and all(metadata.get(k) == v for k, v in expected.items())


def read_marker(objects: ObjectStore, key: str) -> Marker | None:
    """HEAD on a folder's own key, as the poller issues it; None when there is no such object."""
    try:
        head = objects.head_object(key)
    except S3Error as error:
        if error.code in ("NotFound", "NoSuchKey"):
            return None
        raise EnvironmentProblem(f"cannot read the marker {key}: {error}") from None
    except NetworkError as error:
        raise EnvironmentProblem(f"cannot read the marker {key}: {error}") from None
    return Marker(dict(head.get("Metadata") or {}), head.get("LastModified"))


def read_package(store: Store, package: str, workers: int) -> PollerView:
    """List the package's folders and read the marker of each one the poller can parse."""
    bucket = store.bucket
    try:
        names = [folder_name(prefix, package) for prefix in bucket.list_folders(package)]
    except (S3Error, NetworkError) as error:
        raise EnvironmentProblem(f"cannot list s3://{bucket.name}/{package}: {error}") from None
    folders = [Folder(name) for name in names]
    parseable = [f for f in folders if f.version is not None]
    with ThreadPoolExecutor(workers, thread_name_prefix="marker") as pool:
        markers = pool.map(lambda f: read_marker(store.objects, f"{package}{f.name}/"), parseable)
        read = {f.name: Folder(f.name, m) for f, m in zip(parseable, markers, strict=True)}
    return poller_view(package, (read.get(f.name, f) for f in folders))
