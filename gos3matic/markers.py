"""Markers outside annotate's last step: read every folder's, write a pending one, un-complete one.

GoCD's poller HEADs the marker of every folder of a package at every poll, and a folder without
one makes the whole poll throw (docs/gocd-contract.md). A folder is safe in two states only:
complete (a marker with `completed`) and pending (a marker without it). `begin`, annotate's
first step, `backfill` and `repair` put folders in the pending state through this module; only
the engine's `write_marker` completes them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from itertools import islice

from gos3matic.core.contract import COMPLETED_KEY, is_revision_name, last_segment
from gos3matic.core.outcome import Plan
from gos3matic.core.poller import Folder, folder_name
from gos3matic.engine import read_markers
from gos3matic.errors import InputError, PreconditionFailed, RequestFailed, cannot_list
from gos3matic.store.protocols import Bucket, Store


def read_folders(store: Store, package: str) -> list[Folder]:
    """Every folder of PACKAGE in listing order, each with what a HEAD of its marker answers:
    the poller HEADs them all, those it cannot parse included."""
    bucket = store.bucket
    try:
        names = [folder_name(prefix, package) for prefix in bucket.list_folders(package)]
    except RequestFailed as error:
        raise cannot_list(bucket.name, package, error) from None
    markers = read_markers(store, [f"{package}{name}/" for name in names])
    return [Folder(name, marker) for name, marker in zip(names, markers, strict=True)]


# -- revision folders below a PATH ----------------------------------------------------------------

BELOW_LISTINGS = 64  # delimiter listings a search for revision folders below PATH may send


def revision_below(bucket: Bucket, prefix: str, listings: int = BELOW_LISTINGS) -> str | None:
    """The first revision folder found below PREFIX, shallowest first, or None.

    A folder one level down named <N>.<M> makes PREFIX a package; deeper, a folder named
    <N>.<M> counts when it has a marker (an object at its own key), so that a revision's own
    content in folders named like versions (a Maven layout: lib/3.6/) is not taken for one.
    One listing per folder visited and per deeper <N>.<M> folder, at most LISTINGS in all: a
    revision of a few folders costs a few; past the budget the search stops, finding nothing.
    """
    level, depth, sent = [prefix], 1, 0
    try:
        while level and sent < listings:
            deeper: list[str] = []
            for folder in level:
                if sent >= listings:
                    break
                sent += 1
                for child in bucket.list_folders(folder):
                    if is_revision_name(last_segment(child)):
                        if depth == 1:
                            return child
                        if sent < listings:
                            sent += 1
                            if _has_marker(bucket, child):
                                return child
                    deeper.append(child)
            level, depth = deeper, depth + 1
    except RequestFailed as error:
        raise cannot_list(bucket.name, prefix, error) from None
    return None


def _has_marker(bucket: Bucket, folder: str) -> bool:
    """Whether an object is listed at the folder's own key: the first key a listing gives. A HEAD
    would not do: SeaweedFS answers one for any directory, marker or not."""
    first = next(iter(bucket.list_objects(folder)), None)
    return first is not None and first.key == folder


def refuse_revisions_below(bucket: Bucket, prefix: str, command: str) -> None:
    """Exit 2 before any write when revision folders are below PREFIX: annotating or marking it
    would relabel every one of them and write a marker GoCD misreads. The command to run
    instead is named: backfill for the package, or one revision."""
    found = revision_below(bucket, prefix)
    if found is None:
        return
    package = found.rstrip("/").rpartition("/")[0]
    raise InputError(
        f"refusing {prefix}: it holds revision folders ({found} among them), and {command} on it "
        f"would touch every one; name one revision, 'gos3matic {command} {bucket.name} "
        f"{found.rstrip('/')}', or complete the package's: 'gos3matic backfill {bucket.name} "
        f"{package}'"
    )


# -- the pending marker ---------------------------------------------------------------------------


class PendingState(enum.Enum):
    WRITTEN = "written"  # PUT by this run and read back with its metadata
    NOT_KEPT = "not-kept"  # PUT and there, but the store dropped its metadata: still pending
    ALREADY_PENDING = "already-pending"  # a marker without `completed` was there: left alone
    ALREADY_COMPLETE = "already-complete"  # complete: left alone, `completed` is never taken
    WOULD_WRITE = "would-write"  # --dry-run
    MISSING = "missing"  # PUT answered, yet no object reads back: the folder still has none

    @property
    def sentence(self) -> str:
        """The state in a person's words, for summaries (--json keeps the value)."""
        return _PENDING_SENTENCES[self]


