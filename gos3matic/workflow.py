"""What one revision goes through, the same in every command that completes revisions.

    claim     its pending marker: from here GoCD's poll skips the folder instead of failing
    work      its objects annotated (all, or one shard's share), or checked, or trusted
    complete  the complete marker, only after clean work, written and read back: claim.complete
    outcome   what became of it, one Result in the words of every command's summary and --json

`annotate` runs one revision through it, `mark` one that it checks (or trusts, --no-check), and
`backfill` many, in ascending order, stopping at the first that fails. A Claim is whatever
holds the folder while the work runs: the pending marker today; any object with `pending` and
`complete()` can take its place (a lease that completes the marker only if it still holds it).
"""

from __future__ import annotations

import enum
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from gos3matic.core.metadata import check_plan
from gos3matic.core.outcome import MarkerState, Outcome, Plan, Progress, Tally, Write
from gos3matic.engine import UNREAD, Unread, annotate_revisions, finish_marker
from gos3matic.errors import RequestFailed, cannot_list
from gos3matic.exitcodes import ExitCode
from gos3matic.lease import Lease, refuse_if_leased, run_source
from gos3matic.markers import PendingMarker, pending_before_annotating
from gos3matic.store.protocols import Bucket, Store


class Work(enum.Enum):
    """What is done to a revision's objects before its marker."""

    ANNOTATE = "annotate"  # each annotated (the plan's shard only, if it has one)
    CHECK = "check"  # each read: all must carry check_plan(plan)'s annotation (mark)
    TRUST = "trust"  # none read (mark --no-check): the marker if anything is there


class Result(enum.Enum):
    """What became of one revision: backfill's `result` in --json, and every exit code's cause."""

    COMPLETED = "completed"  # marker written (or already there) and read back
    WOULD_COMPLETE = "would-complete"  # --dry-run
    NO_MARKER = "disabled"  # --no-marker: objects annotated, marker left alone
    SHARE_ANNOTATED = "share-annotated"  # --shard: this share annotated; mark completes it
    EMPTY = "empty"  # nothing under it: no marker
    FAILED = "failed"  # an object, the listing or the marker write failed
    NOT_ANNOTATED = "not-annotated"  # a check found objects without the annotation
    MARKER_NOT_KEPT = "marker-not-kept"  # written, but the store dropped its metadata
    INTERRUPTED = "interrupted"
    NOT_STARTED = "not-started"  # an earlier revision stopped the run

    @property
    def stops_the_run(self) -> bool:
        """The revision did not complete and a later one must not: the poller only moves up."""
        return self in STOPPING


STOPPING = frozenset(
    {Result.FAILED, Result.INTERRUPTED, Result.MARKER_NOT_KEPT, Result.NOT_ANNOTATED}
)

_BY_MARKER = {
    MarkerState.WRITTEN: Result.COMPLETED,
    MarkerState.ALREADY_PRESENT: Result.COMPLETED,
    MarkerState.NOT_KEPT: Result.MARKER_NOT_KEPT,
    MarkerState.EMPTY: Result.EMPTY,
    MarkerState.DRY_RUN: Result.WOULD_COMPLETE,
    MarkerState.SHARDED: Result.SHARE_ANNOTATED,
    MarkerState.DISABLED: Result.NO_MARKER,
    MarkerState.INTERRUPTED: Result.INTERRUPTED,
    MarkerState.WITHHELD: Result.FAILED,
}


def exit_code(results: Sequence[Result], empty_fails: bool = True) -> ExitCode:
    """The exit code of a run over these revisions; an EMPTY one fails unless `empty_fails` is
    off (backfill: a folder holding only its marker is left pending, not an error)."""
    found = set(results)
    if Result.INTERRUPTED in found:
        return ExitCode.INTERRUPTED
    if found & {Result.FAILED, Result.NOT_ANNOTATED} or (empty_fails and Result.EMPTY in found):
        return ExitCode.FAILED
    if Result.MARKER_NOT_KEPT in found:
        return ExitCode.MARKER_NOT_KEPT
    return ExitCode.OK


# -- claim ----------------------------------------------------------------------------------------

Announce = Callable[[Write], None]
ExistingMarker = Mapping[str, str] | Unread | None  # read before the work; UNREAD: read it then


