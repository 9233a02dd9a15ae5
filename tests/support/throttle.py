"""Throttling models of S3's request-rate limit, and a simulated run of the engine against them.

A model says, for each request as it reaches the server, whether it is let through or answered
503 SlowDown. Three shapes, since S3 documents its limit but not how it enforces it:

- a token bucket that saves up one second of its rate (a long burst, then exactly the rate);
- a token bucket that saves up a tenth of a second (hardly any burst);
- a fixed one-second window: so many requests per clock second, then SlowDown until the next.

Each is used twice: in `simulate`, the whole engine (engine.annotate_revisions, its Annotator,
the retry policy and the flow control, exactly as a run drives them) against an in-memory bucket
on a virtual clock, where nothing depends on the machine's speed, so the figures of a seed are
the same on every run; and in front of a real server by `ThrottleRule`, a rule of the fault
proxy (tests/support/faultproxy.py) for the real CLI.

The SlowDown answers come either at once (the request is refused the moment it is sent, as by a
throttle close to the client) or after the round trip (refused on arrival, the answer as slow as
any other), since a pacer that reacts to answers sees the two very differently.
"""

from __future__ import annotations

import asyncio
import math
import random
import selectors
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from unittest import mock

from gos3matic.core.outcome import Plan, Tally, Write
from gos3matic.engine import annotate_prefix
from gos3matic.errors import S3Error
from gos3matic.store.flow import FlowControl
from gos3matic.store.retry import with_retries_async
from support.memstore import MemoryStore

T = TypeVar("T")


class Limiter(Protocol):
    """One instance per run: `admit(now)` for each request as it reaches the server."""

    def admit(self, now: float) -> bool: ...

    def allowed(self, start: float, end: float) -> float:
        """The most requests it could have let through between `start` and `end`."""
        ...


class TokenBucket:
    """`rate` tokens a second, at most `burst` seconds of them saved (full at the start)."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.capacity = rate, max(1.0, rate * burst)
        self.tokens = self.capacity
        self.last: float | None = None

    def admit(self, now: float) -> bool:
        if self.last is not None:
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def allowed(self, start: float, end: float) -> float:
        return self.capacity + self.rate * (end - start)


class FixedWindow:
    """`rate` requests in each clock second (counted from the first request), then SlowDown."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.origin: float | None = None
        self.second, self.used = -1, 0

    def admit(self, now: float) -> bool:
        if self.origin is None:
            self.origin = now - 0.5  # the first request lands mid-second, not at a boundary
        second = math.floor(now - self.origin)
        if second != self.second:
            self.second, self.used = second, 0
        if self.used < self.rate:
            self.used += 1
            return True
        return False

    def allowed(self, start: float, end: float) -> float:
        origin = start - 0.5 if self.origin is None else self.origin
        return self.rate * (math.floor(end - origin) - math.floor(start - origin) + 1)


@dataclass(frozen=True)
class Model:
    """A throttle shape and how its SlowDown answers travel."""

    name: str
    make: Callable[[float], Limiter]  # a fresh limiter for this rate (requests/s)
    at_once: bool  # SlowDown answered as the request is sent; else after the round trip

    def __str__(self) -> str:
        return f"{self.name}, SlowDown {'at once' if self.at_once else 'after the round trip'}"


SHAPES: dict[str, Callable[[float], Limiter]] = {
    "token bucket, 1 s burst": lambda rate: TokenBucket(rate, 1.0),
    "token bucket, 0.1 s burst": lambda rate: TokenBucket(rate, 0.1),
    "fixed 1 s window": FixedWindow,
}
MODELS = [Model(name, make, at_once) for name, make in SHAPES.items() for at_once in (True, False)]


# -- the virtual clock ------------------------------------------------------------------------


class VirtualClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def monotonic(self) -> float:
        return self.now


