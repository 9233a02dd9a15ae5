"""What a user sees: dry runs, progress, summaries, --json and the command line itself, read from
the real command's output and checked against what an independent client reads back."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from support.faultproxy import Fault, FaultProxy, Rule, only
from support.terminal import CLEAR_LINE, run_in_terminal

from gos3matic.devserver import LocalS3

PACKAGE = "app/build/package/"
PREFIX = f"{PACKAGE}42.1/"
MANY = 3000
WOULD = re.compile(r"would annotate s3://(?P<bucket>[^/]+)/(?P<key>\S+)")


def put_many(s3: Any, bucket: str, prefix: str, count: int) -> list[str]:
    keys = [f"{prefix}dist/file-{index:05}.bin" for index in range(count)]
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=b"x"), keys))
    return keys


def listing(s3: Any, bucket: str) -> dict[str, tuple[str, Any]]:
    """Every key's ETag and Last-Modified: equal before and after = nothing was written."""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            found[entry["Key"]] = (entry["ETag"], entry["LastModified"])
    return found


@pytest.fixture(scope="module")
def many(seaweed_s3: LocalS3) -> tuple[LocalS3, Any, str, list[str]]:
    """3,000 objects in one revision on SeaweedFS (fast enough for several runs)."""
    s3 = seaweed_s3.client(max_pool_connections=32)
    bucket = "t-many-objects"
    s3.create_bucket(Bucket=bucket)
    return seaweed_s3, s3, bucket, put_many(s3, bucket, PREFIX, MANY)


# -- dry runs ------------------------------------------------------------------------------------


def test_a_dry_run_on_3000_objects_prints_3000_whole_lines_and_writes_nothing(run_cli, many):
    server, s3, bucket, keys = many
    before = listing(s3, bucket)

    result = run_cli(server, "annotate", bucket, PREFIX, "--label", "42", "--dry-run")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    would = [WOULD.fullmatch(line) for line in lines if line.startswith("would annotate")]
    assert len(would) == MANY and all(would), "a line was glued to another or cut"
    assert sorted(match["key"] for match in would if match) == sorted(keys)
    markers = [line for line in lines if line.startswith("would write marker")]
    assert markers == [
        f"would write marker s3://{bucket}/{PREFIX} with "
        "{'go_pipeline_label': '42', 'completed': 'completed'}"
    ]
    assert "" not in lines  # no blank line left by two writes crossing
    assert all(line.startswith(("  ", "would ")) for line in lines), result.stdout[:2000]
    assert f"  would annotate  {MANY}" in lines
    assert listing(s3, bucket) == before


def test_a_quiet_dry_run_prints_only_the_count(run_cli, many):
    server, _, bucket, _ = many

    result = run_cli(server, "annotate", bucket, PREFIX, "--label", "42", "--dry-run", "-q")

    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    assert re.fullmatch(
        rf"s3://{bucket}/{PREFIX}: would annotate {MANY}, skipped 0, failed 0; "
        r"marker not written \(--dry-run\) \(\d+\.\d s\)",
        line,
    ), line
    assert result.stderr == ""


# -- on a terminal -------------------------------------------------------------------------------


def test_on_a_terminal_lines_stay_whole_and_the_status_line_is_redrawn_a_few_times_a_second(many):
    server, _, bucket, keys = many

    screen = run_in_terminal(
        server.env(), "annotate", bucket, PREFIX, "--label", "42", "--dry-run", "--workers", "4",
        columns=100,
    )  # fmt: skip

    assert screen.code == 0, screen.raw[-2000:]
    would = [WOULD.fullmatch(line) for line in screen.lines if line.startswith("would annotate")]
    assert len(would) == MANY and all(would)
    assert sorted(match["key"] for match in would if match) == sorted(keys)
    draws = screen.status_draws
    assert draws, "no status line on a 100-column terminal"
    assert len(draws) <= 4 * screen.seconds + 2, (len(draws), screen.seconds)
    assert all(len(draw) <= 99 for draw in draws)  # never wrapped: a wrapped line cannot be redrawn
    # While the listing runs, the total is unknown: no percentage, no ETA.
    listing_draws = [draw for draw in draws if "still listing" in draw]
    assert listing_draws and not any("%" in d or "ETA" in d for d in listing_draws)
    assert all("would annotate" in draw and "skipped" in draw for draw in draws)


