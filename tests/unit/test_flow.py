"""FlowControl alone on an event loop: how many requests it lets out at once, and how fast once
S3 has said SlowDown (store/flow.py; docs/s3-notes.md, "Request rates and 503 SlowDown")."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from gos3matic.store import flow as flow_module
from gos3matic.store.flow import (
    CUT,
    FIRST_RATE,
    GIVE_UP,
    INCREASE,
    PACER_TICK,
    PROBE_INCREASE,
    REACTION,
    START,
    FlowControl,
)


class VirtualTime:
    """The flow control's clock and sleeps, on virtual time: a sleep advances the clock."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> VirtualTime:
    virtual = VirtualTime()
    monkeypatch.setattr(flow_module, "time", virtual)
    patched = SimpleNamespace(sleep=virtual.sleep, get_running_loop=asyncio.get_running_loop)
    monkeypatch.setattr(flow_module, "asyncio", patched)
    return virtual


async def send(flow: FlowControl, clock: VirtualTime, count: int, every: float = 0.0) -> None:
    """`count` clean requests one after another, each answered `every` seconds after it went."""
    for _ in range(count):
        async with flow.request():
            clock.now += every


def sending_at(flow: FlowControl, clock: VirtualTime, rate: float, seconds: float) -> None:
    """Requests one after another, answered at `rate` a second for `seconds`."""
    asyncio.run(send(flow, clock, round(rate * seconds), every=1 / rate))


def many_throttles(flow: FlowControl, count: int = 30) -> None:
    """Throttles inside one reaction interval: counted, at most one of them cuts the pace."""
    for _ in range(count):
        flow.throttled()


def throttled_at(clock: VirtualTime, rate: float) -> FlowControl:
    """A flow control that sent at `rate` a second for two seconds, then was throttled."""
    flow = FlowControl()
    sending_at(flow, clock, rate, seconds=2)
    flow.throttled()
    return flow


# -- the concurrency window --


def test_the_window_starts_at_start_within_the_ceiling():
    assert FlowControl().window == START
    assert FlowControl(ceiling=10, start=3).window == 3
    assert FlowControl(ceiling=2, start=256).window == 2


def test_until_a_throttle_each_clean_answer_lets_two_more_in_flight_up_to_the_ceiling():
    flow = FlowControl(ceiling=8, start=1)
    windows = []

    async def five() -> None:
        for _ in range(5):
            async with flow.request():
                pass
            windows.append(flow.window)

    asyncio.run(five())
    assert windows == [3, 5, 7, 8, 8]


def test_after_a_throttle_each_clean_answer_lets_one_more_in_flight(clock: VirtualTime):
    flow = FlowControl(ceiling=100, start=1)
    asyncio.run(send(flow, clock, 2, every=0.01))
    assert flow.window == 5
    flow.throttled()
    asyncio.run(send(flow, clock, 2, every=0.01))
    assert flow.window == 7


def test_a_failed_attempt_leaves_the_window_as_it_was():
    flow = FlowControl(ceiling=4, start=1)

    async def failing() -> None:
        async with flow.request():
            raise ConnectionError("no answer")

    with pytest.raises(ConnectionError):
        asyncio.run(failing())
    assert (flow.window, flow.in_flight, flow.stats.requests) == (1, 0, 1)


def test_never_more_requests_in_flight_than_the_window_and_every_one_gets_its_turn():
    flow = FlowControl(ceiling=6, start=2)
    seen: list[tuple[int, int]] = []  # (in flight, window) inside each request

    async def one() -> None:
        async with flow.request():
            seen.append((flow.in_flight, int(flow.window)))
            await asyncio.sleep(0.001)

    async def many() -> None:
        tasks = [asyncio.create_task(one()) for _ in range(40)]
        await asyncio.sleep(0)
        assert flow.in_flight == 2  # the rest wait for a slot
        await asyncio.gather(*tasks)

    asyncio.run(many())
    assert len(seen) == 40
    assert all(in_flight <= window for in_flight, window in seen)
    assert flow.stats.peak_in_flight == 6
    assert (flow.stats.requests, flow.in_flight) == (40, 0)


# -- the pacer --


def test_until_s3_throttles_no_send_waits(clock: VirtualTime):
    flow = FlowControl()
    asyncio.run(send(flow, clock, 500))
    assert flow.rate is None
    assert clock.sleeps == []


def test_the_first_throttle_paces_at_90_percent_of_the_rate_s3_accepted(clock: VirtualTime):
    flow = throttled_at(clock, 1000)
    assert flow.rate == pytest.approx(CUT * 1000, rel=0.01)
    assert flow.stats.throttled == 1


def test_the_first_throttle_paces_no_slower_than_the_first_rate(clock: VirtualTime):
    flow = throttled_at(clock, 20)
    assert flow.rate == FIRST_RATE


def test_a_burst_early_in_a_run_is_not_taken_for_a_rate(clock: VirtualTime):
    flow = FlowControl()
    sending_at(flow, clock, 1000, seconds=0.1)  # what S3 had saved credit for, then SlowDown
    flow.throttled()
    assert flow.rate == pytest.approx(CUT * 100, rel=0.05)  # 100 answers over a whole second


