"""The pending marker as the folder's lease: real processes racing on moto, a crashed run's lease
taken over, an explicit --take-over, a shard refused while a run holds the folder. Everything is
judged by what an independent boto3 client reads back."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from support.readback import snapshot

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "app/build/package/"
OBJECTS = 100
PAIRS = int(os.environ.get("GOS3MATIC_LEASE_PAIRS", "10"))  # 20 for the closing note
BLAMES_THE_STORE = ("did not keep", "drops", "dropped")


def upload(s3: Any, bucket: str, prefix: str, count: int = OBJECTS) -> None:
    for index in range(count):
        s3.put_object(Bucket=bucket, Key=f"{prefix}f{index:04d}", Body=b"x")


def command(bucket: str, prefix: str, user: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "gos3matic", "annotate", bucket, prefix, "--label", "7",
        "--username", user, "--no-progress", "--max-in-flight", "4", *extra,
    ]  # fmt: skip


def users(s3: Any, bucket: str, prefix: str) -> collections.Counter[str]:
    found: collections.Counter[str] = collections.Counter()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            if entry["Key"] != prefix:
                head = s3.head_object(Bucket=bucket, Key=entry["Key"])
                found[head["Metadata"].get("user", "-")] += 1
    return found


def fake_lease(s3: Any, bucket: str, key: str) -> None:
    """A lease as another (live) run leaves it: its run id, since when, from which CI run."""
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=b"gos3matic lease feedbeef 0\n",
        Metadata={
            "go_pipeline_label": "7",
            "gos3matic-run": "feedbeef",
            "gos3matic-since": "2026-01-01T00:00:00Z",
            "gos3matic-from": "GoCD https://gocd.example.com/go/tab/build/detail/app/7/build/1/x",
        },
    )


@pytest.mark.timeout(900)
def test_of_two_racing_runs_one_completes_and_the_other_refuses(moto_s3, moto_client, moto_bucket):
    outcomes: collections.Counter[str] = collections.Counter()
    for pair in range(PAIRS):
        prefix = f"{PACKAGE}{pair + 1}.1/"
        upload(moto_client, moto_bucket, prefix)
        env = moto_s3.env()
        runs = {
            user: subprocess.Popen(
                command(moto_bucket, prefix, user, "--max-in-flight", "1"),
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for user in ("A", "B")
        }
        ended = {user: (run.communicate(timeout=300), run.returncode) for user, run in runs.items()}
        codes = sorted(code for _, code in ended.values())
        winners = [user for user, (_, code) in ended.items() if code == 0]
        marker = moto_client.head_object(Bucket=moto_bucket, Key=prefix)["Metadata"]
        seen = users(moto_client, moto_bucket, prefix)
        for (_, stderr), _code in ended.values():
            assert not any(word in stderr for word in BLAMES_THE_STORE), stderr
        if codes == [0, 1]:
            loser = next(user for user in ended if user not in winners)
            assert "leased by another run" in ended[loser][0][1], ended[loser][0][1]
            assert "refusing before any copy" in ended[loser][0][1]
            assert seen == {winners[0]: OBJECTS}, seen  # the loser copied nothing
            assert marker.get("completed") == "completed" and marker["user"] == winners[0]
            assert not any(key.startswith("gos3matic-") for key in marker)
            outcomes["one completed, the other refused (exit 1)"] += 1
        else:
            outcomes[f"exit codes {codes}, objects {dict(seen)}"] += 1
    print(f"\n{PAIRS} racing pairs of {OBJECTS} objects: {dict(outcomes)}")
    assert outcomes == {"one completed, the other refused (exit 1)": PAIRS}, outcomes


def test_a_crashed_runs_lease_is_refused_until_stale_then_taken_over(
    moto_s3, moto_client, moto_bucket
):
    prefix = f"{PACKAGE}42.1/"
    upload(moto_client, moto_bucket, prefix, 400)
    crashed = subprocess.Popen(
        command(moto_bucket, prefix, "A", "--max-in-flight", "1"),
        cwd=REPO, env=moto_s3.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # its lease is there, and it is copying
        try:
            head = moto_client.head_object(Bucket=moto_bucket, Key=f"{prefix}f0000")
        except Exception:
            head = {"Metadata": {}}
        if head["Metadata"].get("user") == "A":
            break
        time.sleep(0.05)
    crashed.send_signal(signal.SIGKILL)
    crashed.wait(timeout=30)
    lease = moto_client.head_object(Bucket=moto_bucket, Key=prefix)["Metadata"]
    assert lease.get("gos3matic-run") and "completed" not in lease, lease
    before = snapshot(moto_client, moto_bucket)

    refused = subprocess.run(
        command(moto_bucket, prefix, "B"), cwd=REPO, env=moto_s3.env(),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert refused.returncode == 1, refused.stderr
    assert f"leased by another run ({lease['gos3matic-run']}, since {lease['gos3matic-since']}" in (
        refused.stderr
    )
    assert "--take-over" in refused.stderr
    assert snapshot(moto_client, moto_bucket) == before  # nothing written

    stale = {**moto_s3.env(), "GOS3MATIC_LEASE_STALE": "0"}  # as if minutes had passed
    taken = subprocess.run(
        command(moto_bucket, prefix, "B", "--max-in-flight", "64"), cwd=REPO, env=stale,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert taken.returncode == 0, taken.stderr
    assert "took the lease over" in taken.stderr
    assert users(moto_client, moto_bucket, prefix) == {"B": 400}
    marker = moto_client.head_object(Bucket=moto_bucket, Key=prefix)
    assert marker["Metadata"]["completed"] == "completed" and marker["ContentLength"] == 0


@pytest.mark.parametrize("tool", ["annotate", "mark"])
def test_a_live_lease_is_refused_and_take_over_takes_it(
    run_cli, moto_s3, moto_client, moto_bucket, tool
):
    prefix = f"{PACKAGE}43.1/"
    upload(moto_client, moto_bucket, prefix, 5)
    if tool == "mark":
        assert run_cli(moto_s3, "annotate", moto_bucket, prefix, "--label", "7", "--no-marker")
    fake_lease(moto_client, moto_bucket, prefix)
    before = snapshot(moto_client, moto_bucket)

    refused = run_cli(moto_s3, tool, moto_bucket, prefix, "--label", "7")
    assert refused.returncode == 1, refused.stderr
    line = refused.stderr.strip().splitlines()[-1]
    assert "leased by another run (feedbeef, since 2026-01-01T00:00:00Z, from GoCD https://" in line
    assert snapshot(moto_client, moto_bucket) == before

    taken = run_cli(moto_s3, tool, moto_bucket, prefix, "--label", "7", "--take-over")
    assert taken.returncode == 0, taken.stderr
    assert "took the lease over" in taken.stderr or tool == "mark"
    marker = moto_client.head_object(Bucket=moto_bucket, Key=prefix)
    assert marker["Metadata"]["completed"] == "completed" and marker["ContentLength"] == 0
    assert "gos3matic-run" not in marker["Metadata"]


def test_a_shard_refuses_while_a_run_holds_the_lease(run_cli, moto_s3, moto_client, moto_bucket):
    prefix = f"{PACKAGE}44.1/"
    upload(moto_client, moto_bucket, prefix, 5)
    fake_lease(moto_client, moto_bucket, prefix)
    before = snapshot(moto_client, moto_bucket)

    result = run_cli(moto_s3, "annotate", moto_bucket, prefix, "--label", "7", "--shard", "1/2")

    assert result.returncode == 1, result.stderr
    assert "leased by another run (feedbeef" in result.stderr
    assert snapshot(moto_client, moto_bucket) == before


def test_a_run_that_does_not_complete_gives_the_lease_back(run_cli, s3server, s3, bucket):
    """A failed check (mark on objects not annotated) leaves a plain pending marker: a re-run
    takes it at once. On SeaweedFS too, which keeps no marker metadata."""
    prefix = f"{PACKAGE}45.1/"
    upload(s3, bucket, prefix, 3)

    failed = run_cli(s3server, "mark", bucket, prefix, "--label", "7")
    assert failed.returncode == 1, failed.stderr
    marker = s3.head_object(Bucket=bucket, Key=prefix)
    assert marker["ContentLength"] == 0 and "gos3matic-run" not in marker["Metadata"]

    again = run_cli(s3server, "annotate", bucket, prefix, "--label", "7", "--no-progress")
    assert again.returncode in (0, 4), again.stderr  # 4: SeaweedFS drops the marker's metadata
    assert "leased" not in again.stderr
