"""`status`: what GoCD's poller will see in a package, read back by an independent client."""

from __future__ import annotations

import json

import pytest
from support.readback import snapshot

PACKAGE = "app/build/package/"
DONE = {
    "completed": "completed",
    "go_pipeline_label": "42",
    "user": "jo@example.com",
    "traceback_url": "https://gocd.example.com/go/tab/build/detail/app/42/build/1/package",
}


def upload(s3, bucket, revision, count=2):
    for index in range(count):
        s3.put_object(Bucket=bucket, Key=f"{PACKAGE}{revision}/file-{index}.bin", Body=b"payload")


def mark(s3, bucket, revision, **metadata):
    """A marker as the GoCD publisher writes it: a zero-byte object whose key is the folder."""
    s3.put_object(Bucket=bucket, Key=f"{PACKAGE}{revision}/", Body=b"", Metadata=metadata)


def publish(s3, bucket, revision, label):
    upload(s3, bucket, revision)
    mark(s3, bucket, revision, **{**DONE, "go_pipeline_label": label})


def status(run_cli, server, bucket, *extra, package=PACKAGE):
    return run_cli(server, "status", bucket, package, "--json", *extra)


def test_reports_the_newest_complete_revision_with_what_its_marker_says(
    run_cli, moto_s3, moto_client, moto_bucket
):
    publish(moto_client, moto_bucket, "42.9", "a")
    publish(moto_client, moto_bucket, "42.10", "b")  # listed before 42.9, and newer
    publish(moto_client, moto_bucket, "9.1", "c")

    result = status(run_cli, moto_s3, moto_bucket)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    marker = moto_client.head_object(Bucket=moto_bucket, Key=f"{PACKAGE}42.10/")
    assert report["revision"] == "42.10"
    assert report["label"] == marker["Metadata"]["go_pipeline_label"] == "b"
    assert report["user"] == marker["Metadata"]["user"]
    assert report["traceback_url"] == marker["Metadata"]["traceback_url"]
    assert report["timestamp"] == marker["LastModified"].isoformat()
    assert report["complete"] == ["9.1", "42.9", "42.10"]
    assert report["incomplete"] == [] and report["unparseable"] == []
    assert report["healthy"] is True and report["exit_code"] == 0


def test_incomplete_revisions_are_listed_and_never_reported(
    run_cli, moto_s3, moto_client, moto_bucket
):
    publish(moto_client, moto_bucket, "41.1", "41")
    upload(moto_client, moto_bucket, "42.1")  # no marker yet: still uploading
    upload(moto_client, moto_bucket, "43.1")
    mark(moto_client, moto_bucket, "43.1", go_pipeline_label="43")  # marker, no `completed`

    result = status(run_cli, moto_s3, moto_bucket)

    report = json.loads(result.stdout)
    assert report["revision"] == "41.1"  # what GoCD reports once 42.1 has a marker
    assert report["incomplete"] == ["42.1", "43.1"]
    assert report["incomplete_reasons"] == {
        "42.1": "no marker",
        "43.1": "marker without 'completed'",
    }


def test_a_folder_without_a_marker_fails_every_poll_and_is_exit_1(
    run_cli, moto_s3, moto_client, moto_bucket
):
    # The poller HEADs 42.1/ with no catch around it: the 404 throws and GoCD triggers nothing.
    publish(moto_client, moto_bucket, "41.1", "41")
    upload(moto_client, moto_bucket, "42.1")

    result = status(run_cli, moto_s3, moto_bucket)

    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["no_marker"] == ["42.1"]
    assert report["poll_fails"] is True and report["healthy"] is False
    assert f"{PACKAGE}42.1/" in report["poll_error"]
    assert "no marker object" in report["poll_error"]
    assert "gos3matic repair" in result.stderr


