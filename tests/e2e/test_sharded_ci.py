"""Sharded runs inside a CI job (issue 17): the shards run in one stage, the mark in another.

GoCD sets GO_* in every job, and the stage name and counter and the job name differ between
the shards' stage and the one that writes the marker: so do the user and traceback URL each
stage would compute. The objects keep the shards' ones; the mark must still pass them. Read back
with the test's own client and judged by the port of GoCD's poll (support/poller.py); SeaweedFS
keeps no marker metadata, so the marker and the poll are judged on moto only.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.ci_envs import GITHUB_ENV, GOCD_ENV, JENKINS_ENV
from support.poller import Polled
from support.poller import poll_result as poll

from gos3matic.core.shards import shard_of

# -- annotate --shard in one stage, mark in another -----------------------------------------------

PACKAGE = "myapp/build/package/"
PREFIX = f"{PACKAGE}77.2/"  # the revision GOCD_ENV names


def stage(pipeline: dict[str, str], name: str, counter: int, job: str) -> dict[str, str]:
    """A job's environment in one stage of PIPELINE: GoCD sets these differently per stage."""
    return {
        **pipeline,
        "GO_STAGE_NAME": name,
        "GO_STAGE_COUNTER": str(counter),
        "GO_JOB_NAME": job,
    }


BUILD_STAGE = stage(GOCD_ENV, "build", 2, "package")
PUBLISH_STAGE = stage(GOCD_ENV, "publish", 1, "upload")
# The publish stage run by hand, by someone else than the one who triggered the pipeline.
PUBLISH_BY_HAND = {**PUBLISH_STAGE, "GO_TRIGGER_USER": "ops@example.com"}
GOCD_OBJECTS = {
    "go_pipeline_label": "1.4.77",
    "user": "changes",
    "traceback_url": "https://gocd.example.com/go/tab/build/detail/myapp/77/build/2/package",
}

# name: (the shards' environment, the mark's, extra options of both, what every object carries)
FLOWS: dict[str, tuple[dict[str, str], dict[str, str], list[str], dict[str, str]]] = {
    "gocd": (BUILD_STAGE, PUBLISH_STAGE, [], GOCD_OBJECTS),
    "gocd-publish-by-hand": (BUILD_STAGE, PUBLISH_BY_HAND, [], GOCD_OBJECTS),
    "nothing-set": ({}, {}, ["--label", "1.4.77"], {"go_pipeline_label": "1.4.77"}),
    "github-actions": (
        GITHUB_ENV,
        GITHUB_ENV,
        [],
        {
            "go_pipeline_label": "42",
            "user": "mona",
            "traceback_url": "https://github.com/octocat/Hello-World/actions/runs/1658821493",
        },
    ),
    "jenkins": (
        JENKINS_ENV,
        JENKINS_ENV,
        [],
        {
            "go_pipeline_label": "153",
            "user": "jo",
            "traceback_url": "https://jenkins.example.com/job/myapp/153/",
        },
    ),
}


