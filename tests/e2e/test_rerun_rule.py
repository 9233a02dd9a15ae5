"""The re-run rule: after any run, every object it annotated and the marker carry the same GoCD
keys, the run's own; a GoCD key the run does not set is removed from both; other keys are merged
on both. Read back by an independent client."""

from __future__ import annotations

import json
from typing import Any

PREFIX = "app/build/package/42.1/"
KEYS = [f"{PREFIX}dist/file-{index}.bin" for index in range(4)]
URL = "https://gocd.example.com/go/tab/build/detail/app/42/build/1/package"
FULL = [
    "--label", "42", "--username", "jo@example.com", "--traceback-url", URL, "--key", "team=core"
]  # fmt: skip


def seed(s3: Any, bucket: str) -> None:
    for key in KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=b"payload", Metadata={"built-by": "jenkins"})


def metadata(s3: Any, bucket: str, key: str) -> dict[str, str]:
    return dict(s3.head_object(Bucket=bucket, Key=key)["Metadata"])


def annotate(run_cli, server, bucket, *args: str) -> dict[str, Any]:
    result = run_cli(server, "annotate", bucket, PREFIX, *args, "--json", "--no-progress")
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_a_rerun_with_fewer_options_leaves_objects_and_marker_agreeing(
    run_cli, moto_s3, moto_client, moto_bucket
):
    seed(moto_client, moto_bucket)
    annotate(run_cli, moto_s3, moto_bucket, *FULL)

    rerun = annotate(run_cli, moto_s3, moto_bucket, "--label", "43", "--username", "o@example.com")

    expected = {"go_pipeline_label": "43", "user": "o@example.com", "team": "core"}
    assert rerun["annotated"] == len(KEYS) and rerun["marker_state"] == "written"
    for key in KEYS:
        assert metadata(moto_client, moto_bucket, key) == {**expected, "built-by": "jenkins"}
    assert metadata(moto_client, moto_bucket, PREFIX) == {**expected, "completed": "completed"}


def test_a_rerun_that_only_drops_a_key_still_rewrites_objects_and_marker(
    run_cli, moto_s3, moto_client, moto_bucket
):
    """Same label and user: 'already annotated' must not hide a traceback URL left behind."""
    seed(moto_client, moto_bucket)
    annotate(run_cli, moto_s3, moto_bucket, *FULL)

    rerun = annotate(run_cli, moto_s3, moto_bucket, "--label", "42", "--username", "jo@example.com")

    assert (rerun["annotated"], rerun["skipped"]) == (len(KEYS), 0)
    for key in [*KEYS, PREFIX]:
        assert "traceback_url" not in metadata(moto_client, moto_bucket, key), key
        assert metadata(moto_client, moto_bucket, key)["team"] == "core", key


def test_custom_keys_of_two_runs_are_merged_on_objects_and_marker(
    run_cli, moto_s3, moto_client, moto_bucket
):
    seed(moto_client, moto_bucket)
    annotate(run_cli, moto_s3, moto_bucket, "--label", "42", "--key", "a=1")

    annotate(run_cli, moto_s3, moto_bucket, "--label", "42", "--key", "b=2")

    for key in KEYS:
        assert metadata(moto_client, moto_bucket, key) == {
            "go_pipeline_label": "42", "a": "1", "b": "2", "built-by": "jenkins"
        }  # fmt: skip
    assert metadata(moto_client, moto_bucket, PREFIX) == {
        "go_pipeline_label": "42", "a": "1", "b": "2", "completed": "completed"
    }  # fmt: skip


def test_the_same_run_again_changes_nothing(run_cli, moto_s3, moto_client, moto_bucket):
    seed(moto_client, moto_bucket)
    annotate(run_cli, moto_s3, moto_bucket, *FULL)
    before = {key: moto_client.head_object(Bucket=moto_bucket, Key=key) for key in [*KEYS, PREFIX]}

    again = annotate(run_cli, moto_s3, moto_bucket, *FULL)

    assert (again["annotated"], again["skipped"]) == (0, len(KEYS))
    assert again["marker_state"] == "already-present"
    for key, head in before.items():
        after = moto_client.head_object(Bucket=moto_bucket, Key=key)
        assert (after["ETag"], after["LastModified"]) == (head["ETag"], head["LastModified"])


def test_mark_after_shards_of_different_users_still_marks(
    run_cli, moto_s3, moto_client, moto_bucket
):
    """mark checks the label and custom keys only: each shard's user may differ."""
    seed(moto_client, moto_bucket)
    for index in (1, 2):
        result = run_cli(
            moto_s3, "annotate", moto_bucket, PREFIX, "--label", "42", "--key", "team=core",
            "--username", f"agent-{index}@example.com", "--shard", f"{index}/2", "--no-progress",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr

    marked = run_cli(
        moto_s3, "mark", moto_bucket, PREFIX, "--label", "42", "--key", "team=core", "--json"
    )

    assert marked.returncode == 0, marked.stderr
    assert json.loads(marked.stdout)["annotated"] == len(KEYS)
    assert metadata(moto_client, moto_bucket, PREFIX) == {
        "go_pipeline_label": "42", "team": "core", "completed": "completed"
    }  # fmt: skip
