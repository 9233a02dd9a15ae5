"""`backfill`: every incomplete revision completed, as an independent client reads it back."""

from __future__ import annotations

import json

from support.readback import snapshot

PACKAGE = "app/build/package/"
DONE = {"completed": "completed", "go_pipeline_label": "40", "user": "first@example.com"}


def upload(s3, bucket, revision, count=3, **extra):
    keys = []
    for index in range(count):
        key = f"{PACKAGE}{revision}/dist/file-{index}.bin"
        s3.put_object(Bucket=bucket, Key=key, Body=b"payload", **extra)
        keys.append(key)
    return keys


def objects(s3, bucket, revision):
    prefix = f"{PACKAGE}{revision}/"
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return [entry["Key"] for entry in listed if entry["Key"] != prefix]


def marker(s3, bucket, revision):
    try:
        return s3.head_object(Bucket=bucket, Key=f"{PACKAGE}{revision}/")["Metadata"]
    except s3.exceptions.ClientError:
        return None


def seed_history(s3, bucket):
    """40.1 published by GoCD; 41.1 never marked; 42.1 marked without `completed`; a `latest/`."""
    upload(s3, bucket, "40.1")
    s3.put_object(Bucket=bucket, Key=f"{PACKAGE}40.1/", Body=b"", Metadata=DONE)
    upload(s3, bucket, "41.1")
    upload(s3, bucket, "42.1")
    s3.put_object(Bucket=bucket, Key=f"{PACKAGE}42.1/", Body=b"", Metadata={"stale": "yes"})
    s3.put_object(Bucket=bucket, Key=f"{PACKAGE}latest/app.tar.gz", Body=b"x")


def backfill(run_cli, server, bucket, *extra, env=None):
    return run_cli(
        server, "backfill", bucket, "app/build/package", "--no-progress", *extra, env=env
    )


def test_every_incomplete_revision_is_annotated_and_marked_with_its_counter(
    run_cli, moto_s3, moto_client, moto_bucket
):
    seed_history(moto_client, moto_bucket)

    result = backfill(run_cli, moto_s3, moto_bucket, "--username", "ops@example.com")

    assert result.returncode == 0, result.stderr
    kept = {"41.1": {}, "42.1": {"stale": "yes"}}  # keys not GoCD's are merged, as on objects
    for revision, label in (("41.1", "41"), ("42.1", "42")):
        assert marker(moto_client, moto_bucket, revision) == {
            "completed": "completed",
            "go_pipeline_label": label,
            "user": "ops@example.com",
            **kept[revision],
        }
        for key in objects(moto_client, moto_bucket, revision):
            head = moto_client.head_object(Bucket=moto_bucket, Key=key)
            assert head["Metadata"] == {"go_pipeline_label": label, "user": "ops@example.com"}
    status = json.loads(run_cli(moto_s3, "status", moto_bucket, PACKAGE, "--json").stdout)
    assert status["revision"] == "42.1" and status["incomplete"] == []


def test_complete_revisions_and_unparseable_folders_are_left_alone(
    run_cli, moto_s3, moto_client, moto_bucket
):
    seed_history(moto_client, moto_bucket)
    before = snapshot(moto_client, moto_bucket)

    result = backfill(run_cli, moto_s3, moto_bucket)

    assert result.returncode == 0, result.stderr
    after = snapshot(moto_client, moto_bucket)
    untouched = [key for key in before if key.startswith((f"{PACKAGE}40.1/", f"{PACKAGE}latest/"))]
    assert len(untouched) == 5
    for key in untouched:
        assert after[key] == before[key], key
    assert "latest" in result.stderr and "not completing" in result.stderr
    # `latest/` had no marker, which breaks every poll: it is given a pending one, never completed
    assert marker(moto_client, moto_bucket, "latest") == {}