def test_the_percentage_and_eta_come_once_the_listing_is_complete_in_the_summarys_words(
    moto_s3, moto_client, moto_bucket
):
    keys = put_many(moto_client, moto_bucket, PREFIX, 24)
    slow = [Rule(Fault.DELAY, operations=only("HeadObject"), delay=0.25)]

    with FaultProxy(moto_s3.endpoint_url, slow).running() as proxy:
        env = {**moto_s3.env(), "AWS_ENDPOINT_URL": proxy.url}
        annotate = run_in_terminal(
            env, "annotate", moto_bucket, PREFIX, "--label", "42", "--workers", "8", columns=120
        )
        check = run_in_terminal(
            env, "mark", moto_bucket, PREFIX, "--label", "42", "--workers", "8", columns=120
        )

    assert annotate.code == 0, annotate.raw[-2000:]
    draws = annotate.status_draws
    assert draws and all(f"of {len(keys)} (" in draw and "%" in draw for draw in draws), draws
    assert any("ETA" in draw for draw in draws), draws
    assert all(re.search(r"annotated \d+, skipped \d+, failed \d+", d) for d in draws), draws
    assert f"  annotated       {len(keys)}" in annotate.lines
    # mark says "annotated" for what annotate skipped: its progress says the same as its summary
    assert check.code == 0, check.raw[-2000:]
    assert check.status_draws and all(
        re.search(r"checking: .*annotated \d+, not annotated 0, could not be read 0", draw)
        and "skipped" not in draw
        for draw in check.status_draws
    ), check.status_draws
    summary = "  objects         24 checked: annotated 24, not annotated 0, could not be read 0"
    assert summary in check.lines
    assert moto_client.head_object(Bucket=moto_bucket, Key=PREFIX)["Metadata"]["completed"]


def test_a_terminal_that_reports_no_width_gets_plain_progress_lines(
    moto_s3, moto_client, moto_bucket
):
    put_many(moto_client, moto_bucket, PREFIX, 12)
    slow = [Rule(Fault.DELAY, operations=only("HeadObject"), delay=0.5)]

    with FaultProxy(moto_s3.endpoint_url, slow).running() as proxy:
        env = {**moto_s3.env(), "AWS_ENDPOINT_URL": proxy.url}
        screen = run_in_terminal(
            env, "annotate", moto_bucket, PREFIX, "--label", "42", "--workers", "1", columns=0
        )

    assert screen.code == 0, screen.raw[-2000:]
    assert CLEAR_LINE not in screen.raw
    progress = [line for line in screen.lines if line.startswith("progress: annotating: ")]
    assert progress, screen.raw
    assert all(re.search(r"annotated \d+, skipped \d+, failed \d+", line) for line in progress)


# -- failures, -q and --json ---------------------------------------------------------------------


def test_a_failed_object_is_named_on_stderr_and_in_the_summary(
    run_cli, moto_s3, moto_client, moto_bucket
):
    keys = put_many(moto_client, moto_bucket, PREFIX, 6)
    refused = keys[3]
    rules = [Rule(Fault.ACCESS_DENIED, operations=only("CopyObject"), key=refused)]

    with FaultProxy(moto_s3.endpoint_url, rules).running() as proxy:
        result = run_cli(
            moto_s3, "annotate", moto_bucket, PREFIX, "--label", "42", "--endpoint-url", proxy.url
        )

    assert result.returncode == 1
    assert f"gos3matic: FAILED {refused}: AccessDenied" in result.stderr.splitlines()[0]
    assert f"  FAILED {refused}: AccessDenied: Access Denied" in result.stdout.splitlines()
    assert (
        "go_pipeline_label"
        not in moto_client.head_object(Bucket=moto_bucket, Key=refused)["Metadata"]
    )


def test_quiet_prints_one_line_per_run_and_one_per_revision_in_backfill(
    run_cli, moto_s3, moto_client, moto_bucket
):
    put_many(moto_client, moto_bucket, f"{PACKAGE}41.1/", 3)
    put_many(moto_client, moto_bucket, PREFIX, 3)

    annotated = run_cli(moto_s3, "annotate", moto_bucket, PREFIX, "--label", "42", "-q")
    backfilled = run_cli(moto_s3, "backfill", moto_bucket, PACKAGE, "-q")

    assert annotated.returncode == 0, annotated.stderr
    [line] = annotated.stdout.splitlines()
    assert re.fullmatch(
        rf"s3://{moto_bucket}/{PREFIX}: annotated 3, skipped 0, failed 0; "
        r"marker written and verified \(\d+\.\d s\)",
        line,
    ), line
    assert "versions" not in annotated.stdout + annotated.stderr  # an unversioned bucket
    assert backfilled.returncode == 0, backfilled.stderr
    [revision] = backfilled.stdout.splitlines()  # 42.1 is complete now: one revision to do
    assert revision.startswith("  41.1  label 41  complete: ")
    assert moto_client.head_object(Bucket=moto_bucket, Key=f"{PACKAGE}41.1/")["Metadata"] == {
        "go_pipeline_label": "41",
        "completed": "completed",
    }