class Claim(Protocol):
    """What holds a revision's folder while its objects are worked on."""

    @property
    def pending(self) -> PendingMarker | None:
        """The pending marker this claim found or wrote; None when none was asked or possible."""
        ...

    def complete(
        self,
        plan: Plan,
        bucket: Bucket,
        outcome: Outcome,
        announce: Announce,
        existing: ExistingMarker,
    ) -> None:
        """The complete marker, only when OUTCOME is clean; OUTCOME.marker says what happened."""
        ...


@dataclass(frozen=True)
class PendingClaim:
    """The claim of a pending marker: completed by the engine's marker step (write, read back)."""

    pending: PendingMarker | None = None

    def complete(
        self,
        plan: Plan,
        bucket: Bucket,
        outcome: Outcome,
        announce: Announce,
        existing: ExistingMarker,
    ) -> None:
        finish_marker(plan, bucket, outcome, announce, existing)


NO_CLAIM = PendingClaim()  # mark: the shards' runs left the pending marker


def claim(
    bucket: Bucket,
    plan: Plan,
    problem: Callable[[str], None],
    take_over: bool = False,
    env: Mapping[str, str] | None = None,
) -> Claim:
    """The first write of a run that completes the folder: its lease (lease.py), a pending marker
    carrying this run's id, so that GoCD's poll skips the folder, instead of failing, while the
    run lasts and after a failed or interrupted one, and no second run works on it meanwhile
    (LeaseHeld, exit 1). A shard takes no lease: a plain pending marker if none is there, and
    LeaseHeld while another run's live lease is. Never over a complete marker; none in a dry run
    or --no-marker. A failure is told to PROBLEM and the run carries on: the objects can still
    be annotated."""
    if plan.dry_run:
        return NO_CLAIM
    if not plan.write_marker:  # --no-marker: no lease, but no copy beside another run's either
        refuse_if_leased(bucket, plan.marker_key)
        return NO_CLAIM
    try:
        if plan.shard is None:
            lease = Lease(
                bucket,
                plan,
                run_source(os.environ if env is None else env, plan),
                take_over,
                problem,
            )
            lease.acquire(lambda: holds_objects(bucket, plan))
            lease.start_renewing()
            return lease
        refuse_if_leased(bucket, plan.marker_key)
        return PendingClaim(pending_before_annotating(bucket, plan))
    except RequestFailed as error:
        problem(
            f"cannot write the pending marker s3://{plan.bucket}/{plan.marker_key} ({error}); "
            "carrying on, but GoCD's poll of this package fails until the folder has a marker"
        )
        return NO_CLAIM


# -- one revision ---------------------------------------------------------------------------------


@dataclass
class Revision:
    """One revision through the workflow: its plan and work, its claim, then its outcome."""

    plan: Plan  # the marker's: what `complete` writes (its objects' too, for Work.ANNOTATE)
    work: Work = Work.ANNOTATE
    claim: Claim = NO_CLAIM
    outcome: Outcome | None = None

    @property
    def work_plan(self) -> Plan:
        """The plan the engine runs over the objects: a check is a dry run of check_plan."""
        return check_plan(self.plan) if self.work is Work.CHECK else self.plan

    @property
    def checked(self) -> bool:
        """The objects were only read (or trusted), never written."""
        return self.work is not Work.ANNOTATE

    @property
    def result(self) -> Result:
        outcome = self.outcome
        if outcome is None:
            return Result.NOT_STARTED
        if outcome.interrupted:
            return Result.INTERRUPTED
        if outcome.tally.failed:
            return Result.FAILED
        if self.work is Work.CHECK and outcome.tally.would_annotate:
            return Result.NOT_ANNOTATED
        return _BY_MARKER[outcome.marker]

    @property
    def stops_the_run(self) -> bool:
        return self.result.stops_the_run


class RunProgress(Progress, Protocol):
    """The progress a Watch shows over one engine run: told as it goes, closed at its end."""

    def watching(self, store: Store, plan: Plan) -> Store: ...

    def close(self, tally: Tally | None = None) -> None: ...


class Watch(Protocol):
    """What a command shows while its revisions go through the workflow."""

    def progress(self, revisions: Sequence[Revision]) -> RunProgress:
        """The display for one engine run over these revisions."""
        ...

    def announce(self, revision: Revision, write: Write) -> None:
        """A write of a dry run, or an object a check found not annotated."""
        ...

    def starting(self, revision: Revision) -> None:
        """Before a revision that runs alone (not one of an overlapped batch)."""
        ...

    def finished(self, revision: Revision) -> None:
        """Its outcome is known: marker written or withheld."""
        ...