def test_the_label_map_labels_revisions_and_the_rest_get_their_counter(
    run_cli, moto_s3, moto_client, moto_bucket, tmp_path
):
    seed_history(moto_client, moto_bucket)
    labels = tmp_path / "labels.txt"
    labels.write_text("# release labels\n42.1=2.1.3.42\n\n99.1=unused\n")

    result = backfill(run_cli, moto_s3, moto_bucket, "--label-map", str(labels), "--json")

    assert result.returncode == 0, result.stderr
    assert marker(moto_client, moto_bucket, "42.1")["go_pipeline_label"] == "2.1.3.42"
    assert marker(moto_client, moto_bucket, "41.1")["go_pipeline_label"] == "41"
    report = json.loads(result.stdout)
    assert [
        (r["revision"], r["label"], r["label_source"], r["result"]) for r in report["revisions"]
    ] == [
        ("41.1", "41", "pipeline counter", "completed"),
        ("42.1", "2.1.3.42", "label map", "completed"),
    ]
    assert report["revisions"][1]["was"] == "marker without 'completed'"
    assert report["complete"] == ["40.1"] and report["unparseable"] == ["latest"]


def test_a_bad_label_map_names_every_bad_line_and_writes_nothing(
    run_cli, moto_s3, moto_client, moto_bucket, tmp_path
):
    seed_history(moto_client, moto_bucket)
    before = snapshot(moto_client, moto_bucket)
    labels = tmp_path / "labels.txt"
    labels.write_text("41.1=41\n42.1 2.1.3.42\nlatest=1\n41.1=again\n")

    result = backfill(run_cli, moto_s3, moto_bucket, "--label-map", str(labels))

    assert result.returncode == 2
    for number in (2, 3, 4):
        assert f"labels.txt:{number}:" in result.stderr
    assert "labels.txt:1:" not in result.stderr
    assert snapshot(moto_client, moto_bucket) == before


def test_a_missing_label_map_is_bad_input(run_cli, moto_s3, moto_bucket, tmp_path):
    result = backfill(run_cli, moto_s3, moto_bucket, "--label-map", str(tmp_path / "nope.txt"))
    assert result.returncode == 2
    assert "cannot read --label-map" in result.stderr


def test_dry_run_shows_the_plan_and_writes_nothing(run_cli, moto_s3, moto_client, moto_bucket):
    seed_history(moto_client, moto_bucket)
    before = snapshot(moto_client, moto_bucket)

    result = backfill(run_cli, moto_s3, moto_bucket, "--dry-run", "--json")

    assert result.returncode == 0, result.stderr
    assert snapshot(moto_client, moto_bucket) == before
    assert f"would write marker s3://{moto_bucket}/{PACKAGE}41.1/" in result.stderr
    assert f"would annotate s3://{moto_bucket}/{PACKAGE}42.1/dist/file-0.bin" in result.stderr
    report = json.loads(result.stdout)
    assert [r["result"] for r in report["revisions"]] == ["would-complete", "would-complete"]
    assert report["revisions"][0]["would_annotate"] == 3


def test_the_summary_says_what_became_of_each_pending_marker_in_words(
    run_cli, moto_s3, moto_client, moto_bucket
):
    seed_history(moto_client, moto_bucket)

    planned = backfill(run_cli, moto_s3, moto_bucket, "--dry-run")
    done = backfill(run_cli, moto_s3, moto_bucket)

    assert planned.returncode == 0 and done.returncode == 0, planned.stderr + done.stderr
    assert "41.1  had no marker: pending marker would be written" in planned.stdout
    assert "41.1  had no marker: pending marker written and read back" in done.stdout
    for words in ("would-write", "pending marker written\n"):  # the enum's raw values
        assert words not in planned.stdout + done.stdout


