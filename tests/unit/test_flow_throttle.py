"""The flow control against three shapes of S3's rate limit, each with its SlowDown answers at
once and after the round trip (tests/support/throttle.py): the whole engine on a virtual clock,
so a seed gives the same figures on every machine and every run. No timing is measured here.

Issue 16's targets for each: every object annotated, at most 5% of the requests throttled, at
least 80% of the rate the limit allowed used (its saved-up burst counted as allowed). The models
the pacer does not hold yet are marked xfail (strict: a change that meets them must say so)."""

from __future__ import annotations

import pytest
from support.throttle import MODELS, Model, simulate

OBJECTS = 3000  # HEAD + copy each: 6,000 requests and more, ~15 s at 400 requests/s
RATE = 400.0
SEEDS = {1: 0.02, 2: 0.005}  # seed: round trip (s)
NOT_YET = {  # measured with seeds 1 and 2: throttled share, the first second's overshoot
    "token bucket, 1 s burst, SlowDown after the round trip": "5.9-6.7% throttled",
    "fixed 1 s window, SlowDown at once": "5.6-6.1% throttled",
    "fixed 1 s window, SlowDown after the round trip": "9.5-11% throttled",
}


def cases() -> list[object]:
    found = []
    for model in MODELS:
        for seed, rtt in SEEDS.items():
            marks = []
            if str(model) in NOT_YET:
                marks.append(pytest.mark.xfail(reason=NOT_YET[str(model)], strict=True))
            found.append(pytest.param(model, seed, rtt, marks=marks, id=f"{model}-seed{seed}"))
    return found


@pytest.mark.parametrize(("model", "seed", "rtt"), cases())
def test_the_pacer_holds_the_limit(model: Model, seed: int, rtt: float) -> None:
    figures = simulate(model, seed, objects=OBJECTS, rate=RATE, rtt=rtt)
    assert (figures.annotated, figures.failed) == (OBJECTS, 0), figures.line()
    assert figures.throttled_share <= 0.05, figures.line()
    assert figures.rate_used >= 0.80, figures.line()


def test_every_object_is_annotated_under_every_model() -> None:
    """Where the shares are not met yet, nothing is lost: every object annotated, none failed."""
    for model in MODELS:
        figures = simulate(model, 3, objects=1000, rate=RATE, rtt=0.05)
        assert (figures.annotated, figures.failed) == (1000, 0), figures.line()
        assert figures.requests >= 2000 and figures.throttled > 0, figures.line()


def test_a_seed_gives_the_same_figures_every_time() -> None:
    model = MODELS[1]
    first, second = (simulate(model, 7, objects=500, rtt=0.02) for _ in range(2))
    assert (first.requests, first.throttled, first.seconds) == (
        second.requests,
        second.throttled,
        second.seconds,
    )
