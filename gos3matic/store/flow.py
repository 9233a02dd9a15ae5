"""How many requests a run keeps in flight, and how fast it sends them when S3 says SlowDown.

Two controls, both adaptive (docs/s3-notes.md, "Rates"):

- **Concurrency**, for latency. Against real S3 a request waits tens of milliseconds, so
  throughput is requests in flight divided by the round trip. The window starts small and grows
  by two for every clean answer (it triples each round trip, as a TCP slow start would double)
  up to the ceiling (`--max-in-flight`); after the first throttle, by one.
- **Rate**, for politeness. Until S3 throttles there is no rate limit at all. A throttling answer
  (503 SlowDown, 429, ...) switches on a pacer that spaces the sends at 90% of the rate S3
  *accepted* (its clean answers) over the last second, counted over a whole second even early in
  a run: the answers to a burst S3 had saved credit for are not a rate it keeps. After that first
  cut the pace doubles a second until S3 throttles again; from then on it grows ~10% a second.
  It grows only while throttles are rare (a few in a hundred answers over the last second): a
  pace that grew while throttled would run away from a limit that lets a saved-up burst through
  before it bites. When throttles are more than that, the pace is cut again to 90% of what S3
  accepted, one cut per reaction interval, so that the answers to sends already on the wire do
  not cut it again and again. If cuts have brought the pace down by a quarter, over a second at
  least, and throttles are as common as at the first of them, the pace did not cause them (a
  fault, a busy neighbour): the cuts are taken back and that share of throttles is let pass
  from then on, or such SlowDowns would ratchet the pace down cut after cut, when each only
  costs a retry. An additive increase and a multiplicative decrease, as TCP's, on a rate
  instead of a window; the AWS SDKs' "adaptive" mode paces the same way but regrows along a
  cubic curve. tests/unit/test_flow_throttle.py runs the engine against three shapes of limit.

Everything here runs on the engine's event-loop thread: no locks.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from gos3matic.core.outcome import RequestStats

STOP_POLL = 0.1  # seconds between looks at the stop flag while waiting for room or a copy
DEFAULT_CEILING = 1024  # requests in flight at most, unless --max-in-flight says otherwise
START = 64  # the window before anything is known: small enough not to flood a throttled prefix
FIRST_RATE = 50.0  # requests/s, the slowest pace: S3 throttles at thousands a second, and
# below this retries with their backoff are the better brake
CUT = 0.9  # a cut paces at this share of the rate S3 accepted over the last WINDOW
PROBE_INCREASE = 0.7  # requests/s added per clean answer after the first cut: x2 a second
INCREASE = 0.1  # the same after a later cut: ~10% growth a second
WINDOW = 1.0  # seconds of answers that measure the rate S3 accepts: S3 states its limits per
# second, and a limit counted per clock second is only measured right over a whole one
REACTION = 0.5  # seconds: one rate cut at most per interval
NOISE = 0.04  # share of throttled answers in the last WINDOW below which the pace holds
SAMPLE = 40  # answers in the last WINDOW, at least, for that share to say anything
NO_RESPONSE = 0.7  # cuts that leave this much of the throttles' share were not the answer,
GIVE_UP = 0.75  # ... once they have brought the pace down to this share of what it was
PACER_TICK = 0.005  # seconds: the pacer releases the sends due in each tick together
PACER_BURST = 0.05  # seconds of sends it may release at once after a late wake-up


class FlowControl:
    """The concurrency window and the pacer of one run; `request()` wraps every attempt."""

    def __init__(
        self,
        ceiling: int = DEFAULT_CEILING,
        start: int = START,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.clock = clock or time.monotonic  # a test's virtual clock, or the real one
        self.ceiling = ceiling
        self.window = float(min(start, ceiling))
        self.stats = RequestStats()
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.rate: float | None = None  # the pacer's, once S3 has throttled
        self._turns: deque[asyncio.Future[None]] = deque()
        self._pacer: asyncio.Task[None] | None = None
        self._tokens, self._tokens_at = 1.0, self.clock()
        self._throttles: deque[float] = deque()  # when each throttle of the last WINDOW came
        self._noise = NOISE  # a share of throttles that is not ours to prevent
        # (when, pace before, share of throttles) at the first cut since throttles were rare
        self._series: tuple[float, float, float] | None = None
        self._last_cut = -REACTION
        self._accepted: deque[float] = deque()  # when each clean answer of the last WINDOW came
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
            now = self.clock()
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
        now = self.clock()
        self._accepted.append(now)
        self._forget(now)
        if self.rate is not None and len(self._throttles) <= self._noise * len(self._accepted):
            # throttles are rare again: the pace grows, and the cuts so far did their work
            self.rate += PROBE_INCREASE if self._cuts == 1 else INCREASE
            self._series = None
        if self.window < self.ceiling:  # one more in flight from now on, two in slow start
            self.window = min(self.ceiling, self.window + (2 if self.rate is None else 1))
            self._wake()

    def accepted_rate(self) -> float:
        """Clean answers per second over the last WINDOW: the rate S3 let through. Over the
        whole WINDOW even early in a run, when the answers so far are a burst S3 had saved up
        credit for, not a rate it keeps."""
        self._forget(self.clock())
        return len(self._accepted) / WINDOW

    def _share(self) -> tuple[int, float]:
        """Answers in the last WINDOW, and the share of them that were throttles."""
        answers = len(self._accepted) + len(self._throttles)
        return answers, len(self._throttles) / max(answers, 1)

    def throttled(self) -> None:
        """S3 answered SlowDown (or another throttling answer): slow down, once per interval,
        when throttles are more than a few of the answers of the last second."""
        self.stats.throttled += 1
        now = self.clock()
        self._throttles.append(now)
        self._forget(now)
        if now - self._last_cut < REACTION:
            return
        answers, share = self._share()
        if self.rate is not None and (answers < SAMPLE or share <= self._noise):
            return
        accepted = self.accepted_rate()
        if self.rate is None:
            self.rate = max(FIRST_RATE, accepted * CUT)
        elif self._not_ours(now, share):
            return
        else:
            self.rate = max(FIRST_RATE, min(self.rate, accepted) * CUT)
        self._cuts += 1
        self._last_cut = now
        if self._tokens_at < now:  # no credit for the time before the pacer was on
            self._tokens, self._tokens_at = min(self._tokens, 1.0), now

    def _not_ours(self, now: float, share: float) -> bool:
        """Did the cuts so far make throttles rare again? Had S3's limit caused them, a slower
        pace would have; had they nothing to do with the pace (a fault, a busy neighbour), their
        share stays. Then the cuts are taken back and that share let pass from then on, or such
        throttles would ratchet the pace down cut after cut, when each only costs a retry.
        Judged over several cuts, a WINDOW at least: the first ones may fall short when the
        rate measured included credit S3 had saved up."""
        assert self.rate is not None
        if self._series is None:
            self._series = (now, self.rate, share)  # the first cut since throttles were rare
            return False
        started, rate_before, _ = self._series
        if now - started >= WINDOW and self.rate <= GIVE_UP * rate_before:
            self._series = None
            self.rate = rate_before
            self._noise = max(self._noise, share * 1.5)
            return True
        return False

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
            self.stats.requests += 1
            yield
        finally:
            self.in_flight -= 1
            self._wake()
        self._answered_cleanly()
