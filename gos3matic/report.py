"""What a person or a CI log sees: the parameter table, progress while it runs, the summary."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, TextIO

from tqdm import tqdm

from gos3matic.core.poller import path_warning
from gos3matic.engine import MarkerState, Outcome, Tally

PLAIN_PROGRESS_EVERY = 5.0  # seconds between progress lines in a non-terminal log
FAILURES_SHOWN = 20

MARKER_SENTENCES = {
    MarkerState.WRITTEN: "written and verified",
    MarkerState.ALREADY_PRESENT: "already in place with this annotation (verified, not rewritten)",
    MarkerState.NOT_KEPT: (
        "written, but the store did not keep its metadata (some S3-compatible stores, SeaweedFS "
        "among them, drop metadata on keys ending in '/'); GoCD will not see this revision"
    ),
    MarkerState.WITHHELD: "not written, because something failed",
    MarkerState.INTERRUPTED: "not written, because the run was interrupted",
    MarkerState.EMPTY: "not written: nothing to annotate under this path (see --allow-empty)",
    MarkerState.DISABLED: "not written (--no-marker)",
    MarkerState.DRY_RUN: "not written (--dry-run)",
    MarkerState.SHARDED: (
        "not written by a shard: run 'gos3matic mark' once every shard has passed"
    ),
}


def parameter_table(rows: Sequence[tuple[str, str]], out: TextIO) -> None:
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}", file=out)
    out.flush()


class NoProgress:
    def listed(self, tally: Tally) -> None:
        pass

    def finished(self, tally: Tally) -> None:
        pass

    def close(self) -> None:
        pass


class BarProgress:
    """A tqdm bar for a terminal: objects done out of those listed so far, and the rate."""

    def __init__(self, out: TextIO) -> None:
        self._bar = tqdm(total=0, unit="obj", file=out, dynamic_ncols=True, desc="annotating")
        self._lock = threading.Lock()

    def listed(self, tally: Tally) -> None:
        with self._lock:
            self._bar.total = tally.listed
            self._bar.refresh()

    def finished(self, tally: Tally) -> None:
        with self._lock:
            self._bar.update(1)
            self._bar.set_postfix(failed=tally.failed, refresh=False)

    def close(self) -> None:
        self._bar.close()


class LineProgress:
    """For a job log: one plain line at most every few seconds, never a carriage return."""

    def __init__(self, out: TextIO, every: float = PLAIN_PROGRESS_EVERY) -> None:
        self._out = out
        self._every = every
        self._started = time.monotonic()
        self._next = self._started + every
        self._lock = threading.Lock()

    def listed(self, tally: Tally) -> None:
        self._maybe_print(tally)

    def finished(self, tally: Tally) -> None:
        self._maybe_print(tally)

    def _maybe_print(self, tally: Tally) -> None:
        now = time.monotonic()
        if now < self._next or not self._lock.acquire(blocking=False):
            return
        try:
            self._next = now + self._every
            done = tally.annotated + tally.skipped + tally.would_annotate + tally.failed
            rate = done / max(now - self._started, 1e-9)
            print(
                f"progress: {done} done of {tally.listed} listed so far "
                f"({tally.annotated} annotated, {tally.skipped} skipped, {tally.failed} failed), "
                f"{rate:.0f} objects/s",
                file=self._out,
                flush=True,
            )
        finally:
            self._lock.release()

    def close(self) -> None:
        pass


def human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def summary_text(outcome: Outcome, dry_run: bool) -> str:
    tally = outcome.tally
    lines = []
    if outcome.interrupted:
        lines.append("interrupted: no new work was started after the signal")
    if dry_run:
        lines.append(f"  would annotate  {tally.would_annotate}")
    else:
        lines.append(f"  annotated       {tally.annotated}")
    lines += [
        f"  skipped         {tally.skipped}  (already annotated)",
        f"  failed          {tally.failed}",
        f"  multipart       {tally.multipart}  (annotated by a multipart copy)",
    ]
    if tally.other_shards:
        lines.append(f"  other shards'   {tally.other_shards}  (listed, left to the other shards)")
    lines += [
        f"  bytes copied    {human_bytes(tally.bytes_copied)}",
        f"  new versions    {tally.new_versions}  (versioned buckets: one per copy and per marker "
        "written; the old versions stay)",
        f"  elapsed         {outcome.elapsed:.1f} s",
        f"  marker          {MARKER_SENTENCES[outcome.marker]}",
    ]
    for failure in tally.failures[:FAILURES_SHOWN]:
        lines.append(f"  FAILED {failure.key}: {failure.error}")
    if len(tally.failures) > FAILURES_SHOWN:
        lines.append(f"  ... and {len(tally.failures) - FAILURES_SHOWN} more (see --json)")
    return "\n".join(lines)


def summary_json(outcome: Outcome, context: dict[str, Any], exit_code: int) -> str:
    tally = outcome.tally
    document = {
        **context,
        "listed": tally.listed,
        "annotated": tally.annotated,
        "skipped": tally.skipped,
        "would_annotate": tally.would_annotate,
        "failed": tally.failed,
        "multipart": tally.multipart,
        "other_shards": tally.other_shards,
        "bytes_copied": tally.bytes_copied,
        "new_versions": tally.new_versions,
        "elapsed_seconds": round(outcome.elapsed, 3),
        "marker_state": outcome.marker.value,
        "marker_written": outcome.marker_written,
        "marker_verified": outcome.marker_verified,
        "interrupted": outcome.interrupted,
        "exit_code": exit_code,
        "failures": [{"key": f.key, "error": f.error} for f in tally.failures],
    }
    return json.dumps(document, indent=2)


def error_line(message: str) -> None:
    print(f"gos3matic: error: {message}", file=sys.stderr, flush=True)


def warn_about_path(prefix: str) -> None:
    """On stderr, when GoCD will not take PATH for a revision, and louder when it breaks polling."""
    warning = path_warning(prefix)
    if warning is not None:
        message, breaks_polling = warning
        loud = "WARNING, GoCD will break" if breaks_polling else "warning"
        print(f"gos3matic: {loud}: {message}", file=sys.stderr, flush=True)