def test_a_failed_revision_stops_the_run_and_a_rerun_resumes(
    run_cli, moto_s3, moto_client, moto_bucket
):
    seed_history(moto_client, moto_bucket)
    upload(moto_client, moto_bucket, "43.1")
    archived = f"{PACKAGE}42.1/old/archived.bin"
    moto_client.put_object(Bucket=moto_bucket, Key=archived, Body=b"x", StorageClass="GLACIER")

    first = backfill(run_cli, moto_s3, moto_bucket, "--json")

    assert first.returncode == 1
    report = json.loads(first.stdout)
    assert [(r["revision"], r["result"]) for r in report["revisions"]] == [
        ("41.1", "completed"),
        ("42.1", "failed"),
        ("43.1", "not-started"),
    ]
    assert report["revisions"][1]["failures"][0]["key"] == archived
    assert marker(moto_client, moto_bucket, "42.1") == {"stale": "yes"}  # withheld
    # never overtakes 42.1: pending (so that GoCD's poll still works), never complete
    assert marker(moto_client, moto_bucket, "43.1") == {"go_pipeline_label": "43"}
    # its objects may be annotated already (later revisions overlap earlier ones); harmless: a
    # pending marker keeps GoCD from seeing the revision, and the re-run skips them
    assert objects(moto_client, moto_bucket, "43.1")

    moto_client.delete_object(Bucket=moto_bucket, Key=archived)  # the operator's fix
    again = backfill(run_cli, moto_s3, moto_bucket, "--json")

    assert again.returncode == 0, again.stderr
    resumed = json.loads(again.stdout)["revisions"]
    assert [(r["revision"], r["result"]) for r in resumed] == [
        ("42.1", "completed"),
        ("43.1", "completed"),
    ]
    assert resumed[0]["skipped"] == 3 and resumed[0]["annotated"] == 0  # done the first time
    assert marker(moto_client, moto_bucket, "43.1")["completed"] == "completed"


def test_each_revision_gets_the_traceback_url_of_its_own_upstream_run(
    run_cli, moto_s3, moto_client, moto_bucket
):
    upload(moto_client, moto_bucket, "41.2")
    go_env = {
        "GO_SERVER_DASHBOARD_URL": "https://gocd.example.com",
        # the backfilling job's own run: must not leak into the revision
        "GO_PIPELINE_NAME": "maintenance",
        "GO_PIPELINE_COUNTER": "7",
        "GO_STAGE_NAME": "fix",
        "GO_STAGE_COUNTER": "1",
        "GO_JOB_NAME": "backfill",
        "GO_PIPELINE_LABEL": "7",
        "GO_TRIGGER_USER": "ops@example.com",
    }

    result = backfill(run_cli, moto_s3, moto_bucket, env=go_env)

    assert result.returncode == 0, result.stderr
    assert marker(moto_client, moto_bucket, "41.2") == {
        "completed": "completed",
        "go_pipeline_label": "41",
        "user": "ops@example.com",
        "traceback_url": "https://gocd.example.com/go/tab/build/detail/app/41/build/2/package",
    }


def test_nothing_incomplete_is_a_clean_no_op(run_cli, moto_s3, moto_client, moto_bucket):
    upload(moto_client, moto_bucket, "40.1")
    moto_client.put_object(Bucket=moto_bucket, Key=f"{PACKAGE}40.1/", Body=b"", Metadata=DONE)
    before = snapshot(moto_client, moto_bucket)

    result = backfill(run_cli, moto_s3, moto_bucket, "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["revisions"] == []
    assert snapshot(moto_client, moto_bucket) == before


def test_annotate_options_apply_and_label_is_not_one_of_them(
    run_cli, moto_s3, moto_client, moto_bucket
):
    upload(moto_client, moto_bucket, "41.1", count=1)

    refused = backfill(run_cli, moto_s3, moto_bucket, "--label", "9")
    assert refused.returncode == 2

    result = backfill(run_cli, moto_s3, moto_bucket, "--key", "source=jenkins", "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert marker(moto_client, moto_bucket, "41.1")["source"] == "jenkins"
