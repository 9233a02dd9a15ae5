"""The real CLI on a 60-column pseudo-terminal: the tqdm status line keeps the rate and the ETA,
is never wider than the terminal, and leaves the summary's lines whole."""

from __future__ import annotations

import re

from support.faultproxy import Fault, FaultProxy, Rule, only
from support.terminal import run_in_terminal

PREFIX = "app/build/package/42.1/"


def test_a_60_column_terminal_shows_count_percentage_rate_and_eta(
    moto_s3, moto_client, moto_bucket
):
    for index in range(24):
        moto_client.put_object(Bucket=moto_bucket, Key=f"{PREFIX}f{index:02}.bin", Body=b"x")
    slow = [Rule(Fault.DELAY, operations=only("HeadObject"), delay=0.25)]

    with FaultProxy(moto_s3.endpoint_url, slow).running() as proxy:
        env = {**moto_s3.env(), "AWS_ENDPOINT_URL": proxy.url}
        screen = run_in_terminal(
            env, "annotate", moto_bucket, PREFIX, "--label", "42", "--workers", "4", columns=60
        )

    assert screen.code == 0, screen.raw[-2000:]
    draws = screen.status_draws
    assert draws, screen.raw[-2000:]
    assert all(len(draw) <= 59 for draw in draws), draws
    shape = re.compile(r"annotating: (\d+) of 24 \((\d+)%\) (\|[^|]+\| )?\d+ objects/s(, ETA .+)?")
    matches = [shape.fullmatch(draw) for draw in draws]
    assert all(matches), draws
    assert all(m[4] for m in matches if m and int(m[1]) < 24), draws  # an ETA until all are done
    assert f"  annotated       {24}" in screen.lines
    metadata = moto_client.head_object(Bucket=moto_bucket, Key=f"{PREFIX}f00.bin")["Metadata"]
    assert metadata.get("go_pipeline_label") == "42"
