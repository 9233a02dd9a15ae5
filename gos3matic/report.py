"""What a run reports: the parameter table before, and after it the text summary and the --json
fields of every command's outcomes (output.to_json, the one serializer, prints them, when the
runtime ends the run). Progress while it runs is in progress.py."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gos3matic.core.outcome import MarkerState, Outcome, Tally
from gos3matic.core.poller import path_warning
from gos3matic.output import Output
from gos3matic.progress import Counts

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


def table_text(rows: Sequence[tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name.ljust(width)}  {value}" for name, value in rows)


def human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def count_words(tally: Tally, dry_run: bool) -> list[tuple[str, int]]:
    """The counts of a run in the words the summary, the -q line and the progress display share."""
    first = ("would annotate", tally.would_annotate) if dry_run else ("annotated", tally.annotated)
    return [first, ("skipped", tally.skipped), ("failed", tally.failed)]


def counts_for(dry_run: bool) -> Counts:
    """`count_words` as one phrase: "annotated 3, skipped 1, failed 0"."""
    return lambda tally: ", ".join(f"{word} {n}" for word, n in count_words(tally, dry_run))


def summary_text(outcome: Outcome, dry_run: bool, failures: bool = True) -> str:
    """The statistics block after a run; `failures`: list the failed keys too."""
    tally = outcome.tally
    lines = []
    if outcome.interrupted:
        lines.append(
            f"interrupted: {tally.done} of {tally.listed} listed objects done, "
            f"{tally.not_started} not started; a re-run finishes the job"
        )
    notes = {"skipped": "  (already annotated)"}
    for word, number in count_words(tally, dry_run):
        lines.append(f"  {word.ljust(15)} {number}{notes.get(word, '')}")
    if tally.multipart:
        lines.append(f"  multipart       {tally.multipart}  (annotated by a multipart copy)")
    if tally.other_shards:
        lines.append(f"  other shards'   {tally.other_shards}  (listed, left to the other shards)")
    if not dry_run:
        lines.append(f"  bytes copied    {human_bytes(tally.bytes_copied)}")
    if tally.new_versions:
        lines.append(
            f"  new versions    {tally.new_versions}  (versioned bucket: one per copy and per "
            "marker written; the old versions stay)"
        )
    lines += [
        f"  elapsed         {outcome.elapsed:.1f} s",
        f"  requests        {_requests_line(outcome)}",
        f"  marker          {MARKER_SENTENCES[outcome.marker]}",
    ]
    if failures:
        lines += failure_lines(tally, "  ")
    return "\n".join(lines)


def summary_line(where: str, outcome: Outcome, dry_run: bool) -> str:
    """The whole summary in one line, for -q: "s3://b/p/: annotated 3, …; marker …"."""
    interrupted = "interrupted; " if outcome.interrupted else ""
    return (
        f"{where}: {interrupted}{counts_for(dry_run)(outcome.tally)}; "
        f"marker {MARKER_SENTENCES[outcome.marker]} ({outcome.elapsed:.1f} s)"
    )


def _requests_line(outcome: Outcome) -> str:
    sent = outcome.requests
    return (
        f"{sent.requests} sent, {sent.retries} retried, {sent.throttled} throttled (SlowDown), "
        f"at most {sent.peak_in_flight} in flight"
    )


def failure_lines(tally: Tally, indent: str) -> list[str]:
    """Each failed key and why, the first FAILURES_SHOWN of them; --json has them all."""
    lines = [f"{indent}FAILED {f.key}: {f.error}" for f in tally.failures[:FAILURES_SHOWN]]
    if len(tally.failures) > FAILURES_SHOWN:
        lines.append(f"{indent}... and {len(tally.failures) - FAILURES_SHOWN} more (see --json)")
    return lines


def tally_document(tally: Tally) -> dict[str, Any]:
    """A tally's counts and failures, as every command's --json spells them."""
    return {
        "listed": tally.listed,
        "annotated": tally.annotated,
        "skipped": tally.skipped,
        "would_annotate": tally.would_annotate,
        "failed": tally.failed,
        "multipart": tally.multipart,
        "other_shards": tally.other_shards,
        "bytes_copied": tally.bytes_copied,
        "new_versions": tally.new_versions,
        "not_started": tally.not_started,
        "failures": failures_document(tally),
    }


def failures_document(tally: Tally) -> list[dict[str, str]]:
    return [{"key": f.key, "error": f.error} for f in tally.failures]


def outcome_document(outcome: Outcome) -> dict[str, Any]:
    """One run over one prefix: its tally, the marker's state, the time it took."""
    return {
        **tally_document(outcome.tally),
        "elapsed_seconds": round(outcome.elapsed, 3),
        "marker_state": outcome.marker.value,
        "marker_written": outcome.marker_written,
        "marker_verified": outcome.marker_verified,
        "interrupted": outcome.interrupted,
        "requests": outcome.requests.requests,
        "retries": outcome.requests.retries,
        "throttled": outcome.requests.throttled,
        "peak_in_flight": outcome.requests.peak_in_flight,
    }


def warn_about_path(prefix: str, output: Output) -> None:
    """On stderr, when GoCD will not take PATH for a revision, and louder when it breaks polling."""
    warning = path_warning(prefix)
    if warning is not None:
        message, breaks_polling = warning
        loud = "WARNING, GoCD will break" if breaks_polling else "warning"
        output.warning(f"gos3matic: {loud}: {message}")