class _Selector(selectors.SelectSelector):
    """Nothing real to wait for: a wait for the next timer is a jump of the clock to it."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__()
        self.clock = clock

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is None:
            raise RuntimeError("simulation stuck: nothing scheduled and nothing ready")
        self.clock.now += max(0.0, timeout)
        return []


class VirtualLoop(asyncio.SelectorEventLoop):
    """An event loop on a VirtualClock; work handed to a thread runs at once, inline, so that
    nothing real runs beside it and a seed always gives the same run."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(_Selector(clock))
        self.clock = clock

    def time(self) -> float:
        return self.clock.now

    def run_in_executor(self, executor: Any, func: Callable[..., T], *args: Any) -> Any:
        future = self.create_future()
        try:
            future.set_result(func(*args))
        except BaseException as error:  # handed over to whoever awaits it, as a pool would
            future.set_exception(error)
        return future


@contextmanager
def on_virtual_time(clock: VirtualClock) -> Iterator[None]:
    """asyncio.run (the engine's) on a VirtualLoop of `clock` while inside."""

    def run(main: Any, *, debug: bool | None = None) -> Any:
        with asyncio.Runner(loop_factory=lambda: VirtualLoop(clock)) as runner:
            return runner.run(main)

    with mock.patch("asyncio.run", run):
        yield


# -- the simulated server ---------------------------------------------------------------------


@dataclass
class Counts:
    """What the simulated server saw."""

    requests: int = 0
    throttled: int = 0
    first: float | None = None  # when the first request arrived
    last: float = 0.0  # when the last answer left

    @property
    def accepted(self) -> int:
        return self.requests - self.throttled


class ThrottledObjects:
    """The hot path of a MemoryStore behind a limiter: each attempt takes a round trip of
    `rtt` seconds (+-20%, from the seed), and the limiter decides as it reaches the server."""

    def __init__(
        self,
        memory: Any,
        flow: FlowControl,
        limiter: Limiter,
        model: Model,
        rtt: float,
        clock: VirtualClock,
        seed: int,
    ) -> None:
        self.memory, self.flow, self.limiter, self.model = memory, flow, limiter, model
        self.rtt, self.clock = rtt, clock
        self.random = random.Random(seed)
        self.counts = Counts()
        self.trace: dict[int, list[float]] = {}  # per second: accepted, throttled, pace

    async def _send(self, operation: str, key: str, answer: Callable[[], T]) -> T:
        async def attempt() -> T:
            trip = self.rtt * self.random.uniform(0.8, 1.2)
            if not self.model.at_once:
                await asyncio.sleep(trip / 2)
            admitted = self._arrive()
            if self.model.at_once and not admitted:
                self.counts.last = self.clock.now
                raise S3Error.of("SlowDown", "Please reduce your request rate.", 503, operation)
            await asyncio.sleep(trip if self.model.at_once else trip / 2)
            self.counts.last = self.clock.now
            if not admitted:
                raise S3Error.of("SlowDown", "Please reduce your request rate.", 503, operation)
            return self.memory._answer(operation, key, answer)

        return await with_retries_async(attempt, self.flow)

    def _arrive(self) -> bool:
        now = self.clock.now
        if self.counts.first is None:
            self.counts.first = now
        self.counts.requests += 1
        admitted = self.limiter.admit(now)
        self.counts.throttled += not admitted
        second = self.trace.setdefault(int(now - 1000.0), [0, 0, 0.0])
        second[0 if admitted else 1] += 1
        second[2] = self.flow.rate or 0.0
        return admitted

    async def head_object(self, key: str) -> Any:
        return await self._send("HeadObject", key, lambda: self.memory._head(key))

    async def get_object_acl(self, key: str) -> Any:
        return await self._send("GetObjectAcl", key, lambda: self.memory._acl(key))

    async def copy_object(self, params: Any) -> str | None:
        return await self._send("CopyObject", params["Key"], lambda: self.memory._copy(params))


