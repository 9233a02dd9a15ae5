"""The terminal display is a tqdm bar that shares the one writer's lock: on a real pseudo-terminal,
threads write whole lines while it is redrawn as often as it can be, and what reaches the screen
is read back and taken apart as a person's terminal would show it."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import pty
import re
import struct
import termios
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import pytest
from support.terminal import Screen
from tqdm import tqdm

from gos3matic import output as output_module
from gos3matic import progress as progress_module
from gos3matic.core.outcome import Plan, Result, Tally
from gos3matic.output import Output
from gos3matic.progress import (
    BAR_WIDTH,
    MIN_BAR,
    LogProgress,
    RunProgress,
    TerminalProgress,
    display_for,
    layout,
)
from gos3matic.report import counts_for
from gos3matic.store.protocols import Listed, Store

WORKERS = 4
PER_WORKER = 150
LINE = re.compile(r"worker \d line \d{3} " + "x" * 60)


@contextmanager
def terminal(columns: int) -> Iterator[tuple[Any, list[bytes]]]:
    """A pseudo-terminal COLUMNS wide: its slave side as a text stream, and what its master reads
    (a thread drains it, as a terminal does, so that no write blocks)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    stream = open(slave, "w", encoding="utf-8", closefd=True)  # noqa: SIM115
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError as error:
                if error.errno != errno.EIO:
                    raise
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        yield stream, chunks
    finally:
        stream.close()
        reader.join(timeout=10)
        os.close(master)