def test_the_pacer_lets_concurrent_sends_through_at_its_rate(clock: VirtualTime):
    flow = throttled_at(clock, 1000)
    first_rate = flow.rate
    assert first_rate is not None
    sent_at: list[float] = []

    async def one() -> None:
        async with flow.request():
            sent_at.append(clock.now)

    async def burst() -> None:
        await asyncio.gather(*(one() for _ in range(40)))

    asyncio.run(burst())
    assert flow.rate is not None
    spread = sent_at[-1] - sent_at[0]
    assert 39 / flow.rate - PACER_TICK <= spread <= 39 / first_rate + PACER_TICK


def test_after_the_first_cut_the_rate_probes_upward_fast_after_later_cuts_slowly(
    clock: VirtualTime,
):
    flow = throttled_at(clock, 1000)
    first = flow.rate
    assert first is not None
    asyncio.run(send(flow, clock, 10, every=0.001))
    assert flow.rate == pytest.approx(first + 10 * PROBE_INCREASE)
    many_throttles(flow)  # within the reaction interval of the first cut: none cuts
    assert flow.rate == pytest.approx(first + 10 * PROBE_INCREASE)
    clock.now += REACTION
    flow.throttled()  # a tenth of the last second's answers were throttles: a cut
    second = flow.rate
    assert second is not None and second < first
    asyncio.run(send(flow, clock, 10, every=0.001))
    assert flow.rate == second  # no growth while throttles are more than a few of the answers
    clock.now += 1.0  # a second later they are forgotten
    asyncio.run(send(flow, clock, 10, every=0.001))
    assert flow.rate == pytest.approx(second + 10 * INCREASE)


def test_a_later_throttle_paces_at_90_percent_of_what_s3_accepted(clock: VirtualTime):
    flow = throttled_at(clock, 1000)
    sending_at(flow, clock, 100, seconds=1.0)  # S3 now answers a hundred a second
    assert flow.rate is not None and flow.rate > 100
    many_throttles(flow)  # the first to make them more than a few of the answers cuts
    assert flow.rate == pytest.approx(CUT * 100, rel=0.02)


def test_a_throttle_now_and_then_does_not_cut_the_pace(clock: VirtualTime):
    flow = throttled_at(clock, 1000)
    sending_at(flow, clock, 100, seconds=1.0)
    paced = flow.rate
    flow.throttled()  # one in a hundred answers: a retry pays for it, the pace holds
    assert flow.rate == paced


def test_cuts_that_do_not_make_throttles_rarer_are_taken_back(clock: VirtualTime):
    flow = throttled_at(clock, 1000)
    sending_at(flow, clock, 100, seconds=1.0)
    before = flow.rate
    assert before is not None
    rates = []
    for _ in range(8):  # every half second a tenth of the answers are throttles, whatever the pace
        for _ in range(5):
            sending_at(flow, clock, 100, seconds=0.1)
            many_throttles(flow, 1)
        rates.append(flow.rate)
    assert min(r for r in rates if r is not None) <= GIVE_UP * before  # cut after cut at first,
    assert flow.rate is not None and flow.rate >= before  # then taken back: not the pace's doing
    paced = flow.rate
    for _ in range(5):  # and that share of throttles no longer cuts it
        sending_at(flow, clock, 100, seconds=0.1)
        many_throttles(flow, 1)
    assert flow.rate >= paced


def test_cuts_that_make_throttles_rarer_are_kept(clock: VirtualTime):
    flow = throttled_at(clock, 1000)
    sending_at(flow, clock, 100, seconds=1.0)
    many_throttles(flow, 30)  # a third of the answers: a cut
    cut = flow.rate
    assert cut is not None
    clock.now += REACTION
    sending_at(flow, clock, 100, seconds=1.0)
    many_throttles(flow, 5)  # rarer at the slower pace: the cut stays, and this one cuts too
    assert flow.rate is not None and flow.rate < cut


def test_a_burst_of_throttles_cuts_the_rate_once_per_reaction_interval(clock: VirtualTime):
    flow = throttled_at(clock, 1000)
    first_cut = flow.rate
    many_throttles(flow)  # the answers to requests already on the wire
    assert flow.rate == first_cut
    clock.now += REACTION
    flow.throttled()
    assert flow.rate is not None and first_cut is not None and flow.rate < first_cut
    assert flow.stats.throttled == 32


def test_sends_one_at_a_time_are_paced_too(clock: VirtualTime):
    flow = FlowControl(ceiling=1)
    sending_at(flow, clock, 1000, seconds=2)
    flow.throttled()
    assert flow.rate is not None
    fastest = flow.rate + 20 * PROBE_INCREASE  # the rate grows with each clean answer
    started = clock.now
    asyncio.run(send(flow, clock, 20, every=0.001))  # a server that answers in a millisecond
    assert clock.now - started >= 19 / fastest
