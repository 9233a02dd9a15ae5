"""Listing -> bounded pool -> one guarded copy per object -> results; the marker last, read back.

Data flows one way: the listing streams into the pool, each worker returns a result, the tally
collects them, and only a clean tally lets the marker be written. Every request goes through the
`Store` of store/protocols.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from gos3matic.core.metadata import (
    ObjectRefused,
    copy_params,
    grant_params,
    is_annotated,
    marker_metadata,
)
from gos3matic.core.outcome import (
    Failure,
    MarkerState,
    Outcome,
    Plan,
    Progress,
    RequestStats,
    Result,
    Tally,
    Write,
)
from gos3matic.core.poller import Marker
from gos3matic.core.shards import owns
from gos3matic.errors import (
    ArchivedObject,
    EnvironmentProblem,
    NetworkError,
    NotFound,
    NotSupported,
    PreconditionFailed,
    RequestFailed,
    S3Error,
    cannot_list,
)
from gos3matic.store.flow import STOP_POLL
from gos3matic.store.protocols import Bucket, LargeCopier, Listed, ObjectStore, Store
from gos3matic.store.retry import ATTEMPTS

STALE_READS = 3  # how often an object may change under us before it counts as failed
LISTING_PAGE = 1000  # keys handed from the listing thread to the loop at once (one S3 page)
PART_COPIES = 4  # objects copied in parts at once; each runs its parts in parallel
STOP_GRACE = 1.5  # seconds that requests in flight at a signal get to finish


class Unread:
    """A marker not read yet (None already means: no marker)."""


UNREAD = Unread()
# The marker step of one revision of annotate_revisions: (index, outcome, marker read earlier).
Finish = Callable[[int, Outcome, "Mapping[str, str] | Unread | None"], None]


def describe(error: BaseException) -> str:
    """One line a person can act on, for the summary and --json."""
    if isinstance(error, ObjectRefused):
        return str(error)
    if isinstance(error, NotFound):
        return "deleted since it was listed (NoSuchKey)"
    if isinstance(error, ArchivedObject):
        return f"archived and not restored ({error.code}); restore it first"
    if isinstance(error, S3Error):
        if error.status == 400 and error.operation == "HeadObject":
            return "HEAD refused (400 Bad Request): likely SSE-C, which needs the customer key"
        detail = f": {error.message}" if error.message else ""
        return f"{error.code}{detail}"
    if isinstance(error, NetworkError):
        return f"no answer from S3 after {ATTEMPTS} attempts: {error}"
    return f"unexpected {type(error).__name__}: {error}"


class NotStarted(Exception):
    """A stop came before the object's first write: it is neither done nor failed."""


