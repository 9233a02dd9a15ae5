"""The command runtime: what every command gets around its work, from one place.

A command's `run(run: Run) -> End` is handed a Run, and everything it needs comes from it:

    run.args, run.env   the parsed command line, the environment
    run.output          the one writer: human text on stdout, or stderr under --json; -q
    run.stop            the stop event; its SIGINT/SIGTERM handlers are installed when first asked
    run.requests        the request log (-v, --log) and the retrying notice, handed to the store
    run.open_store()    the store, its every request told to that request log
    run.table()         the parameter table; run.progress(), run.watch(): progress displays

and it returns its End: the exit code, the --json document and the summary. `main` prints the
End the same way for every command (the summary, then under --json the one document, with
`exit_code`, through the one serializer), and ends every failure the same way too.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from gos3matic import workflow
from gos3matic.core.outcome import Write
from gos3matic.errors import EnvironmentProblem, InputError, LeaseHeld
from gos3matic.exitcodes import ExitCode
from gos3matic.output import Output
from gos3matic.progress import Counts, RunProgress, display_for
from gos3matic.report import FAILURES_SHOWN, counts_for, table_text
from gos3matic.store import open_store
from gos3matic.store.protocols import Connection, Store
from gos3matic.store.retry import RequestLog

__all__ = ["Command", "Connection", "End", "Output", "RevisionWatch", "Run", "Store", "main"]


@dataclass(frozen=True)
class End:
    """How a command's run ends: its exit code, what --json prints (`exit_code` is added), and
    its summary for a person (stdout, or stderr under --json); None: no summary."""

    code: ExitCode
    document: Mapping[str, Any] = field(default_factory=dict)
    summary: str | None = None


class Run:
    """One command's run: what the command line asked, and what the runtime gives it."""

    def __init__(
        self,
        args: argparse.Namespace,
        env: Mapping[str, str] | None = None,
        output: Output | None = None,
    ) -> None:
        self.args = args
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.json: bool = getattr(args, "json", False)
        self.quiet: bool = getattr(args, "quiet", False)
        self.output = output or Output(json_mode=self.json, quiet=self.quiet)
        self.requests = request_log_for(args, self.output)
        self._stop: threading.Event | None = None

    @property
    def stop(self) -> threading.Event:
        """Set by the first SIGINT or SIGTERM: asking for it is what installs the handlers."""
        if self._stop is None:
            self._stop = threading.Event()
            install_stop_signals(self._stop, self.output)
        return self._stop

    def open_store(
        self, connection: Connection, bucket: str, max_in_flight: int, probe_key: str
    ) -> Store:
        return open_store(connection, bucket, max_in_flight, probe_key, self.requests)

    def table(self, rows: Sequence[tuple[str, str]]) -> None:
        """The parameter table, before any request; -q leaves it out."""
        self.output.note(table_text(rows))

    def progress(self, what: str = "annotating", counts: Counts | None = None) -> RunProgress:
        """Failures on stderr as they happen, and a display unless -q or --no-progress."""
        enabled = not (self.quiet or getattr(self.args, "no_progress", False))
        counts = counts or counts_for(getattr(self.args, "dry_run", False))
        return RunProgress(self.output, display_for(self.output, enabled, what, counts))

    def watch(self, what: str = "annotating", counts: Counts | None = None) -> RevisionWatch:
        """What a person sees of revisions going through the workflow."""
        return RevisionWatch(self, what, counts)


def request_log_for(args: argparse.Namespace, output: Output) -> RequestLog:
    """-v: each request's line on stderr, through the one writer; --log FILE: appended there.
    The retrying notice goes through the one writer too, above the progress display."""
    path = getattr(args, "log", None)
    if path is None and not getattr(args, "verbose", False):
        return RequestLog(notice=output.warning)
    line: Callable[[str], None]
    if path is None:
        line = output.warning
    else:
        try:
            log = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115  # the run's life
        except OSError as error:
            raise InputError(f"cannot open --log {path}: {error.strerror}") from None
        lock = threading.Lock()

        def line(text: str) -> None:
            with lock:
                log.write(text + "\n")

    return RequestLog(line=line, notice=output.warning)


