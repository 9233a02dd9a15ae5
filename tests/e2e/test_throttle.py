"""The real CLI through a throttling proxy in front of moto: the three shapes of limit of
tests/support/throttle.py on real time, SlowDown after a 20 ms round trip. What it proves: every
object annotated (read back by an independent client) and the marker written, with the proxy's
own counts showing the limit bit. The bounds on the throttled share are generous, since the CLI
shares two cores with the proxy and moto here; the tight figures (at most 5% throttled, at least
80% of the rate used) are the simulation's, tests/unit/test_flow_throttle.py, where a seed gives
the same numbers on every machine. No timing is asserted."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.faultproxy import Fault, FaultProxy
from support.throttle import MODELS, Model, proxy_rules

PREFIX = "app/build/package/7.1/"
OBJECTS = 300
RATE = 150.0  # requests/s: well under what moto answers here, so the limit is the proxy's
AFTER_THE_ROUND_TRIP = [model for model in MODELS if not model.at_once]


def seed(s3: Any, bucket: str) -> None:
    for index in range(OBJECTS):
        s3.put_object(Bucket=bucket, Key=f"{PREFIX}object-{index:04}.txt", Body=b"x")


@pytest.mark.parametrize("model", AFTER_THE_ROUND_TRIP, ids=str)
def test_every_object_is_annotated_under_a_rate_limit(
    run_cli: Any, moto_s3: Any, moto_client: Any, moto_bucket: str, model: Model
) -> None:
    seed(moto_client, moto_bucket)
    rules = proxy_rules(model, RATE)
    with FaultProxy(moto_s3.endpoint_url, rules).running() as proxy:
        result = run_cli(
            moto_s3,
            "annotate",
            moto_bucket,
            PREFIX,
            "--label",
            "7.1",
            "--no-progress",
            "--json",
            "--endpoint-url",
            proxy.url,
            timeout=300,
        )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["annotated"], report["failed"]) == (OBJECTS, 0)
    listed = moto_client.list_objects_v2(Bucket=moto_bucket, Prefix=PREFIX)["Contents"]
    keys = [item["Key"] for item in listed if item["Key"] != PREFIX]
    assert len(keys) == OBJECTS
    for key in keys:
        head = moto_client.head_object(Bucket=moto_bucket, Key=key)
        assert head["Metadata"].get("go_pipeline_label") == "7.1", key
    marker = moto_client.head_object(Bucket=moto_bucket, Key=PREFIX)["Metadata"]
    assert marker.get("completed") == "completed"
    throttled, seen = proxy.count(Fault.SLOW_DOWN), proxy.total_seen()
    print(f"{model}: {throttled} of {seen} requests throttled ({throttled / seen:.1%})")
    assert throttled > 0, "the limit never bit: the test proves nothing"
    assert throttled <= 0.25 * seen, (throttled, seen)