class Annotator:
    """Annotates one object: HEAD, skip if done, merge, guarded copy; re-read when it changed."""

    def __init__(
        self,
        plan: Plan,
        objects: ObjectStore,
        keep_grants: bool,
        announce: Callable[[Write], None],
        copy_in_parts: Callable[[Mapping[str, Any], int], Awaitable[str | None]],
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self.plan = plan
        self.stopping = stopping
        self.objects = objects
        self.keep_grants = keep_grants
        self.announce = announce
        self.copy_in_parts = copy_in_parts

    async def __call__(self, listed: Listed) -> tuple[Result, int, str | None]:
        """What became of the object, the bytes copied, and the VersionId the copy created."""
        copied = False
        for _ in range(STALE_READS):
            if self.stopping():  # a signal came while it waited for its turn: not started
                raise NotStarted(listed.key)
            head = await self.objects.head_object(listed.key)
            if is_annotated(head, self.plan.annotation, self.plan.any_value_keys):
                return (Result.ANNOTATED if copied else Result.SKIPPED), 0, None
            params = copy_params(self.plan.bucket, listed.key, head, self.plan.annotation)
            params.update(await self._grants(listed.key))  # only once known copyable
            if self.plan.dry_run:
                self.announce(Write(self.plan.bucket, listed.key))
                return Result.WOULD_ANNOTATE, 0, None
            size = int(head.get("ContentLength", listed.size))
            if self.stopping() and not copied:  # read, but no write begun: leave it for a re-run
                raise NotStarted(listed.key)
            try:
                copied = True
                if size > self.plan.multipart_threshold:
                    version_id = await self.copy_in_parts(params, size)
                else:
                    version_id = await self.objects.copy_object(params)
            except PreconditionFailed:
                continue  # overwritten since our HEAD: merge over the new content
            return Result.ANNOTATED, size, version_id
        raise ObjectRefused(f"changed under every one of {STALE_READS} attempts to copy it")

    async def _grants(self, key: str) -> dict[str, str]:
        if not self.keep_grants:
            return {}
        try:
            return grant_params(await self.objects.get_object_acl(key))
        except NotSupported:
            return {}  # a store without ACLs: nothing to keep
        except S3Error as error:
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
    """Every object under the plan's prefix, then its marker: the whole of one annotate run."""
    return annotate_revisions([plan], store, progress, stop, announce)[0]


def annotate_revisions(
    plans: Sequence[Plan],
    store: Store,
    progress: Progress,
    stop: threading.Event,
    announce: Callable[[Write], None],
    carry_on: Callable[[int, Outcome], bool] = lambda index, outcome: True,
    finish: Finish | None = None,
) -> list[Outcome]:
    """Several prefixes through one pipeline, in order: the objects of later revisions are
    annotated while earlier ones finish, and each marker is written only once every earlier one
    is (strictly ascending, as backfill must: the poller only ever moves forward).

    After each marker, `carry_on(index, outcome)` says whether to go on; when it says no (say,
    the revision failed), no new object is started and no later marker is written. Outcomes of
    revisions never reached have nothing listed and MarkerState.WITHHELD.

    `finish(index, outcome, existing)` is the marker step, in a thread (workflow.py: the
    revision's claim completes it); by default `finish_marker` of that plan.
    """
    if not plans:
        return []
    if finish is None:

        def finish(
            index: int, outcome: Outcome, existing: Mapping[str, str] | Unread | None
        ) -> None:
            finish_marker(plans[index], store.bucket, outcome, announce, existing)

    started = time.monotonic()
    bucket = store.bucket
    keep_grants = bucket.acls_enabled()
    threshold = min(plan.multipart_threshold for plan in plans)
    part_size = plans[0].part_size
    copier = bucket.large_copier(stop, threshold, part_size, keep_grants)
    pipeline = _Pipeline(store, copier, keep_grants, progress, stop, announce, finish)
    before = replace(store.flow.stats)
    try:
        outcomes = asyncio.run(pipeline.run(plans, carry_on))
    finally:
        copier.shutdown()
    sent = store.flow.stats
    this_run = RequestStats(  # the store may have served earlier runs: this run's own
        sent.requests - before.requests,
        sent.retries - before.retries,
        sent.throttled - before.throttled,
        sent.peak_in_flight,
    )
    for outcome in outcomes:
        outcome.requests = this_run
    if len(outcomes) == 1:
        outcomes[0].elapsed = time.monotonic() - started
    return outcomes


class _Revision:
    """One prefix in the pipeline: its plan, tally, tasks, and what its listing ended with."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.tally = Tally()
        self.tasks: set[asyncio.Task[tuple[Result, int, str | None]]] = set()
        self.listed_all = asyncio.Event()
        self.listing_failure: BaseException | None = None
        self.marker_before: asyncio.Task[Mapping[str, str] | Unread | None] | None = None
        self.started = time.monotonic()


class _Pipeline:
    """The listing streams into one task per object, as many at once as the flow control lets
    requests out; the answer to each lands in its revision's tally; markers follow in order."""

    def __init__(
        self,
        store: Store,
        copier: LargeCopier,
        keep_grants: bool,
        progress: Progress,
        stop: threading.Event,
        announce: Callable[[Write], None],
        finish: Finish,
    ) -> None:
        self.finish = finish
        self.store = store
        self.copier = copier
        self.keep_grants = keep_grants
        self.progress = progress
        self.stop = stop
        self.in_parts: set[asyncio.Task[Any] | None] = set()
        self.announce = announce
        self.running = 0
        self.room = asyncio.Event()
        self.halted = False  # carry_on said no: start nothing new
        # A request met a failure no object can get past (an untrusted certificate, a name that
        # no longer resolves): nothing new starts, no marker is written, the run ends with it.
        self.fatal: EnvironmentProblem | None = None
        self.shown = Tally()  # what progress shows: every revision's objects together

    async def run(
        self, plans: Sequence[Plan], carry_on: Callable[[int, Outcome], bool]
    ) -> list[Outcome]:
        revisions = [_Revision(plan) for plan in plans]
        finisher = asyncio.get_running_loop().create_task(
            self._finish_in_order(revisions, carry_on)
        )
        with ThreadPoolExecutor(PART_COPIES, thread_name_prefix="parts") as self.parts:
            for revision in revisions:
                if self.halted or self.stop.is_set():
                    break
                await self._feed(revision)
            self.progress.listing_complete(self.shown)
            for revision in revisions:
                revision.listed_all.set()  # those never fed: nothing listed, nothing to wait for
            outcomes = await finisher
        if self.fatal is not None:
            raise self.fatal
        return outcomes

    async def _feed(self, revision: _Revision) -> None:
        plan, tally, loop = revision.plan, revision.tally, asyncio.get_running_loop()
        revision.started = time.monotonic()
        revision.marker_before = loop.create_task(_marker_now(self.store.objects, plan))
        annotate = Annotator(
            plan, self.store.objects, self.keep_grants, self.announce, self._parts, self._stopping
        )
        flow = self.store.flow
        try:
            async for listed in _listing(self.store, plan.prefix, self.stop):
                if listed.key == plan.marker_key:
                    continue
                if plan.shard is not None and not owns(plan.shard, listed.key):
                    tally.other_shards += 1
                    continue
                # No more objects under way than the flow control lets requests out: the rest
                # wait here, in the listing, rather than as tasks queued for a slot.
                while self.running >= min(flow.ceiling, flow.window) and not self._stopping():
                    self.room.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self.room.wait(), STOP_POLL)
                if self._stopping():
                    break
                tally.listed += 1
                self.shown.listed += 1
                self.progress.listed(self.shown)
                task = loop.create_task(annotate(listed))
                self.running += 1
                revision.tasks.add(task)
                task.add_done_callback(functools.partial(self._record, revision, listed.key))
        except RequestFailed as error:
            revision.listing_failure = error
        finally:
            revision.listed_all.set()

    def _stopping(self) -> bool:
        return self.halted or self.stop.is_set()

    async def _parts(self, params: Mapping[str, Any], size: int) -> str | None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        self.in_parts.add(task)
        try:
            copied = await loop.run_in_executor(self.parts, self.copier.copy, params, size)
        finally:
            self.in_parts.discard(task)
        return copied.version_id

    def _record(
        self, revision: _Revision, key: str, task: asyncio.Task[tuple[Result, int, str | None]]
    ) -> None:
        self.running -= 1
        revision.tasks.discard(task)  # a finished task is let go: memory stays bounded
        self.room.set()
        if not task.cancelled() and isinstance(task.exception(), EnvironmentProblem):
            self.fatal = self.fatal or task.exception()  # type: ignore[assignment]
            self.halted = True
        if task.cancelled() or isinstance(task.exception(), NotStarted):
            revision.tally.not_started += 1
            return
        tally, error = revision.tally, task.exception()
        if error is None:
            result, size, version_id = task.result()
            tally.count(result)
            self.shown.count(result)
            tally.bytes_copied += size
            tally.new_versions += _new_version(version_id)
            if result is Result.ANNOTATED and size > revision.plan.multipart_threshold:
                tally.multipart += 1
        else:
            failure = Failure(key, describe(error))
            tally.failed += 1
            tally.failures.append(failure)
            self.shown.failed += 1
            self.shown.failures.append(failure)  # a failure is told as it happens
        self.progress.finished(self.shown)

    async def _finish_in_order(
        self, revisions: Sequence[_Revision], carry_on: Callable[[int, Outcome], bool]
    ) -> list[Outcome]:
        """Each revision's marker once its objects are done, one after the other, in order."""
        loop = asyncio.get_running_loop()
        outcomes = []
        for index, revision in enumerate(revisions):
            await revision.listed_all.wait()
            while revision.tasks:  # an interrupt lets in-flight requests end; parts abort
                if self.stop.is_set():
                    await self._cancel_after_grace(revision)
                    break
                await asyncio.wait(set(revision.tasks), timeout=STOP_POLL)
            existing = await revision.marker_before if revision.marker_before else UNREAD
            outcome = self._outcome(revision, first=index == 0)
            if not self.halted:
                await loop.run_in_executor(None, self.finish, index, outcome, existing)
                outcome.elapsed = time.monotonic() - revision.started
                if not carry_on(index, outcome):
                    self.halted = True
            outcomes.append(outcome)
        return outcomes

    async def _cancel_after_grace(self, revision: _Revision) -> None:
        """After a signal, requests already sent get STOP_GRACE seconds to finish; the rest are
        cancelled, so the prompt comes back. A copy in parts is never cancelled halfway: its
        thread sees the stop and aborts the upload, and the pool waits for that."""
        deadline = time.monotonic() + STOP_GRACE
        while revision.tasks and time.monotonic() < deadline:
            await asyncio.wait(set(revision.tasks), timeout=STOP_POLL)
        for task in list(revision.tasks):
            if task not in self.in_parts:  # a copy in parts ends by its own abort
                task.cancel()
        if revision.tasks:
            await asyncio.wait(set(revision.tasks))

    def _outcome(self, revision: _Revision, first: bool) -> Outcome:
        tally, plan, failure = revision.tally, revision.plan, revision.listing_failure
        if failure is not None:
            if tally.listed == 0 and first:  # nothing done yet: the bucket is unusable
                raise cannot_list(plan.bucket, plan.prefix, describe(failure))
            tally.failed += 1
            tally.failures.append(Failure(plan.prefix, f"listing stopped: {describe(failure)}"))
        return Outcome(tally, MarkerState.WITHHELD, interrupted=self.stop.is_set())


