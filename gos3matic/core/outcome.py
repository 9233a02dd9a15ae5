"""What a run is asked to do (Plan) and what became of it (Result, Tally, Outcome). Pure.

Every command builds Plans and reads Outcomes; the engine turns one into the other, and report.py
serializes Outcomes for people and for --json.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from gos3matic.core.contract import marker_key
from gos3matic.core.shards import Shard
from gos3matic.core.sizes import DEFAULT_THRESHOLD


class Result(enum.Enum):
    ANNOTATED = "annotated"
    SKIPPED = "skipped"
    WOULD_ANNOTATE = "would_annotate"
    FAILED = "failed"


class MarkerState(enum.Enum):
    WRITTEN = "written"
    ALREADY_PRESENT = "already-present"
    NOT_KEPT = "not-kept"
    WITHHELD = "withheld"  # objects failed
    INTERRUPTED = "interrupted"
    EMPTY = "nothing-to-annotate"
    DISABLED = "disabled"  # --no-marker
    DRY_RUN = "dry-run"
    SHARDED = "left-to-mark"  # a shard never writes it: `gos3matic mark` does, after all


@dataclass(frozen=True)
class Plan:
    """One annotate run, validated: encoded metadata ready to send."""

    bucket: str
    prefix: str
    annotation: Mapping[str, str]
    marker_metadata: Mapping[str, str]
    workers: int
    dry_run: bool = False
    write_marker: bool = True
    allow_empty: bool = False
    multipart_threshold: int = DEFAULT_THRESHOLD  # larger objects: multipart copy
    part_size: int | None = None  # None: multipart.DEFAULT_PART_SIZE, raised as needed
    shard: Shard | None = None  # (K, N): annotate only the keys gocd.owns(), never the marker
    # GoCD keys is_annotated accepts with any value, or none (metadata.check_plan: what mark and
    # backfill --mark-only check). Empty: every GoCD key must be exactly the annotation's.
    any_value_keys: frozenset[str] = frozenset()

    @property
    def marker_key(self) -> str:
        return marker_key(self.prefix)


@dataclass(frozen=True)
class Failure:
    key: str
    error: str


@dataclass
class Tally:
    listed: int = 0
    annotated: int = 0
    skipped: int = 0
    would_annotate: int = 0
    failed: int = 0
    bytes_copied: int = 0
    multipart: int = 0  # annotated by a multipart copy
    other_shards: int = 0  # listed, but another shard's to annotate
    new_versions: int = 0  # versions S3 said this run's copies and marker created
    not_started: int = 0  # listed, but a stop came before its first write
    failures: list[Failure] = field(default_factory=list)

    def count(self, result: Result) -> None:
        """One more object with this result."""
        if result is Result.ANNOTATED:
            self.annotated += 1
        elif result is Result.SKIPPED:
            self.skipped += 1
        elif result is Result.WOULD_ANNOTATE:
            self.would_annotate += 1
        else:
            self.failed += 1

    @property
    def done(self) -> int:
        return self.annotated + self.skipped + self.would_annotate + self.failed


@dataclass
class RequestStats:
    """What a run sent: the summary's and --json's `requests`, `retries`, `throttled` and
    `peak_in_flight` (the per-object requests; listing and marker requests are a few more)."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    peak_in_flight: int = 0


@dataclass
class Outcome:
    tally: Tally
    marker: MarkerState
    marker_written: bool = False
    marker_verified: bool = False
    interrupted: bool = False
    elapsed: float = 0.0
    requests: RequestStats = field(default_factory=RequestStats)


@dataclass(frozen=True)
class Write:
    """A write a dry run would make: an object's annotation, or the marker with its metadata."""

    bucket: str
    key: str
    marker_metadata: Mapping[str, str] | None = None  # set for the marker only

    def sentence(self) -> str:
        if self.marker_metadata is None:
            return f"would annotate s3://{self.bucket}/{self.key}"
        return f"would write marker s3://{self.bucket}/{self.key} with {dict(self.marker_metadata)}"


class Progress(Protocol):
    """What the engine reports to while it runs: from its event loop, one call at a time."""

    def listed(self, tally: Tally) -> None: ...

    def finished(self, tally: Tally) -> None: ...

    def listing_complete(self, tally: Tally) -> None:
        """Every object is listed: the total is known from here on."""
        ...
