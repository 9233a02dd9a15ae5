"""What a person sees while a run goes: a bar on a terminal, a plain line now and then in a log."""

from __future__ import annotations

import threading
import time
from typing import TextIO

from tqdm import tqdm

from gos3matic.core.outcome import Tally

PLAIN_PROGRESS_EVERY = 5.0  # seconds between progress lines in a non-terminal log


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
            done = tally.done
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