_PENDING_SENTENCES = {
    PendingState.WRITTEN: "written and read back",
    PendingState.NOT_KEPT: "written, but the store dropped its metadata",
    PendingState.ALREADY_PENDING: "already there",
    PendingState.ALREADY_COMPLETE: "already complete",
    PendingState.WOULD_WRITE: "would be written",
    PendingState.MISSING: "written, yet nothing reads back",
}


@dataclass(frozen=True)
class PendingMarker:
    """What became of one folder's pending marker, and what reads back from its key."""

    key: str
    state: PendingState
    metadata: Mapping[str, str] = field(default_factory=dict)  # sent, or found there
    version_id: str | None = None  # of the marker this call wrote, in a versioned bucket

    @property
    def new_version(self) -> bool:
        # "null": versioning suspended, the write replaced the null version instead of adding one
        return self.version_id is not None and self.version_id != "null"

    @property
    def written(self) -> bool:
        return self.state in (PendingState.WRITTEN, PendingState.NOT_KEPT, PendingState.MISSING)

    @property
    def pollable(self) -> bool:
        """Whether the poller can HEAD it now (a dry run changes nothing, so: not yet)."""
        return self.state not in (PendingState.MISSING, PendingState.WOULD_WRITE)

    def sentence(self, bucket: str) -> str:
        where = f"s3://{bucket}/{self.key}"
        return {
            PendingState.WRITTEN: f"pending marker written and read back: {where}",
            PendingState.NOT_KEPT: (
                f"pending marker written: {where}; the store did not keep its metadata (some "
                "S3-compatible stores, SeaweedFS among them, drop it on keys ending in '/'), "
                "but the object is there, so the poller skips the folder"
            ),
            PendingState.ALREADY_PENDING: f"a marker without '{COMPLETED_KEY}' is already "
            f"there, left as it is: {where}",
            PendingState.ALREADY_COMPLETE: f"already complete, nothing changed: {where}",
            PendingState.WOULD_WRITE: (
                f"would write pending marker {where} with {dict(self.metadata)}"
            ),
            PendingState.MISSING: f"pending marker written, but nothing reads back at {where}",
        }[self.state]


def pending_metadata(marker_metadata: Mapping[str, str]) -> dict[str, str]:
    """The pending marker carries the annotation, as the complete one will, minus `completed`."""
    return {key: value for key, value in marker_metadata.items() if key != COMPLETED_KEY}


def _found(key: str, metadata: Mapping[str, str]) -> PendingMarker:
    state = (
        PendingState.ALREADY_COMPLETE if COMPLETED_KEY in metadata else PendingState.ALREADY_PENDING
    )
    return PendingMarker(key, state, dict(metadata))


def write_pending(
    bucket: Bucket, key: str, metadata: Mapping[str, str], dry_run: bool = False
) -> PendingMarker:
    """A pending marker at KEY unless a marker is there already; never over a complete one.

    The PUT is conditional (`If-None-Match: *`): a marker written by someone else since our
    HEAD is never overwritten, S3 answers 412 and we report what is there. A store that ignores
    the condition writes anyway; the HEAD just before the PUT is then the guard. The read-back
    says whether the store kept the metadata: the folder is safe either way once the object is
    there.
    """
    wanted = pending_metadata(metadata)
    existing = bucket.head_metadata(key)
    if existing is not None:
        return _found(key, existing)
    if dry_run:
        return PendingMarker(key, PendingState.WOULD_WRITE, wanted)
    try:
        version_id = bucket.put_marker(key, wanted, if_none_match=True)
    except PreconditionFailed:
        # 412 when If-None-Match finds the key, 409 when the write raced another
        there = bucket.head_metadata(key)
        if there is None:  # a conflicting write that has not landed yet: say so, never guess
            raise
        return _found(key, there)
    back = bucket.head_metadata(key)
    if back is None:
        return PendingMarker(key, PendingState.MISSING, wanted, version_id)
    if COMPLETED_KEY in back:  # completed by someone else right after our PUT: nothing lost
        return replace(_found(key, back), version_id=version_id)
    kept = all(back.get(name) == value for name, value in wanted.items())
    state = PendingState.WRITTEN if kept else PendingState.NOT_KEPT
    return PendingMarker(key, state, back, version_id)