def test_a_pending_marker_keeps_the_package_polling_and_is_exit_0(
    run_cli, moto_s3, moto_client, moto_bucket
):
    publish(moto_client, moto_bucket, "41.1", "41")
    upload(moto_client, moto_bucket, "42.1")
    mark(moto_client, moto_bucket, "42.1", go_pipeline_label="42")

    result = status(run_cli, moto_s3, moto_bucket)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["revision"] == "41.1"
    assert report["no_marker"] == [] and report["poll_fails"] is False
    assert report["poll_error"] is None


def test_a_folder_the_poller_cannot_parse_is_exit_1_and_named(
    run_cli, moto_s3, moto_client, moto_bucket
):
    publish(moto_client, moto_bucket, "42.1", "42")
    moto_client.put_object(Bucket=moto_bucket, Key=f"{PACKAGE}latest/app.tar.gz", Body=b"x")
    moto_client.put_object(Bucket=moto_bucket, Key=f"{PACKAGE}2024-01-01/app.tar.gz", Body=b"x")

    result = status(run_cli, moto_s3, moto_bucket)

    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["unparseable"] == ["2024-01-01", "latest"]
    assert report["healthy"] is False
    assert report["revision"] == "42.1"  # what GoCD would see once they are gone
    assert "every poll of this package fails" in result.stderr
    assert "latest" in result.stderr


def test_a_complete_folder_the_poller_cannot_parse_is_exit_1(
    run_cli, moto_s3, moto_client, moto_bucket
):
    publish(moto_client, moto_bucket, "42.1", "42")
    publish(moto_client, moto_bucket, "latest", "42")

    result = status(run_cli, moto_s3, moto_bucket)

    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["poll_fails"] is True and report["no_marker"] == []
    assert "'latest'" in report["poll_error"]


def test_an_unparseable_folder_with_a_pending_marker_is_only_a_note(
    run_cli, moto_s3, moto_client, moto_bucket
):
    # The poller parses complete folders only: a pending `latest` is never parsed.
    publish(moto_client, moto_bucket, "42.1", "42")
    upload(moto_client, moto_bucket, "latest")
    mark(moto_client, moto_bucket, "latest")

    result = status(run_cli, moto_s3, moto_bucket)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["unparseable"] == ["latest"] and report["problems"] == []
    assert "harmless" in report["notes"][0]
    assert "note:" in result.stderr


def test_no_complete_revision_is_exit_1_with_nulls(run_cli, moto_s3, moto_client, moto_bucket):
    upload(moto_client, moto_bucket, "42.1")

    result = status(run_cli, moto_s3, moto_bucket)

    assert result.returncode == 1
    report = json.loads(result.stdout)
    for name in ("revision", "label", "user", "traceback_url", "timestamp"):
        assert report[name] is None
    assert report["incomplete"] == ["42.1"]
    assert "nothing to trigger" in result.stderr


def test_a_package_with_nothing_in_it_is_exit_1(run_cli, moto_s3, moto_bucket):
    # The usual cause: a typo in PIPELINE/STAGE/JOB.
    result = status(run_cli, moto_s3, moto_bucket, package="app/build/pakage")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["revision"] is None and report["poll_fails"] is True
    assert "nothing under app/build/pakage/ at all" in result.stderr


def test_status_says_what_each_poll_costs(run_cli, moto_s3, moto_client, moto_bucket):
    for counter in (40, 41, 42):
        publish(moto_client, moto_bucket, f"{counter}.1", str(counter))

    result = run_cli(moto_s3, "status", moto_bucket, "app/build/package")

    assert result.returncode == 0, result.stderr
    cost = next(line for line in result.stdout.splitlines() if "poll cost" in line)
    assert "4 HEAD(s)" in cost and "one after the other" in cost and "1 LIST(s)" in cost


def test_a_three_part_revision_is_a_warning_not_a_failure(
    run_cli, moto_s3, moto_client, moto_bucket
):
    publish(moto_client, moto_bucket, "42.1", "42")
    publish(moto_client, moto_bucket, "42.1.3", "42")

    result = status(run_cli, moto_s3, moto_bucket)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["revision"] == "42.1.3"
    assert report["three_part"] == ["42.1.3"]
    assert "fetch task" in result.stderr