@pytest.mark.parametrize(
    ("argv", "code", "error"),
    [
        (["annotate", "{bucket}", PREFIX, "--label", "4 2"], 2, "invalid label '4 2'"),
        (["annotate", "{bucket}", PREFIX, "--label", "42", "--frobnicate"], 2, "--frobnicate"),
        (["annotate", "{bucket}"], 2, "PATH"),
        (["annotate", "no-such-bucket-here", PREFIX, "--label", "42"], 3, "does not exist"),
        (["status", "no-such-bucket-here", PACKAGE], 3, "does not exist"),
        (["backfill", "{bucket}", PACKAGE, "--label-map", "/nonexistent/map"], 2, "--label-map"),
    ],
)
def test_json_prints_one_object_with_the_exit_code_and_the_error_on_every_exit(
    run_cli, moto_s3, moto_client, moto_bucket, argv, code, error
):
    put_many(moto_client, moto_bucket, PREFIX, 2)
    before = listing(moto_client, moto_bucket)

    result = run_cli(moto_s3, *[arg.format(bucket=moto_bucket) for arg in argv], "--json")

    assert result.returncode == code, result.stderr
    document = json.loads(result.stdout)
    assert document["exit_code"] == code
    assert error in document["error"]
    assert f"gos3matic: error: {document['error']}" in result.stderr.splitlines()
    assert listing(moto_client, moto_bucket) == before


# -- the command line ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["backfill", "{bucket}", PACKAGE, "--label", "42"],  # was read as --label-map 42
        ["annotate", "{bucket}", PREFIX, "--lab", "42"],
        ["annotate", "{bucket}", PREFIX, "--label", "42", "--dry"],
    ],
)
def test_abbreviated_options_are_refused(run_cli, moto_s3, moto_client, moto_bucket, argv):
    put_many(moto_client, moto_bucket, PREFIX, 2)
    before = listing(moto_client, moto_bucket)

    result = run_cli(moto_s3, *[arg.format(bucket=moto_bucket) for arg in argv])

    assert result.returncode == 2
    assert "unrecognized arguments" in result.stderr or "required" in result.stderr
    assert listing(moto_client, moto_bucket) == before


def test_s3_url_names_the_bucket_and_the_path(run_cli, moto_s3, moto_client, moto_bucket):
    keys = put_many(moto_client, moto_bucket, PREFIX, 3)

    annotated = run_cli(moto_s3, "annotate", f"s3://{moto_bucket}/{PREFIX}", "--label", "42")
    status = run_cli(moto_s3, "status", f"s3://{moto_bucket}/{PACKAGE}", "--json")
    both = run_cli(moto_s3, "annotate", f"s3://{moto_bucket}/{PREFIX}", PREFIX, "--label", "42")

    assert annotated.returncode == 0, annotated.stderr
    for key in keys:
        assert moto_client.head_object(Bucket=moto_bucket, Key=key)["Metadata"] == {
            "go_pipeline_label": "42"
        }
    assert json.loads(status.stdout)["revision"] == "42.1"
    assert both.returncode == 2 and "s3://BUCKET/PATH" in both.stderr


def test_the_parameter_table_says_where_the_endpoint_came_from(run_cli, moto_s3, moto_bucket):
    from_env = run_cli(moto_s3, "annotate", moto_bucket, PREFIX, "--label", "1", "--dry-run")
    from_flag = run_cli(
        moto_s3, "annotate", moto_bucket, PREFIX, "--label", "1", "--dry-run",
        "--endpoint-url", moto_s3.endpoint_url,
    )  # fmt: skip

    assert f"  endpoint       {moto_s3.endpoint_url}  ($AWS_ENDPOINT_URL)" in from_env.stdout
    assert f"  endpoint       {moto_s3.endpoint_url}  (--endpoint-url)" in from_flag.stdout