class Order(enum.Enum):
    """How several revisions go through: always in the order given, markers never out of it."""

    OVERLAPPED = "overlapped"  # one pipeline: later objects worked on while earlier ones finish
    ONE_BY_ONE = "one-by-one"  # each alone, its own progress, after the one before ended
    INDEPENDENT = "independent"  # one by one, and a failed one does not stop the others (--shard)


def run(
    revisions: Sequence[Revision],
    store: Store,
    stop: threading.Event,
    watch: Watch,
    order: Order = Order.ONE_BY_ONE,
) -> None:
    """Every revision through work -> complete -> outcome, in order, each outcome set on it.

    Unless INDEPENDENT, the run stops at the first revision whose result stops it; the later
    ones keep no outcome (NOT_STARTED) and get no marker. A stop signal starts nothing new.
    """
    trusted = [revision for revision in revisions if revision.work is Work.TRUST]
    if trusted and len(trusted) != len(revisions):
        raise ValueError("Work.TRUST revisions run alone")  # nothing to overlap them with
    if order is Order.OVERLAPPED and not trusted:
        _through_engine(revisions, store, stop, watch, stop_at_failure=True)
        return
    for index, revision in enumerate(revisions):
        if index and stop.is_set():  # the first always runs: its outcome tells the interruption
            break
        watch.starting(revision)
        if revision.work is Work.TRUST:
            _trust(revision, store, watch)
        else:
            _through_engine([revision], store, stop, watch, stop_at_failure=False)
        if order is not Order.INDEPENDENT and revision.stops_the_run:
            break


def _through_engine(
    revisions: Sequence[Revision],
    store: Store,
    stop: threading.Event,
    watch: Watch,
    stop_at_failure: bool,
) -> None:
    """The revisions' objects through one engine run; each marker by its claim, in order."""
    if not revisions:
        return
    by_prefix = {revision.plan.prefix: revision for revision in revisions}

    def announce(write: Write) -> None:  # the engine's, for every revision: found by its key
        watch.announce(_owner(by_prefix, write.key), write)

    def complete(index: int, outcome: Outcome, existing: ExistingMarker) -> None:
        revision = revisions[index]
        pending = revision.claim.pending
        if pending is not None and pending.new_version:
            outcome.tally.new_versions += 1  # the pending marker is a version this run made
        if revision.work is Work.CHECK:
            if outcome.tally.would_annotate:
                release = getattr(revision.claim, "release", None)
                if release is not None:
                    release()  # a lease: the folder back to plain pending, for the re-run
                return  # objects lack the annotation: the marker is withheld
            existing = UNREAD  # a check's dry run read no marker
        revision.claim.complete(
            revision.plan, store.bucket, outcome, lambda w: watch.announce(revision, w), existing
        )

    def carry_on(index: int, outcome: Outcome) -> bool:
        revision = revisions[index]
        revision.outcome = outcome
        watch.finished(revision)
        return not (stop_at_failure and revision.stops_the_run)

    progress = watch.progress(revisions)
    plans = [revision.work_plan for revision in revisions]
    seen = progress.watching(store, plans[0]) if len(plans) == 1 else store
    try:
        outcomes = annotate_revisions(plans, seen, progress, stop, announce, carry_on, complete)
    except BaseException:
        progress.close()
        raise
    progress.close(outcomes[0].tally if len(outcomes) == 1 else None)


def _owner(by_prefix: Mapping[str, Revision], key: str) -> Revision:
    """The revision a key is under: its prefix is the key cut after one of its '/'."""
    for end in (i + 1 for i, char in enumerate(key) if char == "/"):
        revision = by_prefix.get(key[:end])
        if revision is not None:
            return revision
    return next(iter(by_prefix.values()))  # a single revision's own marker at its prefix


def _trust(revision: Revision, store: Store, watch: Watch) -> None:
    """mark --no-check: read no object; the marker when anything but it is under the prefix."""
    plan = revision.plan
    outcome = Outcome(Tally(listed=int(holds_objects(store.bucket, plan))), MarkerState.WITHHELD)
    revision.claim.complete(
        plan, store.bucket, outcome, lambda write: watch.announce(revision, write), UNREAD
    )
    revision.outcome = outcome
    watch.finished(revision)


def holds_objects(bucket: Bucket, plan: Plan) -> bool:
    """Whether anything but the marker is under the prefix: one listing page at most."""
    try:
        return any(listed.key != plan.marker_key for listed in bucket.list_objects(plan.prefix))
    except RequestFailed as error:
        raise cannot_list(plan.bucket, plan.prefix, error) from None
