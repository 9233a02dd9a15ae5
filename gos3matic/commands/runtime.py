"""What every command does around its work: where text goes, signals, progress, the store."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any, TextIO

from gos3matic.exitcodes import ExitCode
from gos3matic.progress import BarProgress, LineProgress, NoProgress
from gos3matic.store import open_store
from gos3matic.store.protocols import Connection, Store

__all__ = ["Connection", "Store", "emit", "info_stream", "install_stop_signals", "open_store"]


def info_stream(args: argparse.Namespace) -> TextIO:
    """Human text: stdout, or stderr when stdout is kept for --json."""
    return sys.stderr if getattr(args, "json", False) else sys.stdout


def emit(line: str, out: TextIO) -> None:
    print(line, file=out, flush=True)


def install_stop_signals(stop: threading.Event) -> None:
    """First SIGINT/SIGTERM: start nothing new, let in-flight copies end. Second: leave now."""

    def handle(signum: int, _frame: Any) -> None:
        if stop.is_set():
            os._exit(ExitCode.INTERRUPTED)
        stop.set()
        print(
            f"\n{signal.Signals(signum).name}: starting no new objects, finishing in-flight "
            "copies and aborting copies in parts; no marker (again to quit at once)",
            file=sys.stderr,
            flush=True,
        )

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def progress_for(args: argparse.Namespace) -> NoProgress | BarProgress | LineProgress:
    if args.quiet or args.no_progress:
        return NoProgress()
    if sys.stderr.isatty():
        return BarProgress(sys.stderr)
    return LineProgress(sys.stderr)
