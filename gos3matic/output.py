"""The one writer: every line the tool prints goes through here, whole, and never over the
progress display.

Worker threads (or an event loop) hand their lines to it. One lock, shared by every writer of the
process, makes each line a single write: lines never glue together or split. While a progress
display is drawn on the terminal, a line first clears it; the display is drawn again at its next
refresh, below the line.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Mapping
from typing import Any, TextIO

_LOCK = threading.RLock()  # one for the whole process: every Output of it writes under it
LOCK = _LOCK  # the same lock, for the progress bar (tqdm draws under it)
CLEAR_LINE = "\r\x1b[K"  # back to column 0, erase to the end of the line


class _Status:
    """The status line on stderr's terminal: one per process, whichever Output drew it."""

    shown = False


class Output:
    """Where a run's text goes. Human text: stdout, or stderr when stdout is kept for --json.

    Streams are taken when the Output is made, so that a test's redirection is honoured.
    """

    def __init__(
        self,
        json_mode: bool = False,
        quiet: bool = False,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr
        self.json_mode = json_mode
        self.quiet = quiet

    @property
    def human(self) -> TextIO:
        return self.stderr if self.json_mode else self.stdout

    # -- lines ------------------------------------------------------------------------------------

    def line(self, text: str) -> None:
        """Human text (one line, or a block of them, written whole)."""
        self._write(self.human, text)

    def note(self, text: str) -> None:
        """Human text that -q leaves out: the table, the plan, each `would …` of a dry run."""
        if not self.quiet:
            self._write(self.human, text)

    def warning(self, text: str) -> None:
        """On stderr whatever the options: problems, warnings, failed objects."""
        self._write(self.stderr, text)

    def error(self, message: str) -> None:
        self._write(self.stderr, f"gos3matic: error: {message}")

    def document(self, document: Mapping[str, Any]) -> None:
        """The one JSON object of --json, on stdout."""
        self._write(self.stdout, to_json(document))

    def _write(self, stream: TextIO, text: str) -> None:
        with _LOCK:
            self._clear_status_locked()
            stream.write(text + "\n")  # one write: a line is never split by another thread's
            stream.flush()

    # -- the progress display's line on the terminal ----------------------------------------------

    def status_width(self) -> int:
        """Columns of the terminal stderr is on; 0 when it is not one or reports no width."""
        if not _isatty(self.stderr):
            return 0
        try:
            return os.get_terminal_size(self.stderr.fileno()).columns
        except (OSError, ValueError):
            return 0

    def draw_status(self, text: str, width: int) -> None:
        """Replace the status line with TEXT, cut to fit: a wrapped line could not be redrawn."""
        with _LOCK:
            self.stderr.write(CLEAR_LINE + text[: max(width - 1, 0)])
            self.stderr.flush()
            _Status.shown = True

    def clear_status(self) -> None:
        with _LOCK:
            self._clear_status_locked()

    def status_file(self) -> StatusFile:
        """Where a progress bar (tqdm) draws the status line: stderr, noting that a line is shown
        so that the next whole line clears it first."""
        return StatusFile(self.stderr)

    def _clear_status_locked(self) -> None:
        if _Status.shown:
            self.stderr.write(CLEAR_LINE)
            self.stderr.flush()
            _Status.shown = False


class StatusFile:
    """The file a tqdm bar writes to. Its writes are made under tqdm's lock, which progress.py
    sets to this module's LOCK: a bar's redraw and a whole line never interleave."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.encoding = getattr(stream, "encoding", None) or "utf-8"

    def write(self, text: str) -> None:
        with _LOCK:
            self.stream.write(text)
            if text.strip("\r "):
                _Status.shown = True
            elif text:  # a blank redraw (the bar closed): the line is empty again
                _Status.shown = False

    def flush(self) -> None:
        self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or fake stream
        return False


def to_json(document: Mapping[str, Any]) -> str:
    """The one serializer of --json: every command prints exactly one such object on stdout."""
    return json.dumps(document, indent=2)