async def _marker_now(objects: ObjectStore, plan: Plan) -> Mapping[str, str] | Unread | None:
    """The marker's metadata before this run writes it, read while the objects are done."""
    if plan.dry_run or not plan.write_marker or plan.shard is not None:
        return UNREAD
    try:
        head = await objects.head_object(plan.marker_key)
    except NotFound:
        return None
    except S3Error:
        return UNREAD
    except NetworkError:
        return UNREAD  # asked again at the end
    return dict(head.get("Metadata") or {})


async def _listing(store: Store, prefix: str, stop: threading.Event) -> AsyncIterator[Listed]:
    """The bucket's listing, one page at a time, the next page read ahead: on the engine's loop
    when the hot path's store can list (store/listing.py), else from a thread."""
    pages = getattr(store.objects, "list_pages", None)
    if pages is not None:
        async for batch in pages(prefix):
            if stop.is_set():
                return
            for listed in batch:
                yield listed
        return
    loop = asyncio.get_running_loop()
    keys = store.bucket.list_objects(prefix)

    def page() -> list[Listed]:
        return list(itertools.islice(keys, LISTING_PAGE))

    with ThreadPoolExecutor(1, thread_name_prefix="listing") as lister:
        ahead = loop.run_in_executor(lister, page)
        while not stop.is_set():
            batch = await ahead
            if not batch:
                return
            ahead = loop.run_in_executor(lister, page)
            for listed in batch:
                yield listed
        ahead.cancel()


