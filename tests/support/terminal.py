"""The CLI on a pseudo-terminal of a given width, as a person at a terminal runs it; and what a
person then sees, taken apart into whole lines and status-line redraws."""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLEAR_LINE = "\r\x1b[K"
ERASE_TO_END = "\x1b[K"


@dataclass(frozen=True)
class Screen:
    """Everything written to the terminal: stdout and stderr share it, as they do for a person."""

    code: int
    raw: str
    seconds: float

    @property
    def lines(self) -> list[str]:
        """The whole lines, status redraws taken out."""
        return [line for piece in self._pieces() if piece.endswith("\n") for line in _lines(piece)]

    @property
    def status_draws(self) -> list[str]:
        """Each text the status line was drawn with, in order (a blanking redraw is none)."""
        drawn = (piece.rstrip(" ") for piece in self._pieces() if not piece.endswith("\n"))
        return [text for text in drawn if text]

    def _pieces(self) -> list[str]:
        # Every status draw (tqdm's) starts with a carriage return, ends without a newline and is
        # padded with spaces over a longer previous draw; every line written while a status was
        # shown starts with CLEAR_LINE, and ends with a newline.
        return self.raw.replace("\r\n", "\n").replace(ERASE_TO_END, "").split("\r")


def _lines(piece: str) -> list[str]:
    return piece[:-1].split("\n")


def run_in_terminal(
    env: dict[str, str], *args: str, columns: int, rows: int = 24, timeout: float = 120
) -> Screen:
    """`python -m gos3matic ARGS` with stdin, stdout and stderr on one pseudo-terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "gos3matic", *args],
        cwd=REPO,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError as error:  # EIO: the child closed its side
                if error.errno != errno.EIO:
                    raise
                break
            if not chunk:
                break
            chunks.append(chunk)
            if time.monotonic() - started > timeout:
                process.kill()
                raise TimeoutError(f"gos3matic {' '.join(args)} ran over {timeout} s")
        code = process.wait(timeout=timeout)
    finally:
        os.close(master)
    return Screen(code, b"".join(chunks).decode("utf-8"), time.monotonic() - started)