def upload(s3: Any, bucket: str, prefix: str, count: int = 10) -> list[str]:
    keys = [f"{prefix}dist/file-{index:02}.bin" for index in range(count)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    assert {shard_of(key, 2) for key in keys} == {1, 2}  # each shard has a share
    return keys


def head(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        return dict(s3.head_object(Bucket=bucket, Key=key))
    except s3.exceptions.ClientError:
        return None


def metadata_of(s3: Any, bucket: str, keys: list[str]) -> dict[str, dict[str, str]]:
    return {key: dict(s3.head_object(Bucket=bucket, Key=key)["Metadata"]) for key in keys}


@pytest.mark.parametrize("flow", list(FLOWS))
def test_annotate_shards_then_mark_in_another_stage_completes_the_revision(
    run_cli: Any, s3server: Any, s3: Any, bucket: str, flow: str
) -> None:
    shard_env, mark_env, extra, expected = FLOWS[flow]
    keys = upload(s3, bucket, PREFIX)

    for shard in ("1/2", "2/2"):
        result = run_cli(
            s3server,
            "annotate",
            bucket,
            PREFIX,
            "--shard",
            shard,
            "--no-progress",
            *extra,
            env=shard_env,
        )
        assert result.returncode == 0, result.stderr
    assert metadata_of(s3, bucket, keys) == {key: expected for key in keys}

    marked = run_cli(s3server, "mark", bucket, PREFIX, "--no-progress", *extra, env=mark_env)

    assert "not annotated: s3://" not in marked.stdout + marked.stderr
    assert metadata_of(s3, bucket, keys) == {key: expected for key in keys}  # the shards' ones
    if s3server.kind == "seaweedfs":
        assert marked.returncode == 4, marked.stderr  # checked, then the marker was not kept
        return
    assert marked.returncode == 0, marked.stderr
    marker = head(s3, bucket, PREFIX)
    assert marker is not None
    assert marker["Metadata"]["completed"] == "completed"
    assert marker["Metadata"]["go_pipeline_label"] == expected["go_pipeline_label"]
    polled = poll(s3, bucket, PACKAGE)
    assert isinstance(polled, Polled), polled
    assert (polled.revision, polled.label) == ("77.2", expected["go_pipeline_label"])
    assert polled.user == marker["Metadata"].get("user")
    assert polled.traceback_url == marker["Metadata"].get("traceback_url")


# -- backfill --shard in one stage, backfill --mark-only in another ------------------------------

BACKFILLED = "app/build/package/"
# The backfilling pipeline's own jobs: its GO_* must not leak into the revisions' labels and URLs.
MAINTENANCE = {
    **GOCD_ENV,
    "GO_PIPELINE_NAME": "maintenance",
    "GO_PIPELINE_COUNTER": "7",
    "GO_PIPELINE_LABEL": "7",
    "GO_TRIGGER_USER": "changes",
}
SHARD_STAGE = stage(MAINTENANCE, "annotate", 1, "shard")
MARK_STAGE = stage(MAINTENANCE, "complete", 2, "mark")
MARK_BY_HAND = {**MARK_STAGE, "GO_TRIGGER_USER": "ops@example.com"}


def backfilled_objects(revision: str, user: str | None) -> dict[str, str]:
    counter = revision.split(".")[0]
    expected = {"go_pipeline_label": counter}
    if user is not None:
        expected["user"] = user
        expected["traceback_url"] = (
            f"https://gocd.example.com/go/tab/build/detail/app/{counter}/build/1/package"
        )
    return expected


# name: (the shards' environment, the mark-only stage's, the user the shards write)
BACKFILLS: dict[str, tuple[dict[str, str], dict[str, str], str | None]] = {
    "gocd": (SHARD_STAGE, MARK_STAGE, "changes"),
    "gocd-mark-by-hand": (SHARD_STAGE, MARK_BY_HAND, "changes"),
    "nothing-set": ({}, {}, None),
}


@pytest.mark.parametrize("flow", list(BACKFILLS))
def test_backfill_shards_then_mark_only_in_another_stage_completes_every_revision(
    run_cli: Any, s3server: Any, s3: Any, bucket: str, flow: str
) -> None:
    shard_env, mark_env, user = BACKFILLS[flow]
    keys = {
        revision: upload(s3, bucket, f"{BACKFILLED}{revision}/") for revision in ("41.1", "42.1")
    }
    backfill = [s3server, "backfill", bucket, BACKFILLED, "--no-progress", "--json"]

    for index in ("1", "2"):
        shard = run_cli(
            *backfill, env={**shard_env, "GO_JOB_RUN_INDEX": index, "GO_JOB_RUN_COUNT": "2"}
        )
        assert shard.returncode == 0, shard.stderr
        assert json.loads(shard.stdout)["mode"] == "shard"
    for revision, revision_keys in keys.items():
        wanted = backfilled_objects(revision, user)
        assert metadata_of(s3, bucket, revision_keys) == {key: wanted for key in revision_keys}

    marked = run_cli(*backfill, "--mark-only", env=mark_env)

    assert "not annotated: s3://" not in marked.stderr
    results = [(r["revision"], r["result"]) for r in json.loads(marked.stdout)["revisions"]]
    for revision, revision_keys in keys.items():  # the shards' user and URL, untouched
        wanted = backfilled_objects(revision, user)
        assert metadata_of(s3, bucket, revision_keys) == {key: wanted for key in revision_keys}
    if s3server.kind == "seaweedfs":
        assert marked.returncode == 4, marked.stderr  # checked, then the marker was not kept
        assert results == [("41.1", "marker-not-kept"), ("42.1", "not-started")]
        return
    assert marked.returncode == 0, marked.stderr
    assert results == [("41.1", "completed"), ("42.1", "completed")]
    for revision in keys:
        marker = head(s3, bucket, f"{BACKFILLED}{revision}/")
        assert marker is not None
        assert marker["Metadata"]["completed"] == "completed"
        assert marker["Metadata"]["go_pipeline_label"] == revision.split(".")[0]
    polled = poll(s3, bucket, BACKFILLED)
    assert isinstance(polled, Polled), polled
    assert (polled.revision, polled.label) == ("42.1", "42")