class _Quiet:
    def listed(self, tally: Tally) -> None:
        pass

    def finished(self, tally: Tally) -> None:
        pass

    def listing_complete(self, tally: Tally) -> None:
        pass


@dataclass
class Figures:
    """One simulated run, as the issue's targets measure it."""

    model: str
    seed: int
    rtt: float
    objects: int
    annotated: int
    failed: int
    requests: int
    throttled: int
    seconds: float  # first request to last answer, virtual
    allowed: float  # the most the limiter could have let through meanwhile
    accepted: int
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def throttled_share(self) -> float:
        return self.throttled / max(self.requests, 1)

    @property
    def rate_used(self) -> float:
        return self.accepted / max(self.allowed, 1.0)

    def line(self) -> str:
        return (
            f"{self.model:55} seed {self.seed:3} rtt {self.rtt * 1000:4.0f} ms  "
            f"{self.annotated}/{self.objects} annotated  {self.throttled_share:6.1%} throttled  "
            f"{self.rate_used:6.1%} of the rate used  ({self.seconds:.1f} s)"
        )


PREFIX = "app/build/package/7.1/"
ANNOTATION = {"go_pipeline_label": "7.1"}


def simulate(
    model: Model,
    seed: int,
    objects: int = 3000,
    rate: float = 400.0,
    rtt: float | None = None,
    ceiling: int = 1024,
) -> Figures:
    """One annotate run of `objects` objects (HEAD + copy each) against `model` at `rate`
    requests/s; the round trip is `rtt` seconds, or drawn from the seed (5 to 200 ms)."""

    chooser = random.Random(seed)
    rtt = rtt if rtt is not None else chooser.choice([0.005, 0.02, 0.05, 0.1, 0.2])
    clock = VirtualClock()
    flow = FlowControl(ceiling=ceiling, clock=clock.monotonic)
    memory = MemoryStore(acls=False)
    for number in range(objects):
        memory.put(f"{PREFIX}object-{number:06}.txt", b"x", ContentType="text/plain")
    limiter = model.make(rate)
    throttled = ThrottledObjects(memory, flow, limiter, model, rtt, clock, seed)
    memory.objects = throttled
    plan = Plan("bucket", PREFIX, ANNOTATION, ANNOTATION, workers=ceiling, write_marker=False)
    random.seed(seed)  # the retry policy's jitter
    with on_virtual_time(clock):
        outcome = annotate_prefix(plan, memory.store(), _Quiet(), threading.Event(), _ignore)
    counts = throttled.counts
    start = counts.first if counts.first is not None else clock.now
    tally = outcome.tally
    annotated = sum(
        1
        for key, stored in memory.stored.items()
        if key.startswith(PREFIX) and stored.metadata.get("go_pipeline_label") == "7.1"
    )
    return Figures(
        str(model),
        seed,
        rtt,
        objects,
        annotated,
        tally.failed,
        counts.requests,
        counts.throttled,
        counts.last - start,
        limiter.allowed(start, counts.last),
        counts.accepted,
        {"peak_in_flight": flow.stats.peak_in_flight, "rate": flow.rate, "trace": throttled.trace},
    )


def _ignore(write: Write) -> None:
    pass


# -- in front of a real server ----------------------------------------------------------------


def proxy_rules(model: Model, rate: float, rtt: float = 0.02) -> list[Any]:
    """The fault proxy's rules for `model` at `rate` requests/s on real time: every request
    is put to the limiter as it arrives (under the proxy's lock), SlowDown when refused; after
    the round trip, every answer (SlowDown or not) is held back `rtt` seconds."""
    from support.faultproxy import Fault, Rule

    limiter = model.make(rate)

    def refused(request: Any) -> bool:
        return not limiter.admit(time.monotonic())

    rules = [Rule(Fault.SLOW_DOWN, when=refused)]
    if not model.at_once:
        rules.insert(0, Rule(Fault.DELAY, delay=rtt))
    return rules