def run_display(columns: int, monkeypatch: pytest.MonkeyPatch) -> tuple[Screen, Tally, Any]:
    """Four threads each count 150 objects, print one whole line per object and tell the display;
    the listing completes a third of the way through. Redraws are not rate-limited here, so that
    they come between lines as often as the threads allow."""
    monkeypatch.setattr(TerminalProgress, "every", 0.0)
    tally = Tally()
    counting = threading.Lock()
    total = WORKERS * PER_WORKER
    with terminal(columns) as (stream, chunks):
        out = Output(stdout=stream, stderr=stream)
        display = display_for(out, True, "annotating", counts_for(False))
        progress = RunProgress(out, display)

        def work(worker: int) -> None:
            for index in range(PER_WORKER):
                with counting:
                    tally.listed += 1
                    tally.count(Result.ANNOTATED)
                    if tally.done == total // 3:
                        progress.listing_complete(Tally(listed=total))
                out.line(f"worker {worker} line {index:03} " + "x" * 60)
                progress.finished(tally)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(WORKERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        progress.close(tally)
        out.line("summary: done")
    raw = b"".join(chunks).decode("utf-8")
    return Screen(0, raw, 0.0), tally, display


def test_lines_stay_whole_while_the_tqdm_bar_is_redrawn_between_them(monkeypatch):
    screen, tally, display = run_display(100, monkeypatch)

    assert isinstance(display, TerminalProgress)
    lines = screen.lines
    assert lines[-1] == "summary: done"
    body = lines[:-1]
    assert len(body) == WORKERS * PER_WORKER
    assert all(LINE.fullmatch(line) for line in body), [b for b in body if not LINE.fullmatch(b)]
    assert sorted(body) == sorted(
        f"worker {w} line {i:03} " + "x" * 60 for w in range(WORKERS) for i in range(PER_WORKER)
    )
    draws = screen.status_draws
    assert len(draws) > 10, screen.raw[:2000]
    assert all(len(draw) <= 99 for draw in draws)  # never the last column: never wrapped
    listing = [draw for draw in draws if "still listing" in draw]
    counted = [draw for draw in draws if " of 600 (" in draw]
    assert listing and counted and len(listing) + len(counted) == len(draws), draws
    assert not any("%" in draw or "ETA" in draw or "|" in draw for draw in listing), listing
    bar = re.compile(r"annotating: (\d+) of 600 \((\d+)%\) \|([█▏▎▍▌▋▊▉ ]+)\| \d+ objects/s")
    for draw in counted:
        match = bar.match(draw)
        assert match, draw
        done, percent, drawn = int(match[1]), int(match[2]), match[3]
        assert percent == 100 * done // 600 and MIN_BAR <= len(drawn) <= BAR_WIDTH, draw
        assert re.search(r"\(annotated \d+, skipped 0, failed 0\)$", draw), draw
    assert screen.raw.rstrip("\r\n").endswith("summary: done")  # the bar is gone at the end
    assert tally.done == WORKERS * PER_WORKER


def test_the_bar_takes_the_writers_lock_and_starts_no_monitor_thread(monkeypatch):
    run_display(80, monkeypatch)

    assert tqdm.get_lock() is output_module.LOCK
    assert tqdm.monitor_interval == 0
    assert tqdm.monitor is None
    assert not [t for t in threading.enumerate() if type(t).__name__ == "TMonitor"]


def test_a_60_column_terminal_keeps_the_rate_and_the_eta_and_drops_the_counts_whole():
    width = 59
    counts = "annotated 12345, skipped 678, failed 9"
    for done, total, seconds in [(1, 24, 0.5), (13, 24, 2), (12345, 20000, 10), (99999, 10**5, 80)]:
        rate = done / seconds
        drawn = tqdm.format_meter(
            done, total, seconds, ncols=width,
            bar_format=layout("annotating", done, total, rate, counts, width),
        )  # fmt: skip

        assert len(drawn) <= width, drawn
        assert re.search(rf"{done} of {total} \(\d+%\)", drawn), drawn
        assert re.search(r"\d+ objects/s, ETA \d+ (s|min \d\d s|h \d\d min)$", drawn), drawn
        assert "annotated" not in drawn  # not cut in the middle: left out


def test_a_wide_terminal_shows_bar_rate_eta_and_counts():
    counts = "annotated 5, skipped 1, failed 0"
    drawn = tqdm.format_meter(6, 24, 2.0, ncols=119, bar_format=layout(
        "annotating", 6, 24, 3.0, counts, 119
    ))  # fmt: skip

    assert drawn == (
        f"annotating: 6 of 24 (25%) |█████{' ' * (BAR_WIDTH - 5)}| 3 objects/s, ETA 6 s "
        "(annotated 5, skipped 1, failed 0)"
    )


def test_a_terminal_too_narrow_for_a_status_line_gets_log_lines_and_no_tqdm(monkeypatch):
    made: list[Any] = []
    monkeypatch.setattr(progress_module, "_bar", lambda out: made.append(out))
    with terminal(progress_module.MIN_STATUS_WIDTH - 1) as (stream, _):
        display = display_for(Output(stdout=stream, stderr=stream), True, "annotating", str)

    assert isinstance(display, LogProgress) and made == []


class _Pages:
    """A hot-path store that lists on the loop, a page at a time."""

    def __init__(self, pages: list[list[str]]) -> None:
        self.pages = pages
        self.flow = object()

    async def list_pages(self, prefix: str) -> Any:
        for page in self.pages:
            await asyncio.sleep(0)
            yield [Listed(key=prefix + key, size=1, etag='"e"') for key in page]


class _Totals:
    def __init__(self) -> None:
        self.totals: list[int] = []

    def listing_complete(self, tally: Tally) -> None:
        self.totals.append(tally.listed)


def test_a_listing_on_the_loop_tells_the_total_once_its_last_page_is_read_not_used_up():
    plan = Plan("b", "p/42.1/", {"go_pipeline_label": "42"}, {}, workers=8)
    pages = [["a", "b"], ["c", ""]]  # "" is the marker's own key: not counted
    totals = _Totals()
    progress = RunProgress(Output(), totals)
    store = progress.watching(Store(cast(Any, object()), cast(Any, _Pages(pages))), plan)

    async def consume() -> list[list[int]]:
        seen = []
        async for page in store.objects.list_pages(plan.prefix):
            for _ in range(5):  # the engine takes its time over a page's objects
                await asyncio.sleep(0)
            seen.append(list(totals.totals))
            assert page
        return seen

    seen = asyncio.run(consume())

    assert seen == [[], [2 + 1]]  # known while the last page's objects are still being taken
    assert totals.totals == [3]
