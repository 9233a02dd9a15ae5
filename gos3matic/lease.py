"""The pending marker as the folder's lease: one run at a time annotates and completes a revision.

A run that will write the complete marker (annotate, mark) takes the lease before its first copy:
it writes the pending marker conditionally (`If-None-Match: *` where there is none, `If-Match` on
the ETag it read where there is one), carrying its run id, since when, and which CI run it is.
The lease's body is a line naming the run and its renewal, so that its ETag (the body's MD5) is
this run's alone: every zero-byte object has the same ETag, which no condition can tell apart.
It is renewed every LEASE_RENEW seconds while the run lasts, and the complete marker (zero
bytes again, as GoCD's publisher writes it) is written `If-Match` on the lease's own ETag. A run
that ends without completing puts the folder back to a plain pending marker, so that a re-run
takes it at once. A live lease of another run refuses the run before any copy (LeaseHeld, exit
1); one not renewed for LEASE_STALE seconds (a crashed run) is taken over, or at once with
--take-over. Where a store ignores the conditions, the ETag read back decides.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gos3matic.core import ci
from gos3matic.core.contract import COMPLETED_KEY, TRACEBACK_KEY
from gos3matic.core.outcome import Failure, MarkerState, Outcome, Plan, Write
from gos3matic.engine import finish_marker
from gos3matic.errors import LeaseHeld, NetworkError, NotFound, PreconditionFailed, S3Error
from gos3matic.markers import PendingMarker, PendingState, pending_metadata
from gos3matic.store.protocols import Bucket

RUN_KEY = "gos3matic-run"
SINCE_KEY = "gos3matic-since"
FROM_KEY = "gos3matic-from"
LEASE_KEYS = frozenset({RUN_KEY, SINCE_KEY, FROM_KEY})
__all__ = ["Lease", "LeaseHeld", "refuse_if_leased"]
LEASE_RENEW = 30.0  # seconds between renewals
LEASE_STALE = 180.0  # a lease not renewed for this long is a crashed run's: taken over
STALE_ENV = "GOS3MATIC_LEASE_STALE"  # seconds, instead of LEASE_STALE (tests of a crashed run)


def stale_after() -> float:
    value = os.environ.get(STALE_ENV)
    try:
        return float(value) if value else LEASE_STALE
    except ValueError:
        return LEASE_STALE


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


def run_source(env: Mapping[str, str], plan: Plan) -> str:
    """Which CI run this is, as the lease tells another run: its page, else host and process."""
    system = ci.detect(env) or (ci.GOCD if ci.GOCD.detected(env) else None)
    url = plan.annotation.get(TRACEBACK_KEY)
    where = f"host {socket.gethostname()} pid {os.getpid()}"
    if system is not None:
        return f"{system.name} {url}" if url else f"{system.name} on {where}"
    return url or where


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")


def _etag(body: bytes) -> str:
    return f'"{hashlib.md5(body).hexdigest()}"'  # S3's ETag of a one-part PUT


def _same_etag(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.strip('"') == b.strip('"')


@dataclass(frozen=True)
class Holder:
    """Who holds a lease, as its marker says, and how long since it was renewed."""

    run: str
    since: str
    source: str
    idle: float  # seconds since its last renewal, by the store's clock

    def sentence(self, key: str, bucket: str) -> str:
        return (
            f"s3://{bucket}/{key} is leased by another run ({self.run}, since {self.since}, "
            f"from {self.source}; renewed {self.idle:.0f} s ago)"
        )


def holder_of(head: Mapping[str, Any]) -> Holder | None:
    """The holder a HEAD of the marker shows, None when it is no lease (or complete)."""
    metadata = dict(head.get("Metadata") or {})
    if COMPLETED_KEY in metadata:
        return None
    run = metadata.get(RUN_KEY)
    if not run:
        if not int(head.get("ContentLength") or 0):
            return None  # a plain pending marker (begin's, a released lease): no one's
        run = "unknown (this store kept none of the lease's metadata)"  # a lease has a body
    modified = head.get("LastModified")
    now = _server_time(head)
    idle = (now - modified).total_seconds() if isinstance(modified, dt.datetime) else 0.0
    return Holder(run, metadata.get(SINCE_KEY, "?"), metadata.get(FROM_KEY, "?"), max(idle, 0.0))


def _server_time(head: Mapping[str, Any]) -> dt.datetime:
    """The store's clock, from the answer's Date header; this machine's when there is none."""
    from email.utils import parsedate_to_datetime

    date = (head.get("ResponseMetadata") or {}).get("HTTPHeaders", {}).get("date")
    try:
        return parsedate_to_datetime(date) if date else dt.datetime.now(dt.timezone.utc)
    except (TypeError, ValueError):
        return dt.datetime.now(dt.timezone.utc)


def _head(bucket: Bucket, key: str) -> Mapping[str, Any] | None:
    try:
        return bucket.head_object(key)
    except NotFound:
        return None


