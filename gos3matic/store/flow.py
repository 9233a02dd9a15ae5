"""How many requests a run keeps in flight, and how fast it sends them when S3 says SlowDown.

Two controls, both adaptive (docs/s3-notes.md, "Rates"):

- **Concurrency**, for latency. Against real S3 a request waits tens of milliseconds, so
  throughput is requests in flight divided by the round trip. The window starts at `start` and
  grows by one for every clean answer (doubling each round trip, as TCP's slow start) up to the
  ceiling (`--max-in-flight`).
- **Rate**, for politeness. Until S3 throttles there is no rate limit at all. The first throttling
  answer (503 SlowDown, 429, ...) switches on a pacer: sends are spaced at a rate set to 70% of the
  rate measured just before, and grown back along a cubic curve while answers come back clean --
  the AWS SDKs' "adaptive" retry mode. One cut per reaction interval, so that the answers to a
  burst already on the wire do not cut the rate again and again.

Everything here runs on the engine's event-loop thread: no locks.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gos3matic.core.outcome import RequestStats

DEFAULT_CEILING = 1024  # requests in flight at most, unless --max-in-flight says otherwise
START = 256  # the window before anything is known: what s5cmd runs from the start
BETA = 0.7  # the rate after a throttle, as a share of the rate measured before it
CUBIC_C = 0.4  # the AWS SDKs' constants for regrowing the rate
MIN_RATE = 1.0  # requests per second: never stop altogether
MEASURE_EVERY = 0.25  # seconds per bucket of the measured send rate
SMOOTHING = 0.8  # weight of the newest bucket in the measured rate
REACTION = 0.5  # seconds: one rate cut at most per interval


class FlowControl:
    """The concurrency window and the pacer of one run; `request()` wraps every attempt."""

    def __init__(self, ceiling: int = DEFAULT_CEILING, start: int = START) -> None:
        self.ceiling = ceiling
        self.window = float(min(start, ceiling))
        self.stats = RequestStats()
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        # pacing, off until the first throttle
        self.rate: float | None = None
        self._next_send = 0.0
        self._last_cut = -REACTION
        self._rate_at_cut = 0.0
        # measured send rate
        self._bucket_start = time.monotonic()
        self._bucket_sent = 0
        self.measured_rate = 0.0

    # -- concurrency --

    async def _enter(self) -> None:
        while self.in_flight >= int(self.window):
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        self.in_flight += 1
        self.stats.peak_in_flight = max(self.stats.peak_in_flight, self.in_flight)

    def _wake(self) -> None:
        """Let in as many waiters as the window has room for; they re-check when they run."""
        room = int(self.window) - self.in_flight
        while room > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                room -= 1

    # -- pacing --

    async def _pace(self) -> None:
        now = time.monotonic()
        self._measure(now)
        if self.rate is None:
            return
        self._regrow(now)
        send_at = max(now, self._next_send)
        self._next_send = send_at + 1.0 / self.rate
        if send_at > now:
            await asyncio.sleep(send_at - now)

    def _measure(self, now: float) -> None:
        self._bucket_sent += 1
        elapsed = now - self._bucket_start
        if elapsed >= MEASURE_EVERY:
            current = self._bucket_sent / elapsed
            self.measured_rate = SMOOTHING * current + (1 - SMOOTHING) * self.measured_rate
            self._bucket_start, self._bucket_sent = now, 0

    def _regrow(self, now: float) -> None:
        """Cubic growth back towards, then past, the rate at the last cut."""
        assert self.rate is not None
        peak = self._rate_at_cut
        k = ((peak * (1 - BETA)) / CUBIC_C) ** (1 / 3)
        since = now - self._last_cut
        self.rate = max(MIN_RATE, CUBIC_C * (since - k) ** 3 + peak)

    def throttled(self) -> None:
        """S3 answered SlowDown (or another throttling answer): slow down, once per interval."""
        self.stats.throttled += 1
        now = time.monotonic()
        if now - self._last_cut < REACTION:
            return
        sending = self.measured_rate or (self.in_flight / max(REACTION, 1e-3))
        current = sending if self.rate is None else min(self.rate, sending)
        self._rate_at_cut = max(MIN_RATE, current)
        self.rate = max(MIN_RATE, current * BETA)
        self._last_cut = now
        self._next_send = now

    # -- one attempt --

    @asynccontextmanager
    async def request(self) -> AsyncIterator[None]:
        """Around one attempt of one request: a slot in the window, its turn under the pacer."""
        await self._enter()
        try:
            await self._pace()
            self.stats.requests += 1
            yield
        finally:
            self.in_flight -= 1
            self._wake()
        if self.window < self.ceiling:  # a clean answer: one more in flight from now on
            self.window += 1
            self._wake()
