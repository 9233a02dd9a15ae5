"""The revision workflow against an in-memory S3: claim -> work -> complete -> outcome.

What every command relies on: a revision's marker is completed only after clean work and only
through its claim; a check accepts objects that other stages stamped with their own user and
traceback URL, and withholds the marker when one lacks the label; several revisions complete in
ascending order and the first that fails stops the rest (unless they are independent shards).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import pytest
from support.inprocess import without_retry_waits
from support.memstore import INTERNAL_ERROR, MemoryStore

from gos3matic import workflow
from gos3matic.core.contract import COMPLETED_KEY, Annotation, normalize_prefix
from gos3matic.core.metadata import encode_annotation
from gos3matic.core.outcome import MarkerState, Outcome, Plan, Tally, Write
from gos3matic.engine import finish_marker
from gos3matic.exitcodes import ExitCode
from gos3matic.markers import PendingState
from gos3matic.store.protocols import Bucket, Store
from gos3matic.workflow import Result, Work

PACKAGE = "app/build/package/"


@pytest.fixture(autouse=True)
def _no_retry_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    without_retry_waits(monkeypatch)


def plan_for(revision: str, user: str = "shard-stage", **changes) -> Plan:
    annotation = Annotation(
        label=revision.split(".")[0],
        user=user,
        traceback_url=f"https://gocd.example.com/go/tab/build/detail/app/{revision}/{user}",
    )
    return Plan(
        bucket="bucket",
        prefix=normalize_prefix(PACKAGE + revision),
        annotation=encode_annotation(annotation.items()),
        marker_metadata=encode_annotation(annotation.marker_items()),
        workers=8,
        **changes,
    )


class Silent:
    """A progress that shows nothing."""

    def listed(self, tally: Tally) -> None: ...

    def finished(self, tally: Tally) -> None: ...

    def listing_complete(self, tally: Tally) -> None: ...

    def watching(self, store: Store, plan: Plan) -> Store:
        return store

    def close(self, tally: Tally | None = None) -> None: ...


@dataclass
class Recorder:
    """A Watch that writes down what the workflow told it, in order."""

    events: list[tuple[str, str]] = field(default_factory=list)
    announced: list[Write] = field(default_factory=list)

    def progress(self, revisions: Sequence[workflow.Revision]) -> Silent:
        self.events.append(("progress", ",".join(r.plan.prefix for r in revisions)))
        return Silent()

    def announce(self, revision: workflow.Revision, write: Write) -> None:
        self.announced.append(write)

    def starting(self, revision: workflow.Revision) -> None:
        self.events.append(("starting", revision.plan.prefix))

    def finished(self, revision: workflow.Revision) -> None:
        self.events.append(("finished", revision.plan.prefix))


def seeded(memory: MemoryStore, plan: Plan, count: int = 3) -> None:
    for number in range(count):
        memory.put(f"{plan.prefix}part-{number}.bin", f"content {number}".encode())


def run(revisions: list[workflow.Revision], memory: MemoryStore, **kwargs) -> Recorder:
    watch = Recorder()
    workflow.run(revisions, memory.store(), threading.Event(), watch, **kwargs)
    return watch


def completed(memory: MemoryStore, plan: Plan) -> bool:
    return plan.marker_key in memory.stored and COMPLETED_KEY in memory.head(plan.marker_key).get(
        "Metadata", {}
    )


# -- one revision ---------------------------------------------------------------------------------


def test_annotate_claims_the_folder_then_completes_it_after_its_objects():
    memory, plan = MemoryStore(), plan_for("42.1")
    seeded(memory, plan)
    claim = workflow.claim(memory, plan, pytest.fail)
    assert claim.pending is not None and claim.pending.state is PendingState.WRITTEN
    assert not completed(memory, plan)  # pending: the poller skips the folder meanwhile

    revision = workflow.Revision(plan, Work.ANNOTATE, claim)
    run([revision], memory)

    assert revision.result is Result.COMPLETED
    assert completed(memory, plan)
    assert memory.head(plan.marker_key)["Metadata"] == dict(plan.marker_metadata)
    for number in range(3):
        metadata = memory.head(f"{plan.prefix}part-{number}.bin")["Metadata"]
        assert metadata == dict(plan.annotation)
    writes = memory.written_keys()
    assert writes[0] == writes[-1] == plan.marker_key  # pending first, complete last


def test_a_check_accepts_the_shards_own_user_and_traceback_url():
    """The stage that marks has another GO_TRIGGER_USER and traceback URL than the shards'."""
    memory = MemoryStore()
    shards = plan_for("42.1", user="shard-stage", write_marker=False)
    marking = plan_for("42.1", user="mark-stage")
    seeded(memory, shards)
    run([workflow.Revision(shards, Work.ANNOTATE)], memory)
    assert shards.marker_key not in memory.stored
    before = len(memory.written_keys())

    revision = workflow.Revision(marking, Work.CHECK)
    run([revision], memory)

    assert revision.result is Result.COMPLETED
    assert revision.outcome is not None and revision.outcome.tally.skipped == 3
    assert memory.head(marking.marker_key)["Metadata"] == dict(marking.marker_metadata)
    assert memory.written_keys()[before:] == [marking.marker_key]  # a check writes no object