def install_stop_signals(stop: threading.Event, output: Output) -> None:
    """First SIGINT/SIGTERM: start nothing new, let in-flight copies end. Second: leave now."""

    def handle(signum: int, _frame: Any) -> None:
        if stop.is_set():
            os.write(2, b"gos3matic: second signal: quitting now; a re-run finishes the job\n")
            os._exit(ExitCode.INTERRUPTED)
        stop.set()
        output.warning(
            f"{signal.Signals(signum).name}: starting no new objects, giving requests in flight "
            "a moment to finish and aborting copies in parts; no marker (again to quit at once)"
        )

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


class RevisionWatch:
    """The workflow's Watch for a person: a progress display per engine run, each write of a
    dry run as a `would …` line, and each object a check finds without the annotation named
    (the first FAILURES_SHOWN of each revision)."""

    def __init__(self, run: Run, what: str = "annotating", counts: Counts | None = None) -> None:
        self.run = run
        self.output = run.output
        self.what = what
        self.counts = counts
        self._named: dict[str, int] = {}
        self._lock = threading.Lock()

    def progress(self, revisions: Sequence[workflow.Revision]) -> RunProgress:
        return self.run.progress(self.what, self.counts)

    def announce(self, revision: workflow.Revision, write: Write) -> None:
        if write.marker_metadata is not None or not revision.checked:
            self.output.note(write.sentence())
            return
        # A check is the engine's dry run: each write it would make is an object not annotated.
        prefix = revision.plan.prefix
        with self._lock:
            named = self._named[prefix] = self._named.get(prefix, 0) + 1
        if named <= FAILURES_SHOWN:
            self.output.line(f"not annotated: s3://{write.bucket}/{write.key}")

    def starting(self, revision: workflow.Revision) -> None:
        pass

    def finished(self, revision: workflow.Revision) -> None:
        pass


# -- the end of every run -------------------------------------------------------------------------


class Command(Protocol):
    """A module of commands/, listed in commands.COMMANDS."""

    NAME: str

    def add_parser(self, commands: Any) -> None:
        """Its parser on `commands` (argparse's subparsers), named NAME: options and help."""
        ...

    def run(self, run: Run) -> End:
        """The checked request (no S3 call before it is), the work, and how it ended."""
        ...


def main(parse: Callable[[list[str] | None], argparse.Namespace], argv: list[str] | None) -> int:
    """Parse, run the command the line names, and end: its End, or the failure that ended it
    (InputError: exit 2, EnvironmentProblem: 4, a signal's KeyboardInterrupt, anything else)."""
    wants_json = asks_for_json(argv)
    output = Output(json_mode=wants_json)
    try:
        args = parse(argv)
        command: Command = args.run_command
        run = Run(args)
        output = run.output
        return end(run.output, command.run(run), run.json)
    except InputError as error:
        return fail(output, ExitCode.BAD_INPUT, str(error), wants_json)
    except EnvironmentProblem as error:
        return fail(output, ExitCode.ENVIRONMENT, str(error), wants_json)
    except LeaseHeld as error:  # another run holds the folder: refused before any copy
        return fail(output, ExitCode.FAILED, str(error), wants_json)
    except KeyboardInterrupt:
        return fail(output, ExitCode.INTERRUPTED, "interrupted", wants_json)
    except Exception as error:  # the last line of defence: one line, never a traceback
        if os.environ.get("GOS3MATIC_DEBUG"):
            traceback.print_exc()
        message = f"unexpected {type(error).__name__}: {error} (GOS3MATIC_DEBUG=1 shows more)"
        return fail(output, ExitCode.FAILED, message, wants_json)


def end(output: Output, finished: End, json_mode: bool) -> int:
    """The summary, then under --json the run's one document, `exit_code` last."""
    if finished.summary is not None:
        output.line(finished.summary)
    if json_mode:
        output.document({**finished.document, "exit_code": int(finished.code)})
    return int(finished.code)


def fail(output: Output, code: ExitCode, message: str, json_mode: bool) -> int:
    """A run that ended in an error: one line on stderr; under --json `exit_code` and `error`."""
    output.error(message)
    return end(output, End(code, {"error": message}), json_mode)


def asks_for_json(argv: list[str] | None) -> bool:
    """--json anywhere before a `--`: known even when argparse refuses the rest of the line."""
    words = sys.argv[1:] if argv is None else argv
    return "--json" in (words[: words.index("--")] if "--" in words else words)