def finish_marker(
    plan: Plan,
    bucket: Bucket,
    outcome: Outcome,
    announce: Callable[[Write], None],
    existing: Mapping[str, str] | Unread | None = UNREAD,
) -> None:
    """The marker, only when the tally is clean: written and read back, or why it was not.

    `existing`: the marker's metadata as read at the start of the run (None: no marker), to
    save a round trip; read here when not given."""
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
            write_marker(plan, bucket, outcome, existing)
        except RequestFailed as error:
            outcome.marker = MarkerState.WITHHELD
            tally.failed += 1
            tally.failures.append(Failure(plan.marker_key, f"marker: {describe(error)}"))


def write_marker(
    plan: Plan,
    bucket: Bucket,
    outcome: Outcome,
    existing: Mapping[str, str] | Unread | None = UNREAD,
) -> None:
    """PUT the marker unless an identical one is there, then read it back: trust, but verify."""
    if isinstance(existing, Unread):
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


async def read_marker(objects: ObjectStore, key: str) -> Marker | None:
    """HEAD on a folder's own key, as the poller issues it; None when there is no such object."""
    try:
        head = await objects.head_object(key)
    except NotFound:
        return None
    except RequestFailed as error:
        raise EnvironmentProblem(f"cannot read the marker {key}: {error}") from None
    return Marker(dict(head.get("Metadata") or {}), head.get("LastModified"))


def read_markers(store: Store, keys: list[str]) -> list[Marker | None]:
    """The marker at each key, read all at once through the run's flow control."""

    async def read_all() -> list[Marker | None]:
        return list(await asyncio.gather(*(read_marker(store.objects, key) for key in keys)))

    return asyncio.run(read_all()) if keys else []