def test_a_check_withholds_the_marker_when_one_object_lacks_the_label():
    memory, plan = MemoryStore(), plan_for("42.1")
    seeded(memory, plan, 2)
    run([workflow.Revision(replace(plan, write_marker=False), Work.ANNOTATE)], memory)
    memory.put(plan.prefix + "late.bin", b"uploaded after the shards ran")
    before = len(memory.written_keys())

    revision = workflow.Revision(plan, Work.CHECK)
    watch = run([revision], memory)

    assert revision.result is Result.NOT_ANNOTATED
    assert workflow.exit_code([revision.result]) is ExitCode.FAILED
    assert plan.marker_key not in memory.stored
    assert [w.key for w in watch.announced] == [plan.prefix + "late.bin"]
    assert memory.written_keys()[before:] == []


def test_trust_writes_the_marker_without_reading_an_object():
    memory, plan = MemoryStore(), plan_for("42.1")
    seeded(memory, plan)
    revision = workflow.Revision(plan, Work.TRUST)
    run([revision], memory)
    assert revision.result is Result.COMPLETED
    assert completed(memory, plan)
    assert memory.sent("HeadObject", plan.prefix + "part-0.bin") == 0


@dataclass
class Lease:
    """A claim that completes the marker only while it still holds the folder."""

    held: bool
    completions: list[Outcome] = field(default_factory=list)
    pending = None

    def complete(self, plan: Plan, bucket: Bucket, outcome: Outcome, announce, existing) -> None:
        self.completions.append(outcome)
        if self.held:
            finish_marker(plan, bucket, outcome, announce, existing)
        else:
            outcome.marker = MarkerState.WITHHELD
            outcome.tally.failed += 1


def test_the_marker_is_written_through_the_claim_alone():
    memory = MemoryStore()
    kept, lost = plan_for("41.1"), plan_for("42.1")
    for plan in (kept, lost):
        seeded(memory, plan)
    held, taken = Lease(held=True), Lease(held=False)
    revisions = [workflow.Revision(kept, claim=held), workflow.Revision(lost, claim=taken)]

    run(revisions, memory, order=workflow.Order.OVERLAPPED)

    assert len(held.completions) == len(taken.completions) == 1
    assert completed(memory, kept) and lost.marker_key not in memory.stored
    assert [r.result for r in revisions] == [Result.COMPLETED, Result.FAILED]


def test_a_claim_is_never_asked_to_complete_after_failed_work():
    memory, plan = MemoryStore(), plan_for("42.1")
    seeded(memory, plan)
    memory.fail("CopyObject", INTERNAL_ERROR, times=None, key=plan.prefix + "part-1.bin")
    lease = Lease(held=True)
    revision = workflow.Revision(plan, claim=lease)
    run([revision], memory)
    assert revision.result is Result.FAILED
    assert lease.completions[0].marker is MarkerState.WITHHELD  # asked, and it wrote nothing
    assert plan.marker_key not in memory.stored


# -- several revisions ----------------------------------------------------------------------------


@pytest.mark.parametrize("order", [workflow.Order.OVERLAPPED, workflow.Order.ONE_BY_ONE])
def test_revisions_complete_in_order_and_the_first_failure_stops_the_rest(order):
    memory = MemoryStore()
    plans = [plan_for(name) for name in ("40.1", "41.1", "42.1")]
    for plan in plans:
        seeded(memory, plan)
    memory.fail("CopyObject", INTERNAL_ERROR, times=None, key=plans[1].prefix + "part-0.bin")
    revisions = [workflow.Revision(plan) for plan in plans]

    watch = run(revisions, memory, order=order)

    assert [r.result for r in revisions] == [Result.COMPLETED, Result.FAILED, Result.NOT_STARTED]
    assert [completed(memory, plan) for plan in plans] == [True, False, False]
    assert plans[2].marker_key not in memory.stored
    finished = [prefix for event, prefix in watch.events if event == "finished"]
    assert finished == [plans[0].prefix, plans[1].prefix]
    assert workflow.exit_code([r.result for r in revisions]) is ExitCode.FAILED


def test_independent_shares_go_on_past_a_failed_one():
    memory = MemoryStore()
    plans = [plan_for(name, shard=(1, 2)) for name in ("41.1", "42.1")]
    for plan in plans:
        seeded(memory, plan, 8)
    for number in range(8):
        key = f"{plans[0].prefix}part-{number}.bin"
        memory.fail("HeadObject", INTERNAL_ERROR, times=None, key=key)
    revisions = [workflow.Revision(plan) for plan in plans]

    watch = run(revisions, memory, order=workflow.Order.INDEPENDENT)

    assert [r.result for r in revisions] == [Result.FAILED, Result.SHARE_ANNOTATED]
    assert [event for event, _ in watch.events] == ["starting", "progress", "finished"] * 2
    assert not any(plan.marker_key in memory.stored for plan in plans)


def test_an_empty_revision_fails_one_run_but_not_a_backfill():
    assert workflow.exit_code([Result.EMPTY]) is ExitCode.FAILED
    assert workflow.exit_code([Result.COMPLETED, Result.EMPTY], empty_fails=False) is ExitCode.OK
    assert workflow.exit_code([Result.FAILED, Result.INTERRUPTED]) is ExitCode.INTERRUPTED
    assert workflow.exit_code([Result.MARKER_NOT_KEPT]) is ExitCode.MARKER_NOT_KEPT
