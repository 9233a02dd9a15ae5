"""What a person sees while a run goes: a status line on a terminal (a tqdm bar), a plain line
now and then in a log, and each failed object on stderr as soon as it fails.

A display knows what it knows: while the listing runs, only the objects done and the rate; a
percentage and an ETA once the listing is complete and the total is known. Its counts are the
summary's own words and numbers (report.py builds both from the same `Counts`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, cast

from gos3matic.core.outcome import Plan, Tally
from gos3matic.core.shards import owns
from gos3matic.output import LOCK, Output
from gos3matic.store.protocols import Bucket, Listed, ObjectStore, Store

PLAIN_PROGRESS_EVERY = 5.0  # seconds between progress lines in a log, or on a narrow terminal
REDRAW_EVERY = 0.25  # seconds between redraws of the status line: at most 4 a second
MIN_STATUS_WIDTH = 40  # columns below which a status line is unreadable: plain lines instead

Counts = Callable[[Tally], str]  # "annotated 3, skipped 1, failed 0": the summary's words


class NoProgress:
    def listed(self, tally: Tally) -> None:
        pass

    def finished(self, tally: Tally) -> None:
        pass

    def listing_complete(self, tally: Tally) -> None:
        pass

    def close(self) -> None:
        pass


class _Display:
    """The sentence both displays show; subclasses decide when and where."""

    every = PLAIN_PROGRESS_EVERY

    def __init__(self, output: Output, what: str, counts: Counts) -> None:
        self.output = output
        self.what = what
        self.counts = counts
        self.started = time.monotonic()
        self.total: int | None = None  # known once the listing is complete
        self._next = self.started + self.every
        self._drawing = threading.Lock()

    def listed(self, tally: Tally) -> None:
        self._maybe_show(tally)

    def finished(self, tally: Tally) -> None:
        self._maybe_show(tally)

    def listing_complete(self, tally: Tally) -> None:
        self.total = tally.listed

    def _maybe_show(self, tally: Tally) -> None:
        now = time.monotonic()
        if now < self._next or not self._drawing.acquire(blocking=False):
            return
        try:
            self._next = now + self.every
            self.show(self.sentence(tally, now))
        finally:
            self._drawing.release()

    def sentence(self, tally: Tally, now: float) -> str:
        done = tally.done
        elapsed = max(now - self.started, 1e-9)
        rate = done / elapsed
        counts = self.counts(tally)
        if self.total is None:
            return f"{self.what}: {done} done, still listing ({counts}), {rate:.0f} objects/s"
        total = max(self.total, done)
        percent = 100 * done // total if total else 100
        eta = f", ETA {duration(max(total - done, 0) / rate)}" if rate > 0 and done < total else ""
        return f"{self.what}: {done} of {total} ({percent}%) ({counts}), {rate:.0f} objects/s{eta}"

    def show(self, text: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class LogProgress(_Display):
    """For a job log or a terminal too narrow for a status line: a plain line every few seconds."""

    def show(self, text: str) -> None:
        self.output.warning(f"progress: {text}")


class TerminalProgress(_Display):
    """One status line at the bottom of the terminal, drawn by tqdm, at most every REDRAW_EVERY.

    tqdm formats and writes the line; this class decides what it says and when it is redrawn (the
    engine's threads call `finished`, so tqdm's own update/miniters logic is not used). Its monitor
    thread is off, and its lock is the one writer's (output.LOCK): a redraw never lands inside a
    whole line. The words are `sentence`'s, laid out so that what a narrow terminal cuts off is the
    counts at the end, never the rate or the ETA.
    """

    every = REDRAW_EVERY

    def __init__(self, output: Output, what: str, counts: Counts) -> None:
        super().__init__(output, what, counts)
        self._bar = _bar(output)

    def _maybe_show(self, tally: Tally) -> None:
        now = time.monotonic()
        if now < self._next or not self._drawing.acquire(blocking=False):
            return
        try:
            self._next = now + self.every
            self.draw(tally, now)
        finally:
            self._drawing.release()

    def draw(self, tally: Tally, now: float) -> None:
        width = self.output.status_width()
        if width < MIN_STATUS_WIDTH:  # resized below a readable width: nothing, not a wrapped mess
            self.output.clear_status()
            return
        bar = self._bar
        elapsed = max(now - self.started, 1e-9)
        bar.n = tally.done
        bar.total = None if self.total is None else max(self.total, tally.done)
        bar.ncols = width - 1  # never the last column: a line that wraps cannot be redrawn
        bar.bar_format = layout(
            self.what, tally.done, bar.total, tally.done / elapsed, self.counts(tally), width - 1
        )
        bar.refresh()

    def close(self) -> None:
        with LOCK:
            self._bar.close()
            self.output.clear_status()


BAR_WIDTH = 20  # columns of the bar itself when the terminal has room for it and the words
MIN_BAR = 5  # below this a bar says nothing: it is left out


def layout(what: str, done: int, total: int | None, rate: float, counts: str, width: int) -> str:
    """The tqdm bar_format of one redraw: the same facts as `sentence`, what matters most first.

    While the listing runs the total is unknown: no bar, no percentage, no ETA. Once it is known:
    the count and percentage, the rate and the ETA always; then the counts if they fit whole in
    WIDTH; then a bar in the columns left (at most BAR_WIDTH, none under MIN_BAR). So a 60-column
    terminal keeps the rate and the ETA and loses the counts, which the summary prints anyway.
    """
    speed = f"{rate:.0f} objects/s"
    detail = f" ({counts})"
    if total is None:
        text = f"{what}: {done} done, still listing, {speed}"
        return _braces(text + (detail if len(text) + len(detail) <= width else ""))
    percent = 100 * done // total if total else 100  # rounded down: 100% only when all are done
    eta = f", ETA {duration(max(total - done, 0) / rate)}" if rate > 0 and done < total else ""
    head = f"{what}: {done} of {total} ({percent}%) "
    tail = f"{speed}{eta}"
    if len(head) + len(tail) + len(detail) <= width:
        tail += detail
    bar = min(BAR_WIDTH, width - len(head) - len(tail) - len("|| "))
    return _braces(head) + (f"|{{bar:{bar}}}| " if bar >= MIN_BAR else "") + _braces(tail)


def _braces(text: str) -> str:
    """TEXT as a literal in a str.format template (tqdm's bar_format)."""
    return text.replace("{", "{{").replace("}", "}}")


def _bar(output: Output) -> Any:
    """A tqdm bar on stderr's terminal, under the one writer's lock, without a monitor thread."""
    from tqdm import tqdm  # only a terminal needs it: log lines and -q never import it

    tqdm.monitor_interval = 0  # no thread of its own: this display redraws when work is done
    tqdm.set_lock(LOCK)
    return tqdm(
        file=output.status_file(),
        total=None,
        leave=False,  # the summary follows: the status line is cleared, not kept
        disable=False,  # display_for has already decided: this is a terminal
        delay=REDRAW_EVERY,  # nothing drawn when made: the first draw is the first redraw
        mininterval=0,
        smoothing=0,  # the rate is done / elapsed, as in the summary and in log lines
        dynamic_ncols=False,
    )


def display_for(output: Output, enabled: bool, what: str, counts: Counts) -> Any:
    """A status line on a wide terminal, plain lines elsewhere, nothing when not wanted."""
    if not enabled:
        return NoProgress()
    if output.status_width() >= MIN_STATUS_WIDTH:
        return TerminalProgress(output, what, counts)
    return LogProgress(output, what, counts)


class RunProgress:
    """What one engine run reports to: each new failure at once on stderr, then the display.

    The engine appends to `tally.failures` and then calls `finished`; a failure found after the
    last object (the listing, the marker) is reported by `close`.
    """

    def __init__(self, output: Output, display: Any) -> None:
        self.output = output
        self.display = display
        self._reported = 0
        self._lock = threading.Lock()

    def listed(self, tally: Tally) -> None:
        self.display.listed(tally)

    def finished(self, tally: Tally) -> None:
        self._report_failures(tally)
        self.display.finished(tally)

    def listing_complete(self, tally: Tally) -> None:
        self.display.listing_complete(tally)

    def listing_ended(self, objects: int) -> None:
        self.display.listing_complete(Tally(listed=objects))

    def close(self, tally: Tally | None = None) -> None:
        self.display.close()
        if tally is not None:
            self._report_failures(tally)

    def _report_failures(self, tally: Tally) -> None:
        with self._lock:
            new = tally.failures[self._reported :]
            self._reported += len(new)
        for failure in new:
            self.output.warning(f"gos3matic: FAILED {failure.key}: {failure.error}")

    def watching(self, store: Store, plan: Plan) -> Store:
        """The store, whose listings tell this progress when they end (the total is known then):
        the bucket's listing (threads) and, where the hot path lists on the engine's loop, its
        pages too."""
        objects = store.objects
        if getattr(objects, "list_pages", None) is not None:
            objects = cast(ObjectStore, _PagesWatch(objects, plan, self))
        return Store(cast(Bucket, _ListingWatch(store.bucket, plan, self)), objects)


class _ListingWatch:
    """A bucket whose object listing, once it has handed out its last object, tells the progress
    how many of them are the plan's to annotate (the engine may list ahead of its tally)."""

    def __init__(self, bucket: Bucket, plan: Plan, progress: RunProgress) -> None:
        self._bucket = bucket
        self._plan = plan
        self._progress = progress

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bucket, name)

    def list_objects(self, prefix: str) -> Iterator[Listed]:
        plan, objects = self._plan, 0
        for listed in self._bucket.list_objects(prefix):
            if _counted(plan, listed):
                objects += 1
            yield listed
        self._progress.listing_ended(objects)


