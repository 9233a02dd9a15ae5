"""What every command does around its work: where text goes, signals, progress, the store."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from gos3matic import workflow
from gos3matic.core.outcome import Outcome, Plan, Write
from gos3matic.engine import annotate_prefix
from gos3matic.errors import InputError
from gos3matic.exitcodes import ExitCode
from gos3matic.output import Output, emit
from gos3matic.progress import Counts, RunProgress, display_for
from gos3matic.report import FAILURES_SHOWN, counts_for
from gos3matic.store import open_store, retry
from gos3matic.store.protocols import Connection, Store

__all__ = [
    "Connection",
    "Output",
    "Store",
    "emit",
    "info_stream",
    "install_stop_signals",
    "open_store",
    "output_for",
    "run_engine",
]


def output_for(args: argparse.Namespace) -> Output:
    """The one writer of this run: human text to stdout, or to stderr under --json. The store's
    own notices (retrying at start-up) go through it too, above the progress display."""
    output = Output(json_mode=getattr(args, "json", False), quiet=getattr(args, "quiet", False))
    retry.notice = output.warning
    retry.request_log = request_log_for(args, output)
    return output


def request_log_for(args: argparse.Namespace, output: Output) -> retry.RequestLog | None:
    """-v: each request's line on stderr, through the one writer; --log FILE: appended there."""
    path = getattr(args, "log", None)
    if path is None and not getattr(args, "verbose", False):
        return None
    write: Callable[[str], None]
    if path is None:
        write = output.warning
    else:
        try:
            log = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115  # the run's life
        except OSError as error:
            raise InputError(f"cannot open --log {path}: {error.strerror}") from None
        lock = threading.Lock()

        def write(line: str) -> None:
            with lock:
                log.write(line + "\n")

    def logged(operation: str, key: str, status: str, attempt: int, millis: float) -> None:
        write(f"request {operation} {key or '-'} {status} attempt {attempt} {millis:.1f} ms")

    return logged


def info_stream(args: argparse.Namespace) -> TextIO:
    """Human text: stdout, or stderr when stdout is kept for --json."""
    return output_for(args).human


def install_stop_signals(stop: threading.Event, output: Output | None = None) -> None:
    """First SIGINT/SIGTERM: start nothing new, let in-flight copies end. Second: leave now."""
    out = output or Output()

    def handle(signum: int, _frame: Any) -> None:
        if stop.is_set():
            os.write(2, b"gos3matic: second signal: quitting now; a re-run finishes the job\n")
            os._exit(ExitCode.INTERRUPTED)
        stop.set()
        out.warning(
            f"{signal.Signals(signum).name}: starting no new objects, giving requests in flight "
            "a moment to finish and aborting copies in parts; no marker (again to quit at once)"
        )

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def progress_for(
    args: argparse.Namespace,
    output: Output | None = None,
    what: str = "annotating",
    counts: Counts | None = None,
) -> RunProgress:
    """Failures on stderr as they happen, and a display unless -q or --no-progress."""
    output = output or output_for(args)
    enabled = not (getattr(args, "quiet", False) or getattr(args, "no_progress", False))
    counts = counts or counts_for(getattr(args, "dry_run", False))
    return RunProgress(output, display_for(output, enabled, what, counts))


class RevisionWatch:
    """What a person sees of revisions going through the workflow: a progress display per
    engine run, each write of a dry run as a `would …` line, and each object a check finds
    without the annotation named (the first FAILURES_SHOWN of each revision)."""

    def __init__(
        self,
        args: argparse.Namespace,
        output: Output,
        what: str = "annotating",
        counts: Counts | None = None,
    ) -> None:
        self.args = args
        self.output = output
        self.what = what
        self.counts = counts
        self._named: dict[str, int] = {}
        self._lock = threading.Lock()

    def progress(self, revisions: Sequence[workflow.Revision]) -> RunProgress:
        return progress_for(self.args, self.output, self.what, self.counts)

    def announce(self, revision: workflow.Revision, write: Write) -> None:
        if write.marker_metadata is not None or not revision.checked:
            self.output.note(write.sentence())
            return
        # A check is the engine's dry run: each write it would make is an object not annotated.
        with self._lock:
            named = self._named[revision.plan.prefix] = self._named.get(revision.plan.prefix, 0) + 1
        if named <= FAILURES_SHOWN:
            self.output.line(f"not annotated: s3://{write.bucket}/{write.key}")

    def starting(self, revision: workflow.Revision) -> None:
        pass

    def finished(self, revision: workflow.Revision) -> None:
        pass


def run_engine(
    args: argparse.Namespace,
    output: Output,
    plan: Plan,
    store: Store,
    stop: threading.Event,
    announce: Callable[[Write], None] | None = None,
    what: str = "annotating",
    counts: Counts | None = None,
) -> Outcome:
    """One engine run over one prefix, with its progress shown and its failures on stderr.

    `announce` gets each write a dry run would make; by default each is one `would …` line.
    """
    progress = progress_for(args, output, what, counts)

    def would(write: Write) -> None:
        output.note(write.sentence())

    try:
        outcome = annotate_prefix(
            plan, progress.watching(store, plan), progress, stop, announce or would
        )
    except BaseException:
        progress.close()
        raise
    progress.close(outcome.tally)
    return outcome
