"""How many requests a run keeps in flight, and how fast it sends them when S3 says SlowDown.

Two controls, both adaptive (docs/s3-notes.md, "Rates"):

- **Concurrency**, for latency. Against real S3 a request waits tens of milliseconds, so
  throughput is requests in flight divided by the round trip. The window starts small and grows
  by two for every clean answer (it triples each round trip, as a TCP slow start would double)
  up to the ceiling (`--max-in-flight`); after the first throttle, by one.
- **Rate**, for politeness. Until S3 throttles there is no rate limit at all. A throttling answer
  (503 SlowDown, 429, ...) switches on a pacer that spaces the sends. The first time, little is
  known (the answers to a burst arrive together): the pacer starts at half the rate S3 has
  accepted so far (never under 50 a second) and grows sevenfold a second until S3 throttles
  again. From then on, when more than a tenth of the last second's answers were throttles, the
  pace is set to 90% of the rate S3 *accepted* (its clean answers) over that second. If a second
  at the slower pace brings as many throttles, the pace did not cause them (a fault, a busy
  neighbour): the cut is taken back and that share of throttles is let pass from then on, or such
  SlowDowns would ratchet the pace down cut after cut, when each only costs a retry. Every clean
  answer raises the pace by a tenth of a request per second, ~10% a second, until it finds S3's
  limit again. One cut per reaction interval, so that the answers to a burst already on the wire
  do not cut it again and again. An additive increase and a multiplicative decrease, as TCP's, on
  a rate instead of a window; the AWS SDKs' "adaptive" mode paces the same way but regrows along
  a cubic curve.

Everything here runs on the engine's event-loop thread: no locks.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gos3matic.core.outcome import RequestStats

STOP_POLL = 0.1  # seconds between looks at the stop flag while waiting for room or a copy
DEFAULT_CEILING = 1024  # requests in flight at most, unless --max-in-flight says otherwise
START = 64  # the window before anything is known: small enough not to flood a throttled prefix
FIRST_CUT = 0.5  # the first pacing rate, as a share of the rate S3 accepted
FIRST_RATE = 50.0  # requests/s, the slowest pace: S3 throttles at thousands a second, and
# below this retries with their backoff are the better brake
CUT = 0.9  # every later cut
PROBE_INCREASE = 2.0  # requests/s added per clean answer after the first cut: x7 a second
INCREASE = 0.1  # the same after a later cut: ~10% growth a second
WINDOW = 1.0  # seconds of clean answers that measure the rate S3 accepts
REACTION = 0.5  # seconds: one rate cut at most per interval
NOISE = 0.04  # share of throttled answers in the last WINDOW below which the pace holds
SAMPLE = 40  # answers in the last WINDOW, at least, for that share to say anything
NO_RESPONSE = 0.7  # a cut that leaves this much of the throttles' share was not the answer
PACER_TICK = 0.005  # seconds: the pacer releases the sends due in each tick together
PACER_BURST = 0.05  # seconds of sends it may release at once after a late wake-up


class FlowControl:
    """The concurrency window and the pacer of one run; `request()` wraps every attempt."""

    def __init__(self, ceiling: int = DEFAULT_CEILING, start: int = START) -> None:
        self.ceiling = ceiling
        self.window = float(min(start, ceiling))
        self.stats = RequestStats()
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.rate: float | None = None  # the pacer's, once S3 has throttled
        self._turns: deque[asyncio.Future[None]] = deque()
        self._pacer: asyncio.Task[None] | None = None
        self._tokens, self._tokens_at = 1.0, time.monotonic()
        self._throttles: deque[float] = deque()  # when each throttle of the last WINDOW came
        self._noise = NOISE  # a share of throttles that is not ours to prevent
        self._undo: tuple[float, float] | None = None  # (pace, share) before the last cut
        self._last_cut = -REACTION
        self._accepted: deque[float] = deque()  # when each clean answer of the last WINDOW came
        self._started: float | None = None  # the first send
        self._cuts = 0

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
        """Wait for this send's turn under the pacer, if it is on: one queue, released at the
        current rate by one task, so that a cut slows every waiting send at once."""
        if self.rate is None:
            return
        turn = asyncio.get_running_loop().create_future()
        self._turns.append(turn)
        if self._pacer is None or self._pacer.done():
            self._pacer = asyncio.get_running_loop().create_task(self._release_turns())
        await turn

    async def _release_turns(self) -> None:
        # The tokens live on self: a send that finds the queue empty waits its turn too.
        while self._turns:
            now = time.monotonic()
            rate = self.rate or FIRST_RATE
            self._tokens = min(
                self._tokens + (now - self._tokens_at) * rate, max(1.0, rate * PACER_BURST)
            )
            self._tokens_at = now
            while self._tokens >= 1.0 and self._turns:
                turn = self._turns.popleft()
                if not turn.done():
                    turn.set_result(None)
                    self._tokens -= 1.0
            if self._turns:
                await asyncio.sleep(max(PACER_TICK, (1.0 - self._tokens) / rate))

    def _answered_cleanly(self) -> None:
        now = time.monotonic()
        self._accepted.append(now)
        self._forget(now)
        if self.rate is not None:
            self.rate += PROBE_INCREASE if self._cuts == 1 else INCREASE
        if self.window < self.ceiling:  # one more in flight from now on, two in slow start
            self.window = min(self.ceiling, self.window + (2 if self.rate is None else 1))
            self._wake()

    def accepted_rate(self) -> float:
        """Clean answers per second over the last WINDOW (or since the start, if shorter)."""
        now = time.monotonic()
        self._forget(now)
        since = now - (self._started or now)
        return len(self._accepted) / max(min(WINDOW, since), 0.05)

    def throttled(self) -> None:
        """S3 answered SlowDown (or another throttling answer): slow down, once per interval,
        when throttles are more than a few of the answers of the last second."""
        self.stats.throttled += 1
        now = time.monotonic()
        self._throttles.append(now)
        self._forget(now)
        if now - self._last_cut < REACTION:
            return
        answers = len(self._accepted) + len(self._throttles)
        share = len(self._throttles) / max(answers, 1)
        if self.rate is not None and (answers < SAMPLE or share <= self._noise):
            return
        if self._undo is not None:
            if now - self._last_cut < WINDOW:
                return  # a second at the new pace first, to see whether it helped
            rate_before, share_before = self._undo
            self._undo = None
            if share >= NO_RESPONSE * share_before:
                # A slower pace did not make throttles rarer: they are not ours to prevent
                # (a fault, a busy neighbour). Take the cut back and let such a share pass.
                self.rate = rate_before
                self._noise = max(self._noise, share * 1.5)
                return
        accepted = self.accepted_rate()
        if self.rate is None:
            self.rate = max(FIRST_RATE, accepted * FIRST_CUT)
        else:
            self._undo = (self.rate, share)
            self.rate = max(FIRST_RATE, min(self.rate, accepted) * CUT)
        self._cuts += 1
        self._last_cut = now
        if self._tokens_at < now:  # no credit for the time before the pacer was on
            self._tokens, self._tokens_at = min(self._tokens, 1.0), now

    def _forget(self, now: float) -> None:
        for answers in (self._accepted, self._throttles):
            while answers and answers[0] < now - WINDOW:
                answers.popleft()

    # -- one attempt --

    @asynccontextmanager
    async def request(self) -> AsyncIterator[None]:
        """Around one attempt of one request: a slot in the window, its turn under the pacer."""
        await self._enter()
        try:
            await self._pace()
            if self._started is None:
                self._started = time.monotonic()
            self.stats.requests += 1
            yield
        finally:
            self.in_flight -= 1
            self._wake()
        self._answered_cleanly()