def refuse_if_leased(bucket: Bucket, key: str) -> None:
    """A shard takes no lease, but starts nothing while another run's live lease is there."""
    try:
        head = _head(bucket, key)
    except (S3Error, NetworkError):
        return  # no telling; the marker's own write will meet the same answer
    holder = holder_of(head) if head is not None else None
    if holder is not None and holder.idle < stale_after():
        raise LeaseHeld(
            f"refusing: {holder.sentence(key, bucket.name)}; a shard starts once that run has ended"
        )


class _IfMatch:
    """The bucket as the complete marker's write sees it: its PUT conditional on the lease."""

    def __init__(self, lease: Lease) -> None:
        self._lease = lease

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lease.bucket, name)

    def put_marker(self, key: str, metadata: Mapping[str, str], **conditions: Any) -> str | None:
        if key == self._lease.key and not conditions and self._lease.etag is not None:
            return self._lease.put_if_match(metadata, self._lease.etag)
        return self._lease.bucket.put_marker(key, metadata, **conditions)


class Lease:
    """A Claim (see workflow.py): the pending marker held by this run until it completes it."""

    def __init__(
        self,
        bucket: Bucket,
        plan: Plan,
        source: str,
        take_over: bool = False,
        problem: Callable[[str], None] = lambda line: None,
        run_id: str | None = None,
    ) -> None:
        self.bucket, self.plan, self.key = bucket, plan, plan.marker_key
        self.run_id = run_id or new_run_id()
        self.since = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.source = _ascii(source)[:200]
        self.take_over, self.problem = take_over, problem
        self.pending: PendingMarker | None = None
        self.etag: str | None = None  # of this run's lease while it holds one
        self.taken_from: Holder | None = None
        self.lost: str | None = None  # why the lease is no longer this run's
        self._renewals = 0
        self.if_match_broken = False  # the store refused If-Match on the very ETag it reported
        self._lock = threading.Lock()
        self._stop_renewing = threading.Event()
        self._renewer: threading.Thread | None = None

    # -- taking it --

    @property
    def metadata(self) -> dict[str, str]:
        return {
            **pending_metadata(self.plan.marker_metadata),
            RUN_KEY: self.run_id,
            SINCE_KEY: self.since,
            FROM_KEY: self.source,
        }

    def _body(self) -> bytes:
        return f"gos3matic lease {self.run_id} {self._renewals}\n".encode()

    def acquire(self, holds_objects: Callable[[], bool]) -> None:
        """Take the lease, or raise LeaseHeld; nothing when the folder is complete already, or
        holds nothing (no folder the poller could trip on, as before the lease)."""
        head = _head(self.bucket, self.key)
        if head is None and not holds_objects():
            return
        for _ in range(2):  # a lost race is looked at once more: whose is it now?
            if head is not None:
                metadata = dict(head.get("Metadata") or {})
                if COMPLETED_KEY in metadata:
                    self.pending = PendingMarker(self.key, PendingState.ALREADY_COMPLETE, metadata)
                    return
                holder = holder_of(head)
                if holder is not None and holder.run != self.run_id:
                    if holder.idle < stale_after() and not self.take_over:
                        raise LeaseHeld(self._refusal(holder))
                    self.taken_from = holder
            body = self._body()
            try:
                if head is None:
                    version_id = self.bucket.put_marker(
                        self.key, self.metadata, if_none_match=True, body=body
                    )
                else:
                    version_id = self.put_if_match(self.metadata, str(head.get("ETag")), body)
            except PreconditionFailed:
                head = _head(self.bucket, self.key)
                continue
            self._read_back(body, version_id)
            return
        holder = holder_of(head) if head is not None else None
        raise LeaseHeld(
            self._refusal(holder)
            if holder
            else f"refusing: s3://{self.bucket.name}/{self.key} changed under this run twice "
            "while it took the lease; another run is at work on it"
        )

    def _refusal(self, holder: Holder) -> str:
        return (
            f"refusing before any copy: {holder.sentence(self.key, self.bucket.name)}. Two runs "
            f"on one folder would mix their annotations; it is taken over once not renewed for "
            f"{stale_after():.0f} s, or now with --take-over if that run is gone"
        )

    def _read_back(self, body: bytes, version_id: str | None) -> None:
        """Ours if the ETag reads back as our body's: a store that ignored the condition let
        another run's write win, and its run id says whose."""
        back = _head(self.bucket, self.key)
        if back is None:
            self.pending = PendingMarker(self.key, PendingState.MISSING, self.metadata, version_id)
            self.etag = _etag(body)
            return
        if not _same_etag(str(back.get("ETag")), _etag(body)):
            holder = holder_of(back)
            if holder is not None:
                raise LeaseHeld(self._refusal(holder))
            raise LeaseHeld(
                f"refusing: s3://{self.bucket.name}/{self.key} was rewritten by another writer "
                "while this run took the lease"
            )
        self.etag = str(back.get("ETag"))
        metadata = dict(back.get("Metadata") or {})
        kept = metadata.get(RUN_KEY) == self.run_id
        state = PendingState.WRITTEN if kept else PendingState.NOT_KEPT
        self.pending = PendingMarker(self.key, state, metadata or self.metadata, version_id)

    def put_if_match(self, metadata: Mapping[str, str], etag: str, body: bytes = b"") -> str | None:
        """PUT the marker If-Match ETAG. A store that answers 412 while a HEAD still shows that
        very ETag mishandles the condition (SeaweedFS does): from then on this run writes
        without it, and the ETag read back decides, as on a store that ignores conditions."""
        if not self.if_match_broken:
            try:
                return self.bucket.put_marker(self.key, metadata, if_match=etag, body=body)
            except PreconditionFailed:
                head = _head(self.bucket, self.key)
                landed = head is not None and _same_etag(str(head.get("ETag")), _etag(body))
                if landed and dict((head or {}).get("Metadata") or {}) == dict(metadata):
                    return None  # our write landed, its reply was lost: the retry's 412
                if head is None or not _same_etag(str(head.get("ETag")), etag):
                    raise
                self.if_match_broken = True
        return self.bucket.put_marker(self.key, metadata, body=body)

    @property
    def held(self) -> bool:
        return self.etag is not None and self.lost is None

    # -- renewing it --

    def start_renewing(self, every: float = LEASE_RENEW) -> None:
        if not self.held or self._renewer is not None:
            return

        def renew() -> None:
            while not self._stop_renewing.wait(every):
                self.renew()

        self._renewer = threading.Thread(target=renew, name="lease-renewal", daemon=True)
        self._renewer.start()

    def renew(self) -> None:
        """Rewrite the lease If-Match its ETag: its Last-Modified says the run is alive."""
        with self._lock:
            if not self.held:
                return
            self._renewals += 1
            body = self._body()
            try:
                self.put_if_match(self.metadata, self.etag or "", body)
            except PreconditionFailed:
                head = _head(self.bucket, self.key)
                holder = holder_of(head) if head is not None else None
                who = f"run {holder.run} from {holder.source}" if holder else "another writer"
                self.lost = f"the lease was taken over by {who}"
                self.problem(f"{self.lost}; this run will not complete the folder")
                return
            except (S3Error, NetworkError) as error:
                self.problem(
                    f"cannot renew the lease ({error}); trying again in {LEASE_RENEW:.0f} s"
                )
                return
            self.etag = _etag(body)

    def _stop(self) -> None:
        self._stop_renewing.set()
        if self._renewer is not None and self._renewer is not threading.current_thread():
            self._renewer.join()

    # -- completing it --

    def complete(
        self,
        plan: Plan,
        bucket: Bucket,
        outcome: Outcome,
        announce: Callable[[Write], None],
        existing: object,
    ) -> None:
        """The complete marker If-Match the lease; a run that does not complete gives it back."""
        self._stop()
        if self.etag is None:  # no lease taken: complete, or nothing was there
            finish_marker(plan, bucket, outcome, announce, existing)  # type: ignore[arg-type]
            return
        if self.lost is not None:
            outcome.marker = MarkerState.WITHHELD
            outcome.tally.failed += 1
            outcome.tally.failures.append(Failure(self.key, f"marker: {self.lost}"))
            return
        conditional: Any = _IfMatch(self)
        finish_marker(plan, conditional, outcome, announce, pending_metadata(plan.marker_metadata))
        if outcome.marker is MarkerState.NOT_KEPT:
            self._not_kept_or_taken(outcome)
        elif outcome.marker is MarkerState.WITHHELD and self._taken_meanwhile():
            outcome.tally.failures[-1] = Failure(self.key, f"marker: {self.lost}")
        if outcome.marker not in (MarkerState.WRITTEN, MarkerState.ALREADY_PRESENT):
            self.release()

    def _taken_meanwhile(self) -> bool:
        head = _head(self.bucket, self.key)
        holder = holder_of(head) if head is not None else None
        if holder is None or holder.run == self.run_id:
            return False
        self.lost = f"the lease was taken over by run {holder.run} from {holder.source}"
        return True

    def _not_kept_or_taken(self, outcome: Outcome) -> None:
        """NOT_KEPT is the store's fault only when no other run's id reads back."""
        if self._taken_meanwhile():
            outcome.marker = MarkerState.WITHHELD
            outcome.tally.failed += 1
            outcome.tally.failures.append(Failure(self.key, f"marker: {self.lost}"))

    def release(self) -> None:
        """Give the folder back as a plain pending marker, If-Match this run's lease."""
        self._stop()
        with self._lock:
            if not self.held:
                return
            # Taken over, or unreachable: then it goes stale, and is taken over then.
            with contextlib.suppress(S3Error, NetworkError):
                self.put_if_match(pending_metadata(self.plan.marker_metadata), self.etag or "")
            self.etag = None