def pending_before_annotating(bucket: Bucket, plan: Plan) -> PendingMarker | None:
    """Annotate's first step: a pending marker when objects are there but no marker yet.

    None when PATH holds nothing yet: there is no folder the poller could trip on, and a run
    that ends 'nothing to annotate' should not leave one behind.
    """
    key = plan.marker_key
    existing = bucket.head_metadata(key)
    if existing is not None:
        return _found(key, existing)
    first = list(islice((o for o in bucket.list_objects(plan.prefix) if o.key != key), 1))
    if not first:
        return None
    return write_pending(bucket, key, plan.marker_metadata)


# -- taking `completed` off a marker --------------------------------------------------------------


class WithdrawState(enum.Enum):
    WITHDRAWN = "withdrawn"  # rewritten without `completed`, the rest of its metadata kept
    WOULD_WITHDRAW = "would-withdraw"  # --dry-run
    NOT_COMPLETE = "not-complete"  # no `completed` on it (any more): nothing to do
    REFUSED = "refused"  # not a zero-byte marker: rewriting it would lose its content
    STILL_COMPLETE = "still-complete"  # rewritten, yet `completed` reads back


@dataclass(frozen=True)
class Withdrawal:
    key: str
    state: WithdrawState
    kept: Mapping[str, str] = field(default_factory=dict)  # the metadata it keeps

    @property
    def done(self) -> bool:
        return self.state in (WithdrawState.WITHDRAWN, WithdrawState.NOT_COMPLETE)

    def sentence(self, bucket: str) -> str:
        where = f"s3://{bucket}/{self.key}"
        keeping = ", ".join(sorted(self.kept)) or "no other metadata"
        return {
            WithdrawState.WITHDRAWN: f"marker rewritten without '{COMPLETED_KEY}' (keeping "
            f"{keeping}): {where}",
            WithdrawState.WOULD_WITHDRAW: f"would rewrite marker {where} without "
            f"'{COMPLETED_KEY}', keeping {keeping}",
            WithdrawState.NOT_COMPLETE: f"no '{COMPLETED_KEY}' on it any more: {where}",
            WithdrawState.REFUSED: f"not rewritten: {where} is not a zero-byte marker, and "
            "rewriting it would replace its content; move or delete that folder",
            WithdrawState.STILL_COMPLETE: f"rewritten, but '{COMPLETED_KEY}' still reads back: "
            f"{where}",
        }[self.state]


def withdraw_completed(bucket: Bucket, key: str, dry_run: bool = False) -> Withdrawal:
    """Rewrite the marker at KEY without `completed`, every other metadata key kept: pending."""
    head = bucket.head_object(key)
    metadata = dict(head.get("Metadata") or {})
    kept = {name: value for name, value in metadata.items() if name != COMPLETED_KEY}
    if COMPLETED_KEY not in metadata:
        return Withdrawal(key, WithdrawState.NOT_COMPLETE, kept)
    if int(head.get("ContentLength", 0)):
        return Withdrawal(key, WithdrawState.REFUSED, kept)
    if dry_run:
        return Withdrawal(key, WithdrawState.WOULD_WITHDRAW, kept)
    bucket.put_marker(key, kept)
    back = bucket.head_metadata(key) or {}
    state = WithdrawState.STILL_COMPLETE if COMPLETED_KEY in back else WithdrawState.WITHDRAWN
    return Withdrawal(key, state, kept)