def test_the_human_table_says_what_gocd_sees(run_cli, moto_s3, moto_client, moto_bucket):
    publish(moto_client, moto_bucket, "42.1", "2.1.3.42")
    upload(moto_client, moto_bucket, "43.1")
    mark(moto_client, moto_bucket, "43.1")

    result = run_cli(moto_s3, "status", moto_bucket, "app/build/package")

    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "42.1" in lines["GoCD"]
    assert "2.1.3.42" in lines["label"]
    assert "43.1 (marker without 'completed')" in lines["incomplete"]


def test_the_human_table_says_when_every_poll_fails(run_cli, moto_s3, moto_client, moto_bucket):
    publish(moto_client, moto_bucket, "42.1", "2.1.3.42")
    upload(moto_client, moto_bucket, "43.1")

    result = run_cli(moto_s3, "status", moto_bucket, "app/build/package")

    assert result.returncode == 1
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "every poll fails" in lines["GoCD"] and "42.1 once repaired" in lines["GoCD"]
    assert "43.1 (no marker)" in lines["incomplete"]
    assert any(line.split()[:2] == ["no", "marker"] for line in result.stdout.splitlines())


def test_status_sees_what_annotate_wrote(run_cli, moto_s3, moto_client, moto_bucket):
    upload(moto_client, moto_bucket, "42.1")
    annotated = run_cli(
        moto_s3, "annotate", moto_bucket, f"{PACKAGE}42.1", "--label", "42", "--no-progress"
    )
    assert annotated.returncode == 0, annotated.stderr

    report = json.loads(status(run_cli, moto_s3, moto_bucket).stdout)

    assert report["revision"] == "42.1" and report["label"] == "42"


def test_status_writes_nothing(run_cli, moto_s3, moto_client, moto_bucket):
    publish(moto_client, moto_bucket, "42.1", "42")
    upload(moto_client, moto_bucket, "43.1")
    moto_client.put_object(Bucket=moto_bucket, Key=f"{PACKAGE}latest/x", Body=b"x")
    before = snapshot(moto_client, moto_bucket)

    status(run_cli, moto_s3, moto_bucket)

    assert snapshot(moto_client, moto_bucket) == before


@pytest.mark.parametrize("package", ["app/build", "app/build/package/42.1", "s3://b/app/build/x"])
def test_a_package_is_exactly_pipeline_stage_job(run_cli, moto_s3, moto_bucket, package):
    result = run_cli(moto_s3, "status", moto_bucket, package)
    assert result.returncode == 2
    assert result.stderr.startswith("gos3matic: error:")


def test_a_missing_bucket_is_exit_3(run_cli, moto_s3):
    result = run_cli(moto_s3, "status", "no-such-bucket-here", "app/build/package")
    assert result.returncode == 3
    assert "does not exist" in result.stderr


def test_quiet_prints_only_the_revision_gocd_sees(run_cli, moto_s3, moto_client, moto_bucket):
    publish(moto_client, moto_bucket, "41.1", "41")
    upload(moto_client, moto_bucket, "42.1")
    mark(moto_client, moto_bucket, "42.1", go_pipeline_label="42")  # pending: in the table only

    result = run_cli(moto_s3, "status", moto_bucket, PACKAGE, "-q")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "41.1\n"
    assert result.stderr == ""
    loud = run_cli(moto_s3, "status", moto_bucket, PACKAGE)
    assert "incomplete     1: 42.1" in loud.stdout  # the table -q leaves out


def test_quiet_prints_nothing_and_the_problem_when_every_poll_fails(
    run_cli, moto_s3, moto_client, moto_bucket
):
    publish(moto_client, moto_bucket, "41.1", "41")
    upload(moto_client, moto_bucket, "42.1")  # no marker: the poller's HEAD throws

    result = run_cli(moto_s3, "status", moto_bucket, PACKAGE, "--quiet")

    assert result.returncode == 1
    assert result.stdout == ""
    assert "PROBLEM" in result.stderr and f"{PACKAGE}42.1/" in result.stderr