def _counted(plan: Plan, listed: Listed) -> bool:
    """Whether a listed object is one the plan annotates (not the marker, not another shard's)."""
    return listed.key != plan.marker_key and (plan.shard is None or owns(plan.shard, listed.key))


class _PagesWatch:
    """A hot-path store whose page-by-page listing (on the engine's loop) tells the progress how
    many objects are the plan's once the last page is read. The engine takes a page's objects
    only as fast as the flow lets them out, so the next page is asked for as soon as one is
    handed out: the end of the listing is seen when it is read, not when it is used up."""

    def __init__(self, objects: ObjectStore, plan: Plan, progress: RunProgress) -> None:
        self._objects = objects
        self._plan = plan
        self._progress = progress

    def __getattr__(self, name: str) -> Any:
        return getattr(self._objects, name)

    async def list_pages(self, prefix: str) -> AsyncIterator[list[Listed]]:
        pages = cast(Any, self._objects).list_pages(prefix).__aiter__()
        objects = 0

        async def next_page() -> list[Listed] | None:
            nonlocal objects
            page = await anext(pages, None)
            if page is None:
                self._progress.listing_ended(objects)
            else:
                objects += sum(1 for listed in page if _counted(self._plan, listed))
            return page

        ahead = asyncio.ensure_future(next_page())
        try:
            while (page := await ahead) is not None:
                ahead = asyncio.ensure_future(next_page())
                yield page
        finally:
            ahead.cancel()


def duration(seconds: float) -> str:
    """A short human duration: 42 s, 3 min 05 s, 2 h 10 min."""
    whole = int(seconds + 0.5)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02} min"
