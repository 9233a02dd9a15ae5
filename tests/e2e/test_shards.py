"""Beyond one machine: `annotate --shard K/N` in parallel, then `mark`, then what GoCD sees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PREFIX = "app/build/package/42.1/"
LABEL = ["--label", "42", "--username", "jo@example.com"]


def upload(s3, bucket, count):
    keys = [f"{PREFIX}dist/part-{index:03}.bin" for index in range(count)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    return keys


def versions_per_key(s3, bucket):
    counts: dict[str, int] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", []):
            counts[version["Key"]] = counts.get(version["Key"], 0) + 1
    return counts


def has_marker(s3, bucket):
    """A complete marker, the one GoCD triggers on. A failed, interrupted or sharded run leaves a
    pending one (no `completed`) instead, so that GoCD's poll of the package keeps working."""
    try:
        return "completed" in s3.head_object(Bucket=bucket, Key=PREFIX)["Metadata"]
    except s3.exceptions.ClientError:
        return False


def shard_process(server, bucket, index, count):
    """One GoCD run instance: the shard comes from GoCD's own variables."""
    env = {
        **os.environ,
        **server.env(),
        "GO_JOB_RUN_INDEX": str(index),
        "GO_JOB_RUN_COUNT": str(count),
    }
    command = [sys.executable, "-m", "gos3matic", "annotate", bucket, PREFIX, *LABEL]
    return subprocess.Popen(
        [*command, "--json", "--no-progress", "--workers", "4"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_shards(server, bucket, count, which=None):
    processes = [shard_process(server, bucket, k, count) for k in (which or range(1, count + 1))]
    reports = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
        reports.append((json.loads(stdout), stderr))
    return reports


def test_parallel_shards_annotate_every_object_exactly_once_then_mark_makes_it_a_revision(
    run_cli, moto_s3, moto_client, moto_bucket
):
    moto_client.put_bucket_versioning(
        Bucket=moto_bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    keys = upload(moto_client, moto_bucket, 60)

    reports = run_shards(moto_s3, moto_bucket, 4)

    # Every self-copy adds a version: exactly two per key means exactly one copy, by one shard.
    versions = versions_per_key(moto_client, moto_bucket)
    assert versions.pop(PREFIX) >= 1  # the shards' pending marker, written if none was there
    assert versions == {key: 2 for key in keys}
    for key in keys:
        metadata = moto_client.head_object(Bucket=moto_bucket, Key=key)["Metadata"]
        assert metadata == {"go_pipeline_label": "42", "user": "jo@example.com"}
    assert sum(report["annotated"] for report, _ in reports) == len(keys)
    for report, _ in reports:
        assert report["annotated"] + report["other_shards"] == len(keys)
        assert report["marker_state"] == "left-to-mark"
        assert report["exit_code"] == 0
    assert not has_marker(moto_client, moto_bucket)
    before = json.loads(
        run_cli(moto_s3, "status", moto_bucket, "app/build/package", "--json").stdout
    )
    assert before["revision"] is None and before["incomplete"] == ["42.1"]

    marked = run_cli(moto_s3, "mark", moto_bucket, PREFIX, *LABEL, "--json", "--no-progress")

    assert marked.returncode == 0, marked.stderr
    assert json.loads(marked.stdout)["annotated"] == len(keys)
    assert moto_client.head_object(Bucket=moto_bucket, Key=PREFIX)["Metadata"] == {
        "completed": "completed",
        "go_pipeline_label": "42",
        "user": "jo@example.com",
    }
    after = run_cli(moto_s3, "status", moto_bucket, "app/build/package", "--json")
    assert after.returncode == 0, after.stderr
    view = json.loads(after.stdout)
    assert (view["revision"], view["label"], view["user"]) == ("42.1", "42", "jo@example.com")
    assert view["incomplete"] == []


def test_mark_refuses_while_a_shard_has_not_run_and_names_what_is_missing(
    run_cli, moto_s3, moto_client, moto_bucket
):
    upload(moto_client, moto_bucket, 30)
    run_shards(moto_s3, moto_bucket, 3, which=[1, 2])

    refused = run_cli(moto_s3, "mark", moto_bucket, PREFIX, *LABEL, "--json", "--no-progress")

    assert refused.returncode == 1
    report = json.loads(refused.stdout)
    assert report["not_annotated"] > 0
    assert report["annotated"] + report["not_annotated"] == 30
    assert report["marker_written"] is False
    assert f"not annotated: s3://{moto_bucket}/{PREFIX}dist/part-" in refused.stderr
    assert not has_marker(moto_client, moto_bucket)

    run_shards(moto_s3, moto_bucket, 3, which=[3])
    marked = run_cli(moto_s3, "mark", moto_bucket, PREFIX, *LABEL, "--no-progress")
    assert marked.returncode == 0, marked.stderr
    assert has_marker(moto_client, moto_bucket)


def test_mark_checks_the_label_not_the_user_or_traceback_url_of_each_instance(
    run_cli, moto_s3, moto_client, moto_bucket
):
    upload(moto_client, moto_bucket, 4)
    rerun = run_cli(
        moto_s3,
        "annotate",
        moto_bucket,
        PREFIX,
        "--label",
        "42",
        "--username",
        "other@x.com",
        "--no-marker",
        "--no-progress",
    )
    assert rerun.returncode == 0, rerun.stderr

    marked = run_cli(moto_s3, "mark", moto_bucket, PREFIX, *LABEL, "--no-progress")

    assert marked.returncode == 0, marked.stderr
    assert moto_client.head_object(Bucket=moto_bucket, Key=PREFIX)["Metadata"]["user"] == (
        "jo@example.com"
    )


def test_mark_no_check_trusts_the_shards(run_cli, moto_s3, moto_client, moto_bucket):
    upload(moto_client, moto_bucket, 3)

    marked = run_cli(moto_s3, "mark", moto_bucket, PREFIX, *LABEL, "--no-check", "--json")

    assert marked.returncode == 0, marked.stderr
    report = json.loads(marked.stdout)
    assert report["checked"] is False and report["marker_verified"] is True
    assert moto_client.head_object(Bucket=moto_bucket, Key=PREFIX)["Metadata"]["completed"]


def test_mark_refuses_an_empty_path_unless_allowed(run_cli, moto_s3, moto_client, moto_bucket):
    for extra in ([], ["--no-check"]):
        refused = run_cli(moto_s3, "mark", moto_bucket, PREFIX, *LABEL, *extra)
        assert refused.returncode == 1
        assert "nothing to annotate" in refused.stdout
        assert moto_client.list_objects_v2(Bucket=moto_bucket).get("KeyCount") == 0

    allowed = run_cli(moto_s3, "mark", moto_bucket, PREFIX, *LABEL, "--allow-empty")
    assert allowed.returncode == 0, allowed.stderr
    assert has_marker(moto_client, moto_bucket)


def test_mark_dry_run_checks_and_writes_nothing(run_cli, moto_s3, moto_client, moto_bucket):
    upload(moto_client, moto_bucket, 2)
    run_shards(moto_s3, moto_bucket, 1)  # 1/1: the whole prefix, marker included
    moto_client.delete_object(Bucket=moto_bucket, Key=PREFIX)

    result = run_cli(moto_s3, "mark", moto_bucket, PREFIX, *LABEL, "--dry-run")

    assert result.returncode == 0, result.stderr
    assert f"would write marker s3://{moto_bucket}/{PREFIX}" in result.stdout
    assert not has_marker(moto_client, moto_bucket)


def test_a_shard_of_one_is_the_whole_prefix_and_writes_the_marker(
    run_cli, moto_s3, moto_client, moto_bucket
):
    upload(moto_client, moto_bucket, 3)
    result = run_cli(moto_s3, "annotate", moto_bucket, PREFIX, *LABEL, "--shard", "1/1")
    assert result.returncode == 0, result.stderr
    assert has_marker(moto_client, moto_bucket)


def test_the_parameter_table_shows_the_shard_and_where_it_came_from(
    run_cli, moto_s3, moto_client, moto_bucket
):
    upload(moto_client, moto_bucket, 3)
    by_flag = run_cli(moto_s3, "annotate", moto_bucket, PREFIX, *LABEL, "--shard", "2/3")
    by_env = run_cli(
        moto_s3,
        "annotate",
        moto_bucket,
        PREFIX,
        *LABEL,
        env={"GO_JOB_RUN_INDEX": "3", "GO_JOB_RUN_COUNT": "3"},
    )
    assert by_flag.returncode == 0 and by_env.returncode == 0
    assert "2/3" in by_flag.stdout and "(--shard)" in by_flag.stdout
    assert "3/3" in by_env.stdout and "$GO_JOB_RUN_INDEX/$GO_JOB_RUN_COUNT" in by_env.stdout
    assert "gos3matic mark" in by_flag.stdout
    assert not has_marker(moto_client, moto_bucket)


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--shard", "0/4"], {}),
        (["--shard", "5/4"], {}),
        (["--shard", "1/0"], {}),
        (["--shard", "two/4"], {}),
        ([], {"GO_JOB_RUN_INDEX": "0", "GO_JOB_RUN_COUNT": "4"}),
        ([], {"GO_JOB_RUN_INDEX": "x", "GO_JOB_RUN_COUNT": "4"}),
    ],
)
def test_a_bad_shard_is_exit_2_and_nothing_written(
    run_cli, moto_s3, moto_client, moto_bucket, args, env
):
    upload(moto_client, moto_bucket, 2)
    before = [
        moto_client.head_object(Bucket=moto_bucket, Key=e["Key"])["Metadata"]
        for e in moto_client.list_objects_v2(Bucket=moto_bucket)["Contents"]
    ]
    result = run_cli(moto_s3, "annotate", moto_bucket, PREFIX, *LABEL, *args, env=env)
    assert result.returncode == 2
    assert "shard" in result.stderr or "GO_JOB_RUN" in result.stderr
    after = [
        moto_client.head_object(Bucket=moto_bucket, Key=e["Key"])["Metadata"]
        for e in moto_client.list_objects_v2(Bucket=moto_bucket)["Contents"]
    ]
    assert after == before == [{}, {}]


def test_mark_on_a_store_that_drops_marker_metadata_is_exit_4(
    run_cli, seaweed_s3, seaweed_client, seaweed_bucket
):
    for index in range(2):
        seaweed_client.put_object(Bucket=seaweed_bucket, Key=f"{PREFIX}f{index}", Body=b"x")
    annotated = run_cli(seaweed_s3, "annotate", seaweed_bucket, PREFIX, *LABEL, "--no-marker")
    assert annotated.returncode == 0, annotated.stderr

    marked = run_cli(seaweed_s3, "mark", seaweed_bucket, PREFIX, *LABEL, "--no-progress")

    assert marked.returncode == 4
    assert "did not keep its metadata" in marked.stdout
