"""The engine specified against an in-memory S3: one annotate run, from listing to marker.

What a user relies on: every object under the prefix gets the annotation and keeps everything
else; the marker is written last, only after a clean run, and read back; faults cost retries,
not objects; nothing outside the prefix (or the shard) is touched.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
from dataclasses import dataclass, field

import pytest
from support.inprocess import without_retry_waits
from support.memstore import (
    ACCESS_DENIED,
    ALL_USERS,
    CONNECTION_RESET,
    INTERNAL_ERROR,
    OWNER_ID,
    SLOW_DOWN,
    MemoryStore,
    StoredObject,
)

from gos3matic.core.contract import Annotation, normalize_prefix
from gos3matic.core.metadata import encode_annotation
from gos3matic.core.outcome import Failure, MarkerState, Outcome, Plan, Tally, Write
from gos3matic.core.poller import poller_view
from gos3matic.core.shards import owns
from gos3matic.core.sizes import MiB
from gos3matic.engine import annotate_prefix, annotate_revisions, read_markers
from gos3matic.errors import EndpointUnreachable, EnvironmentProblem
from gos3matic.markers import read_folders
from gos3matic.store.flow import FlowControl
from gos3matic.store.retry import ATTEMPTS

PACKAGE = "app/build/package/"
REVISION = normalize_prefix(PACKAGE + "42.1")
ANNOTATION = Annotation(
    label="42.1",
    user="jo",
    traceback_url="https://gocd.example.com/go/tab/build/detail/app/42/build/1/package",
)


@pytest.fixture(autouse=True)
def _no_retry_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    without_retry_waits(monkeypatch)


def plan_for(prefix: str = REVISION, annotation: Annotation = ANNOTATION, **changes) -> Plan:
    return Plan(
        bucket="bucket",
        prefix=prefix,
        annotation=encode_annotation(annotation.items()),
        marker_metadata=encode_annotation(annotation.marker_items()),
        workers=16,
        **changes,
    )


PLAN = plan_for()


class RecordingProgress:
    """What a progress bar is told; it may stop the run once `stop_after` objects are done."""

    def __init__(self, stop: threading.Event, stop_after: int | None = None) -> None:
        self.stop = stop
        self.stop_after = stop_after
        self.listed_count = 0
        self.finished_count = 0
        self.total: int | None = None

    def listed(self, tally: Tally) -> None:
        self.listed_count += 1

    def listing_complete(self, tally: Tally) -> None:
        self.total = tally.listed

    def finished(self, tally: Tally) -> None:
        self.finished_count += 1
        if self.stop_after is not None and tally.done >= self.stop_after:
            self.stop.set()


@dataclass
class Run:
    outcome: Outcome
    progress: RecordingProgress
    writes: list[Write] = field(default_factory=list)  # what a dry run announced

    @property
    def tally(self) -> Tally:
        return self.outcome.tally


def annotate(memory: MemoryStore, plan: Plan = PLAN, stop_after: int | None = None) -> Run:
    stop = threading.Event()
    progress = RecordingProgress(stop, stop_after)
    writes: list[Write] = []
    outcome = annotate_prefix(plan, memory.store(), progress, stop, writes.append)
    return Run(outcome, progress, writes)


def seeded(count: int = 3, prefix: str = REVISION, **options) -> MemoryStore:
    memory = MemoryStore(**options)
    for number in range(count):
        memory.put(f"{prefix}part-{number:03}.bin", f"content {number}".encode())
    return memory


def object_keys(memory: MemoryStore, prefix: str = REVISION) -> list[str]:
    return [key for key in sorted(memory.stored) if key.startswith(prefix) and key != prefix]


def is_annotated(stored: StoredObject, plan: Plan = PLAN) -> bool:
    return all(stored.metadata.get(k) == v for k, v in plan.annotation.items())


# -- what a clean run does --


def test_every_object_is_annotated_and_keeps_everything_else():
    memory = MemoryStore()
    memory.put(
        REVISION + "app.jar",
        b"PK\x03\x04 a jar",
        metadata={"origin": "jenkins", "user": "someone-else"},
        tags={"team": "build", "retention": "90d"},
        grants={"GrantFullControl": f'id="{OWNER_ID}"', "GrantRead": f'uri="{ALL_USERS}"'},
        ContentType="application/java-archive",
        CacheControl="max-age=60",
        ContentDisposition="attachment",
        ContentEncoding="identity",
        ContentLanguage="en",
        Expires=dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc),
        WebsiteRedirectLocation="/elsewhere",
        StorageClass="STANDARD_IA",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId="arn:aws:kms:us-east-1:111122223333:key/k",
        BucketKeyEnabled=True,
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=dt.datetime(2031, 1, 1, tzinfo=dt.timezone.utc),
        ObjectLockLegalHoldStatus="ON",
    )
    memory.put(REVISION + "docs/readme.txt", b"read me", ContentType="text/plain")
    memory.put(REVISION + "empty")
    before = copy.deepcopy(memory.stored)

    run = annotate(memory)

    assert (run.tally.listed, run.tally.annotated, run.tally.failed) == (3, 3, 0)
    for key, old in before.items():
        new = memory.stored[key]
        assert new.metadata == {**old.metadata, **PLAN.annotation}, key
        assert new.properties == old.properties, key
        assert (new.tags, new.grants) == (old.tags, old.grants), key
        assert (new.body, new.etag) == (old.body, old.etag), key
    assert run.tally.bytes_copied == sum(len(old.body) for old in before.values())
    assert run.progress.listed_count == run.progress.finished_count == 3


def test_the_marker_is_written_last_then_read_back():
    memory = seeded(3)
    run = annotate(memory)
    assert run.outcome.marker is MarkerState.WRITTEN
    assert run.outcome.marker_written and run.outcome.marker_verified
    marker = memory.stored[PLAN.marker_key]
    assert (marker.body, marker.metadata) == (b"", PLAN.marker_metadata)
    *objects_written, last_written = memory.written_keys()
    assert sorted(objects_written) == object_keys(memory)
    assert last_written == PLAN.marker_key
    put_at = memory.requests.index(("PutObject", PLAN.marker_key))
    assert ("HeadObject", PLAN.marker_key) in memory.requests[put_at:]


def test_already_annotated_objects_are_skipped_without_a_write():
    memory = seeded(2)
    memory.put(REVISION + "done.bin", b"done", metadata={"origin": "ci", **PLAN.annotation})
    run = annotate(memory)
    assert (run.tally.annotated, run.tally.skipped) == (2, 1)
    assert memory.sent("CopyObject", REVISION + "done.bin") == 0
    assert memory.stored[REVISION + "done.bin"].metadata["origin"] == "ci"


def test_an_object_annotated_for_another_label_is_annotated_again():
    memory = seeded(2)
    annotate(memory, plan_for(annotation=Annotation(label="41.7")))
    run = annotate(memory)
    assert run.tally.annotated == 2
    assert all(is_annotated(memory.stored[key]) for key in object_keys(memory))


def test_an_identical_marker_already_there_is_not_rewritten():
    memory = seeded(2)
    annotate(memory)
    requests_before = len(memory.requests)
    run = annotate(memory)
    assert run.outcome.marker is MarkerState.ALREADY_PRESENT
    assert run.outcome.marker_verified and not run.outcome.marker_written
    assert run.tally.skipped == 2
    assert ("PutObject", PLAN.marker_key) not in memory.requests[requests_before:]


def test_a_versioned_bucket_counts_the_versions_the_run_added():
    memory = seeded(3, versioning=True)
    run = annotate(memory)
    assert run.tally.new_versions == 4  # three copies and the marker
    assert all(len(memory.history[key]) == 1 for key in object_keys(memory))


# -- failures --


def test_a_failed_object_leaves_no_marker_and_the_others_are_done():
    memory = seeded(3)
    refused = REVISION + "part-001.bin"
    memory.fail("CopyObject", ACCESS_DENIED, key=refused)
    run = annotate(memory)
    assert run.outcome.marker is MarkerState.WITHHELD
    assert PLAN.marker_key not in memory.stored
    assert run.tally.failures == [Failure(refused, "AccessDenied: Access Denied")]
    assert (run.tally.annotated, run.tally.failed) == (2, 1)
    assert not is_annotated(memory.stored[refused])
    assert memory.sent("CopyObject", refused) == 1  # not worth another attempt


def test_transient_faults_cost_retries_and_lose_nothing():
    memory = seeded(4)
    a, b, c, d = object_keys(memory)
    memory.fail("HeadObject", INTERNAL_ERROR, key=a, times=2)
    memory.fail("GetObjectAcl", INTERNAL_ERROR, key=b)
    memory.fail("CopyObject", CONNECTION_RESET, key=c)
    memory.fail("CopyObject", SLOW_DOWN, key=d)
    run = annotate(memory)
    assert (run.tally.annotated, run.tally.failed) == (4, 0)
    assert run.outcome.marker is MarkerState.WRITTEN
    assert (run.outcome.requests.retries, run.outcome.requests.throttled) == (5, 1)
    assert all(is_annotated(memory.stored[key]) for key in (a, b, c, d))


def test_a_request_that_never_gets_an_answer_fails_its_object_after_every_attempt():
    memory = seeded(2)
    lost = REVISION + "part-000.bin"
    memory.fail("CopyObject", CONNECTION_RESET, key=lost, times=None)
    run = annotate(memory)
    assert memory.sent("CopyObject", lost) == ATTEMPTS
    [failure] = run.tally.failures
    assert failure.key == lost
    assert failure.error.startswith(f"no answer from S3 after {ATTEMPTS} attempts")
    assert run.outcome.marker is MarkerState.WITHHELD


def test_an_object_overwritten_between_head_and_copy_is_read_and_merged_again():
    memory = MemoryStore()
    key = REVISION + "app.jar"
    memory.put(key, b"first build", metadata={"build": "1"}, ContentType="application/zip")
    memory.change_before_copy(key, metadata={"build": "2"})
    run = annotate(memory)
    assert run.tally.annotated == 1
    assert run.outcome.marker is MarkerState.WRITTEN
    rebuilt = memory.stored[key]
    assert rebuilt.body == b"first build (rebuilt)"  # the new content, never the old one
    assert rebuilt.metadata == {"build": "2", **PLAN.annotation}
    assert rebuilt.properties["ContentType"] == "application/zip"
    assert (memory.sent("HeadObject", key), memory.sent("CopyObject", key)) == (2, 2)


def test_an_object_that_changes_under_every_attempt_fails_and_is_left_as_its_writer_made_it():
    memory = seeded(2)
    busy = REVISION + "part-000.bin"
    memory.change_before_copy(busy, times=None)
    run = annotate(memory)
    assert run.tally.failures == [Failure(busy, "changed under every one of 3 attempts to copy it")]
    assert memory.sent("CopyObject", busy) == 3
    assert not is_annotated(memory.stored[busy])
    assert run.outcome.marker is MarkerState.WITHHELD


def test_an_archived_object_fails_without_a_copy_being_tried():
    memory = seeded(1)
    archived = REVISION + "old.tar"
    memory.put(archived, b"cold", StorageClass="GLACIER")
    run = annotate(memory)
    assert run.tally.failures == [
        Failure(archived, "archived in GLACIER and not restored; restore it first")
    ]
    assert memory.sent("CopyObject", archived) == 0
    assert run.outcome.marker is MarkerState.WITHHELD


def test_an_object_whose_acl_cannot_be_read_is_not_copied():
    memory = seeded(1)
    guarded = REVISION + "part-000.bin"
    memory.fail("GetObjectAcl", ACCESS_DENIED, key=guarded)
    run = annotate(memory)
    assert run.tally.failures == [
        Failure(guarded, "cannot read its ACL to keep it (AccessDenied); a copy would reset it")
    ]
    assert memory.sent("CopyObject", guarded) == 0


def test_a_bucket_without_acls_is_never_asked_for_them():
    memory = seeded(3, acls=False)
    run = annotate(memory)
    assert run.tally.annotated == 3
    assert memory.sent("GetObjectAcl") == 0


def test_a_listing_refused_from_the_start_is_an_environment_problem():
    memory = seeded(3)
    memory.fail("ListObjectsV2", ACCESS_DENIED)
    with pytest.raises(EnvironmentProblem, match=f"cannot list s3://bucket/{REVISION}"):
        annotate(memory)
    assert memory.written_keys() == []


def test_a_certificate_no_longer_trusted_mid_run_ends_the_run_with_it():
    """EndpointUnreachable is no object's failure: nothing new starts, no marker is written, and
    the run ends with the error (exit 3) instead of failing every object one by one."""
    in_flight = 32
    memory = seeded(500, flow=FlowControl(ceiling=in_flight))
    untrusted = EndpointUnreachable("TLS with https://s3.example failed: not trusted")
    memory.fail("HeadObject", untrusted, times=None, after=100)

    with pytest.raises(EndpointUnreachable, match="not trusted"):
        annotate(memory)

    # The marker's HEAD, 100 answered, then at most what was in flight when the first failed.
    assert memory.sent("HeadObject") <= 1 + 100 + 2 * in_flight
    assert PLAN.marker_key not in memory.stored


def test_a_listing_that_stops_midway_leaves_no_marker():
    memory = seeded(1001)  # two pages of S3's 1000 keys
    memory.fail("ListObjectsV2", ACCESS_DENIED, after=1)  # the first page, then a refusal
    run = annotate(memory)
    assert run.tally.annotated == 1000
    assert run.tally.failures == [Failure(REVISION, "listing stopped: AccessDenied: Access Denied")]
    assert run.outcome.marker is MarkerState.WITHHELD
    assert PLAN.marker_key not in memory.stored


# -- what a run leaves alone --


def test_a_dry_run_announces_exactly_the_writes_it_would_make_and_makes_none():
    memory = seeded(3)
    memory.put(REVISION + "done.bin", metadata=dict(PLAN.annotation))
    before = copy.deepcopy(memory.stored)
    run = annotate(memory, plan_for(dry_run=True))
    object_writes, marker_write = run.writes[:-1], run.writes[-1]
    assert sorted(w.key for w in object_writes) == object_keys(memory)[1:]  # not done.bin
    assert all(w.marker_metadata is None for w in object_writes)
    assert marker_write == Write("bucket", PLAN.marker_key, PLAN.marker_metadata)
    assert (run.tally.would_annotate, run.tally.skipped) == (3, 1)
    assert run.outcome.marker is MarkerState.DRY_RUN
    assert memory.written_keys() == []
    assert memory.stored == before


def test_each_shard_annotates_only_its_own_keys_and_none_writes_the_marker():
    memory = seeded(20)
    keys = object_keys(memory)
    for index in (1, 2, 3):
        shard = (index, 3)
        first_request = len(memory.requests)
        run = annotate(memory, plan_for(shard=shard))
        copied = {r.key for r in memory.requests[first_request:] if r.operation == "CopyObject"}
        assert copied == {key for key in keys if owns(shard, key)}
        assert run.tally.other_shards == len(keys) - len(copied)
        assert run.outcome.marker is MarkerState.SHARDED
    assert all(memory.sent("CopyObject", key) == 1 for key in keys)
    assert memory.sent("PutObject") == 0


def test_an_empty_prefix_gets_no_marker_unless_allowed():
    memory = seeded(2, prefix=PACKAGE + "42.2/")
    run = annotate(memory)
    assert run.outcome.marker is MarkerState.EMPTY
    assert memory.written_keys() == []
    allowed = annotate(memory, plan_for(allow_empty=True))
    assert allowed.outcome.marker is MarkerState.WRITTEN


def test_the_marker_is_not_an_object_of_its_revision():
    memory = seeded(2)
    memory.put(PLAN.marker_key, metadata={"go_pipeline_label": "41.1", "completed": "completed"})
    run = annotate(memory)
    assert run.tally.listed == 2
    assert memory.sent("CopyObject", PLAN.marker_key) == 0
    assert memory.stored[PLAN.marker_key].metadata == PLAN.marker_metadata


def test_revision_42_1_never_touches_revision_42_10():
    memory = seeded(3)
    for number in range(3):
        memory.put(f"{PACKAGE}42.10/part-{number}.bin", b"other revision")
    other = {k: copy.deepcopy(v) for k, v in memory.stored.items() if "/42.10/" in k}
    run = annotate(memory)
    assert run.tally.listed == 3
    assert not [r for r in memory.requests if "/42.10" in r.key]
    assert {k: memory.stored[k] for k in other} == other


def test_an_interrupted_run_finishes_what_it_began_and_writes_no_marker():
    memory = seeded(50, flow=FlowControl(ceiling=4))
    run = annotate(memory, stop_after=5)
    assert run.outcome.interrupted
    assert run.outcome.marker is MarkerState.INTERRUPTED
    assert 5 <= run.tally.listed < 50
    assert run.tally.annotated == run.tally.listed  # nothing begun was abandoned
    assert sum(is_annotated(memory.stored[key]) for key in object_keys(memory)) == run.tally.listed
    assert memory.sent("PutObject") == 0


class StopWithMany(RecordingProgress):
    """Sets the stop once `stop_after` objects are done, noting how many were being answered."""

    def __init__(self, stop: threading.Event, stop_after: int, memory: MemoryStore) -> None:
        super().__init__(stop, stop_after)
        self.memory = memory
        self.answering_at_stop = -1
        self.copies_at_stop = -1

    def finished(self, tally: Tally) -> None:
        if not self.stop.is_set() and tally.done >= (self.stop_after or 0):
            self.answering_at_stop = self.memory.objects.answering
            self.copies_at_stop = self.memory.sent("CopyObject")
        super().finished(tally)


@pytest.mark.xfail(
    strict=False, reason="timing-dependent: failed once in a loaded run, cause not yet found"
)
def test_a_stop_sends_no_request_for_an_object_not_yet_written():
    """Hundreds under way when the signal comes: only requests already being answered finish;
    an object read but not yet written is left, counted not started, for the re-run."""
    memory = seeded(600, flow=FlowControl(ceiling=256), latency=0.02)
    stop = threading.Event()
    progress = StopWithMany(stop, 20, memory)
    outcome = annotate_prefix(PLAN, memory.store(), progress, stop, lambda _: None)
    tally = outcome.tally
    assert outcome.interrupted and outcome.marker is MarkerState.INTERRUPTED
    assert progress.answering_at_stop > 20  # the stop came with many requests in flight
    copies_after = memory.sent("CopyObject") - progress.copies_at_stop
    assert 0 <= copies_after <= progress.answering_at_stop
    assert tally.annotated == memory.sent("CopyObject")  # every copy sent was counted
    assert tally.listed == tally.done + tally.not_started and tally.not_started > 0
    assert tally.failed == 0 and memory.sent("PutObject") == 0
    written = sum(is_annotated(memory.stored[key]) for key in object_keys(memory))
    assert written == tally.annotated < 600


def test_a_marker_the_store_does_not_keep_is_reported_not_kept():
    memory = seeded(2, keeps_folder_metadata=False)  # as SeaweedFS does with keys ending in /
    run = annotate(memory)
    assert run.outcome.marker is MarkerState.NOT_KEPT
    assert run.outcome.marker_written and not run.outcome.marker_verified


# -- how the work is done --


def test_objects_over_the_multipart_threshold_are_copied_in_parts():
    memory = seeded(1)
    big = REVISION + "image.iso"
    body = bytes(range(256)) * (11 * MiB // 256)
    memory.put(big, body, tags={"team": "build"}, ContentType="application/x-iso9660-image")
    run = annotate(memory, plan_for(multipart_threshold=5 * MiB, part_size=5 * MiB))
    assert (run.tally.annotated, run.tally.multipart) == (2, 1)
    assert memory.sent("CopyObject", big) == 0
    assert memory.sent("UploadPartCopy", big) == 3
    copied = memory.stored[big]
    assert (copied.body, copied.tags) == (body, {"team": "build"})
    assert copied.etag.endswith('-3"')
    assert copied.properties["ContentType"] == "application/x-iso9660-image"
    assert is_annotated(copied)
    assert not memory.uploads


def test_an_object_overwritten_during_its_copy_in_parts_is_read_and_copied_again():
    memory = MemoryStore()
    big = REVISION + "image.iso"
    memory.put(big, b"x" * (6 * MiB), metadata={"build": "1"})
    memory.change_before_copy(big, metadata={"build": "2"}, operation="UploadPartCopy")
    run = annotate(memory, plan_for(multipart_threshold=5 * MiB, part_size=5 * MiB))
    assert (run.tally.annotated, run.tally.multipart) == (1, 1)
    copied = memory.stored[big]
    assert copied.body == b"x" * (6 * MiB) + b" (rebuilt)"
    assert copied.metadata == {"build": "2", **PLAN.annotation}
    assert (
        memory.sent("AbortMultipartUpload", big) == 1
    )  # the first upload, guarded by the old ETag
    assert memory.sent("CreateMultipartUpload", big) == 2
    assert not memory.uploads


def test_never_more_requests_in_flight_than_the_ceiling():
    memory = seeded(100, flow=FlowControl(ceiling=5), latency=0.0005)
    run = annotate(memory)
    assert run.tally.annotated == 100
    assert run.outcome.requests.peak_in_flight == 5
    assert memory.objects.peak_answering == 5  # as the store itself counted them
    assert run.outcome.requests.requests == memory.objects.attempts == 3 * 100 + 1


# -- several revisions through one pipeline --


def revisions(memory: MemoryStore, objects: dict[str, int]) -> list[Plan]:
    """A revision folder per name with that many objects, and a plan for each, in order."""
    for name, count in objects.items():
        for number in range(count):
            memory.put(f"{PACKAGE}{name}/part-{number:02}.bin", f"{name} {number}".encode())
    return [plan_for(f"{PACKAGE}{name}/", Annotation(label=name)) for name in objects]


def annotate_all(
    memory: MemoryStore, plans: list[Plan], carry_on=lambda index, outcome: True
) -> list[Outcome]:
    stop = threading.Event()
    return annotate_revisions(
        plans, memory.store(), RecordingProgress(stop), stop, lambda write: None, carry_on
    )


def test_revisions_are_marked_in_ascending_order_each_after_its_own_objects():
    memory = MemoryStore()
    plans = revisions(memory, {"42.1": 20, "42.2": 1, "42.3": 2})  # the first is the slowest
    outcomes = annotate_all(memory, plans)
    assert [o.marker for o in outcomes] == [MarkerState.WRITTEN] * 3
    log = memory.requests
    marker_puts = [at for at, request in enumerate(log) if request.operation == "PutObject"]
    assert [log[at].key for at in marker_puts] == [plan.prefix for plan in plans]
    for plan, put_at in zip(plans, marker_puts, strict=True):
        keys = object_keys(memory, plan.prefix)
        assert all(is_annotated(memory.stored[key], plan) for key in keys)
        copied_at = [at for at, request in enumerate(log) if request.operation == "CopyObject"]
        assert max(at for at in copied_at if log[at].key in keys) < put_at


def test_once_a_revision_fails_no_later_marker_is_written():
    memory = MemoryStore()
    plans = revisions(memory, {"42.1": 2, "42.2": 2, "42.3": 2})
    memory.fail("CopyObject", ACCESS_DENIED, key=f"{PACKAGE}42.2/part-01.bin")
    asked: list[int] = []

    def carry_on(index: int, outcome: Outcome) -> bool:
        asked.append(index)
        return outcome.tally.failed == 0

    outcomes = annotate_all(memory, plans, carry_on)
    assert [o.marker for o in outcomes] == [
        MarkerState.WRITTEN,
        MarkerState.WITHHELD,
        MarkerState.WITHHELD,
    ]
    assert asked == [0, 1]
    assert [r.key for r in memory.requests if r.operation == "PutObject"] == [plans[0].prefix]


def test_a_revision_whose_listing_is_refused_fails_alone_after_the_earlier_are_marked():
    memory = MemoryStore()
    plans = revisions(memory, {"42.1": 2, "42.2": 2, "42.3": 2})
    memory.fail("ListObjectsV2", ACCESS_DENIED, key=plans[1].prefix)
    outcomes = annotate_all(memory, plans, lambda index, outcome: outcome.tally.failed == 0)
    assert [o.marker for o in outcomes] == [
        MarkerState.WRITTEN,
        MarkerState.WITHHELD,
        MarkerState.WITHHELD,
    ]
    assert outcomes[1].tally.failures[0].key == plans[1].prefix


# -- reading a package as the poller does --


def test_reading_a_package_sees_it_as_the_gocd_poller_does():
    memory = MemoryStore()
    for name in ("42.1", "42.2"):
        memory.put(f"{PACKAGE}{name}/app.jar", b"jar")
        annotate(memory, plan_for(PACKAGE + name + "/", Annotation(label=name)))
    memory.put(PACKAGE + "43.1/app.jar", b"jar, still uploading")
    memory.put(PACKAGE + "nightly/app.jar", b"jar")
    first_request = len(memory.requests)

    view = poller_view(PACKAGE, read_folders(memory.store(), PACKAGE))

    assert view.latest is not None
    assert (view.latest.name, view.latest.label) == ("42.2", "42.2")
    assert view.latest.timestamp == memory.stored[PACKAGE + "42.2/"].last_modified
    assert view.complete == ("42.1", "42.2")
    assert [folder.name for folder in view.incomplete] == ["43.1"]
    assert view.unparseable == ("nightly",)
    heads = {r.key for r in memory.requests[first_request:] if r.operation == "HeadObject"}
    # every folder's marker, the unparseable one's too: the poller HEADs them all
    assert heads == {f"{PACKAGE}{name}/" for name in ("42.1", "42.2", "43.1", "nightly")}


def test_read_markers_answers_each_key_none_where_there_is_no_marker():
    memory = seeded(1)
    annotate(memory)
    marker, missing = read_markers(memory.store(), [PLAN.marker_key, PACKAGE + "43.1/"])
    assert marker is not None and marker.completed
    assert marker.metadata == PLAN.marker_metadata
    assert missing is None


def test_the_requests_a_run_reports_are_its_own_when_one_store_serves_several_runs():
    memory = seeded(3, prefix=PACKAGE + "42.1/")
    for number in range(2):
        memory.put(f"{PACKAGE}42.2/part-{number}.bin", b"content")
    annotate(memory, plan_for(PACKAGE + "42.1/"))
    sent_before = memory.objects.attempts
    second = annotate(memory, plan_for(PACKAGE + "42.2/"))
    assert memory.objects.attempts - sent_before == 7  # the marker's HEAD, then 3 per object
    assert second.outcome.requests.requests == 7
