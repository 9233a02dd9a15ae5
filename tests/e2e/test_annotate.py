"""`annotate` end to end: the real CLI against real local S3 servers, read back independently."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.readback import snapshot

REPO = Path(__file__).resolve().parents[2]
PREFIX = "app/build/package/42.1/"
SIBLING = "app/build/package/42.10/sibling.bin"
LABEL_ARGS = [
    "--label",
    "42",
    "--username",
    "jo@example.com",
    "--traceback-url",
    "https://gocd.example.com/go/tab/build/detail/app/42/build/1/pkg",
]
ANNOTATION = {
    "go_pipeline_label": "42",
    "user": "jo@example.com",
    "traceback_url": "https://gocd.example.com/go/tab/build/detail/app/42/build/1/pkg",
}
EXPIRES = dt.datetime(2031, 5, 17, 10, 0, tzinfo=dt.timezone.utc)


def put(s3, bucket, key, body=b"payload", **extra):
    s3.put_object(Bucket=bucket, Key=key, Body=body, **extra)
    return hashlib.md5(body).hexdigest()


def seed_deliverable(s3, bucket, count=12):
    """A deliverable as another build system leaves it, and a sibling revision not to touch."""
    digests = {}
    for index in range(count):
        body = os.urandom(1000 + index)
        digests[f"{PREFIX}dist/file-{index:03}.bin"] = put(
            s3, bucket, f"{PREFIX}dist/file-{index:03}.bin", body
        )
    digests[f"{PREFIX}app.tar.gz"] = put(
        s3,
        bucket,
        f"{PREFIX}app.tar.gz",
        b"\x1f\x8b" + os.urandom(5000),
        ContentType="application/gzip",
        CacheControl="max-age=31536000, immutable",
        ContentDisposition='attachment; filename="app.tar.gz"',
        ContentEncoding="identity",
        ContentLanguage="en-GB",
        Expires=EXPIRES,
        WebsiteRedirectLocation="/releases/latest",
        Metadata={"built-by": "jenkins", "commit": "0123abcd"},
        Tagging="team=core&tier=gold",
    )
    put(s3, bucket, SIBLING, b"do not touch", Metadata={"keep": "me"})
    return digests


def content_md5(s3, bucket, key):
    return hashlib.md5(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest()


def annotate(run_cli, server, bucket, *extra, path=PREFIX, env=None):
    return run_cli(server, "annotate", bucket, path, *LABEL_ARGS, "--no-progress", *extra, env=env)


# -- the whole job, on both servers -------------------------------------------------------------


def test_every_object_gets_the_annotation_and_keeps_everything_else(run_cli, s3server, s3, bucket):
    digests = seed_deliverable(s3, bucket)
    before = s3.head_object(Bucket=bucket, Key=f"{PREFIX}app.tar.gz")

    result = annotate(run_cli, s3server, bucket, "--key", "team=core", "--no-marker")

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    for key, digest in digests.items():
        head = s3.head_object(Bucket=bucket, Key=key)
        assert {**ANNOTATION, "team": "core"}.items() <= head["Metadata"].items(), key
        assert content_md5(s3, bucket, key) == digest, key
    after = s3.head_object(Bucket=bucket, Key=f"{PREFIX}app.tar.gz")
    for header in (
        "ContentType",
        "CacheControl",
        "ContentDisposition",
        "ContentEncoding",
        "ContentLanguage",
        "Expires",
        "ContentLength",
    ):
        assert after.get(header) == before.get(header), header
    if s3server.kind == "moto":  # SeaweedFS does not keep this header at all
        assert after["WebsiteRedirectLocation"] == "/releases/latest"
    assert after["Metadata"]["built-by"] == "jenkins" and after["Metadata"]["commit"] == "0123abcd"
    tags = s3.get_object_tagging(Bucket=bucket, Key=f"{PREFIX}app.tar.gz")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("team", "core"), ("tier", "gold")]


def test_the_sibling_revision_with_a_longer_name_is_untouched(run_cli, s3server, s3, bucket):
    seed_deliverable(s3, bucket, count=2)
    before = s3.head_object(Bucket=bucket, Key=SIBLING)

    result = annotate(run_cli, s3server, bucket, "--no-marker", path="app/build/package/42.1")

    assert result.returncode == 0, result.stderr
    after = s3.head_object(Bucket=bucket, Key=SIBLING)
    assert after["Metadata"] == {"keep": "me"}
    assert after["LastModified"] == before["LastModified"]


def test_dry_run_prints_the_writes_and_makes_none(run_cli, s3server, s3, bucket):
    seed_deliverable(s3, bucket, count=3)
    before = snapshot(s3, bucket)

    result = annotate(run_cli, s3server, bucket, "--dry-run")

    assert result.returncode == 0, result.stderr
    assert snapshot(s3, bucket) == before
    assert f"would annotate s3://{bucket}/{PREFIX}app.tar.gz" in result.stdout
    assert f"would write marker s3://{bucket}/{PREFIX}" in result.stdout
    assert result.stdout.count("would annotate s3://") == 4


# -- the marker -----------------------------------------------------------------------------------


def test_marker_is_written_last_with_completed_and_read_back(
    run_cli, moto_s3, moto_client, moto_bucket
):
    seed_deliverable(moto_client, moto_bucket, count=3)

    result = annotate(run_cli, moto_s3, moto_bucket, "--json")

    assert result.returncode == 0, result.stderr
    marker = moto_client.head_object(Bucket=moto_bucket, Key=PREFIX)
    assert marker["ContentLength"] == 0
    assert marker["Metadata"] == {**ANNOTATION, "completed": "completed"}
    newest_object = max(
        moto_client.head_object(Bucket=moto_bucket, Key=e["Key"])["LastModified"]
        for e in moto_client.list_objects_v2(Bucket=moto_bucket, Prefix=PREFIX)["Contents"]
        if e["Key"] != PREFIX
    )
    assert marker["LastModified"] >= newest_object
    report = json.loads(result.stdout)
    assert report["annotated"] == 4 and report["failed"] == 0
    assert report["marker_written"] is True and report["marker_verified"] is True
    assert report["failures"] == []


def test_seaweedfs_drops_the_marker_metadata_and_the_run_says_so(
    run_cli, seaweed_s3, seaweed_client, seaweed_bucket
):
    seed_deliverable(seaweed_client, seaweed_bucket, count=2)

    result = annotate(run_cli, seaweed_s3, seaweed_bucket)

    assert result.returncode == 4, result.stderr
    assert "did not keep its metadata" in result.stdout
    assert "GoCD will not see this revision" in result.stdout
    head = seaweed_client.head_object(Bucket=seaweed_bucket, Key=f"{PREFIX}app.tar.gz")
    assert ANNOTATION.items() <= head["Metadata"].items()


def test_one_failed_object_means_no_complete_marker_and_its_key_named(
    run_cli, moto_s3, moto_client, moto_bucket
):
    seed_deliverable(moto_client, moto_bucket, count=3)
    archived = f"{PREFIX}old/archived.bin"
    put(moto_client, moto_bucket, archived, StorageClass="GLACIER")

    result = annotate(run_cli, moto_s3, moto_bucket, "--json")

    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["failed"] == 1 and report["annotated"] == 4
    assert report["failures"][0]["key"] == archived
    assert "restore it first" in report["failures"][0]["error"]
    assert report["marker_written"] is False
    assert archived in result.stderr  # the human summary names it too
    # Pending, not missing: GoCD's poll skips the folder instead of failing on it.
    assert "completed" not in moto_client.head_object(Bucket=moto_bucket, Key=PREFIX)["Metadata"]


def test_nothing_to_annotate_is_a_failure_unless_allowed(
    run_cli, moto_s3, moto_client, moto_bucket
):
    result = annotate(run_cli, moto_s3, moto_bucket)
    assert result.returncode == 1
    assert "nothing to annotate" in result.stdout
    assert moto_client.list_objects_v2(Bucket=moto_bucket).get("KeyCount") == 0

    allowed = annotate(run_cli, moto_s3, moto_bucket, "--allow-empty")
    assert allowed.returncode == 0, allowed.stderr
    marker = moto_client.head_object(Bucket=moto_bucket, Key=PREFIX)
    assert marker["Metadata"]["completed"] == "completed"


def test_no_marker_option_annotates_objects_only(run_cli, moto_s3, moto_client, moto_bucket):
    seed_deliverable(moto_client, moto_bucket, count=1)
    result = annotate(run_cli, moto_s3, moto_bucket, "--no-marker")
    assert result.returncode == 0, result.stderr
    keys = [e["Key"] for e in moto_client.list_objects_v2(Bucket=moto_bucket)["Contents"]]
    assert PREFIX not in keys


# -- properties only AWS semantics show (moto) ---------------------------------------------------


def test_storage_class_encryption_and_grants_survive(run_cli, moto_s3, moto_client, moto_bucket):
    kms = f"{PREFIX}kms.bin"
    public = f"{PREFIX}public.html"
    put(
        moto_client,
        moto_bucket,
        kms,
        StorageClass="STANDARD_IA",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId="arn:aws:kms:us-east-1:123456789012:key/k1",
    )
    put(moto_client, moto_bucket, public, ContentType="text/html", ACL="public-read")
    acl_before = moto_client.get_object_acl(Bucket=moto_bucket, Key=public)["Grants"]

    result = annotate(run_cli, moto_s3, moto_bucket)

    assert result.returncode == 0, result.stderr
    head = moto_client.head_object(Bucket=moto_bucket, Key=kms)
    assert ANNOTATION.items() <= head["Metadata"].items()
    assert head["StorageClass"] == "STANDARD_IA"
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith("key/k1")
    acl_after = moto_client.get_object_acl(Bucket=moto_bucket, Key=public)["Grants"]
    assert sorted(map(str, acl_after)) == sorted(map(str, acl_before))
    assert any(g["Grantee"].get("URI", "").endswith("AllUsers") for g in acl_after)


def test_a_rerun_skips_everything_and_adds_no_versions(run_cli, moto_s3, moto_client, moto_bucket):
    moto_client.put_bucket_versioning(
        Bucket=moto_bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    seed_deliverable(moto_client, moto_bucket, count=3)
    first = annotate(run_cli, moto_s3, moto_bucket)
    assert first.returncode == 0, first.stderr
    versions_before = moto_client.list_object_versions(Bucket=moto_bucket)["Versions"]

    again = annotate(run_cli, moto_s3, moto_bucket, "--json")

    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["skipped"] == 4 and report["annotated"] == 0
    assert report["marker_verified"] is True and report["marker_written"] is False
    versions_after = moto_client.list_object_versions(Bucket=moto_bucket)["Versions"]
    assert len(versions_after) == len(versions_before)


def test_a_rerun_after_a_failure_finishes_the_job(run_cli, moto_s3, moto_client, moto_bucket):
    seed_deliverable(moto_client, moto_bucket, count=2)
    archived = f"{PREFIX}archived.bin"
    put(moto_client, moto_bucket, archived, StorageClass="GLACIER")
    assert annotate(run_cli, moto_s3, moto_bucket).returncode == 1
    moto_client.delete_object(Bucket=moto_bucket, Key=archived)  # the operator removes it

    again = annotate(run_cli, moto_s3, moto_bucket, "--json")

    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["skipped"] == 3 and report["annotated"] == 0
    assert moto_client.head_object(Bucket=moto_bucket, Key=PREFIX)["Metadata"]["completed"]


def test_object_lock_retention_and_legal_hold_survive(run_cli, moto_s3, moto_client):
    bucket = "locked-" + os.urandom(4).hex()
    moto_client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    until = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(days=30)
    put(
        moto_client,
        bucket,
        f"{PREFIX}locked.bin",
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=until,
        ObjectLockLegalHoldStatus="ON",
    )

    result = annotate(run_cli, moto_s3, bucket, "--no-marker")

    assert result.returncode == 0, result.stderr
    head = moto_client.head_object(Bucket=bucket, Key=f"{PREFIX}locked.bin")
    assert ANNOTATION.items() <= head["Metadata"].items()
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert head["ObjectLockRetainUntilDate"] == until
    assert head["ObjectLockLegalHoldStatus"] == "ON"


# -- inputs and defaults --------------------------------------------------------------------------


def test_go_environment_supplies_label_user_and_traceback(
    run_cli, moto_s3, moto_client, moto_bucket
):
    put(moto_client, moto_bucket, f"{PREFIX}a.bin")
    go_env = {
        "GO_PIPELINE_LABEL": "77",
        "GO_TRIGGER_USER": "changes",
        "GO_SERVER_DASHBOARD_URL": "https://ci.example.com",
        "GO_PIPELINE_NAME": "app",
        "GO_PIPELINE_COUNTER": "77",
        "GO_STAGE_NAME": "build",
        "GO_STAGE_COUNTER": "2",
        "GO_JOB_NAME": "pkg",
    }
    result = run_cli(moto_s3, "annotate", moto_bucket, PREFIX, "--no-progress", env=go_env)

    assert result.returncode == 0, result.stderr
    assert "$GO_PIPELINE_LABEL" in result.stdout  # the table says where each value came from
    metadata = moto_client.head_object(Bucket=moto_bucket, Key=PREFIX)["Metadata"]
    assert metadata == {
        "go_pipeline_label": "77",
        "user": "changes",
        "completed": "completed",
        "traceback_url": "https://ci.example.com/go/tab/build/detail/app/77/build/2/pkg",
    }


def test_non_ascii_values_are_stored_rfc2047_encoded(run_cli, moto_s3, moto_client, moto_bucket):
    put(moto_client, moto_bucket, f"{PREFIX}a.bin")
    result = run_cli(
        moto_s3,
        "annotate",
        moto_bucket,
        PREFIX,
        "--label",
        "1",
        "--username",
        "José Müller",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    stored = moto_client.head_object(Bucket=moto_bucket, Key=f"{PREFIX}a.bin")["Metadata"]["user"]
    from email.header import decode_header

    raw, charset = decode_header(stored)[0]
    assert raw.decode(charset) == "José Müller"


BAD_INPUTS = [
    (["--label", ""], "label"),
    (["--label", "4 2"], "invalid label"),
    (["--label", "x" * 256], "invalid label"),
    (["--label", "1", "--key", "Team=x"], "lowercases"),
    (["--label", "1", "--key", "completed"], "GoCD's own"),
    (["--label", "1", "--key", "a b=c"], "lowercase letters"),
    (["--label", "1", "--key", "note=line\nbreak"], "control characters"),
    (["--label", "1", "--key", "big=" + "x" * 2100], "2048"),
    (["--label", "1", "--username", ""], "--username is empty"),
    (["--label", "1", "--traceback-url", "not a url"], "traceback URL"),
    (["--label", "1", "--workers", "0"], "--max-in-flight"),
    (["--label", "1", "--max-in-flight", "5000"], "--max-in-flight"),
    (["--label", "1", "--workers", "many"], "invalid int"),
    (["--label", "1", "--endpoint-url", "ftp://x"], "--endpoint-url"),
    (["--label", "1", "--expected-bucket-owner", "me"], "12 digits"),
    (["--label", "1", "--no-such-flag"], "unrecognized arguments"),
    ([], "no label"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS, ids=[m for _, m in BAD_INPUTS])
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    run_cli, moto_s3, moto_client, moto_bucket, args, message
):
    put(moto_client, moto_bucket, f"{PREFIX}a.bin")
    before = snapshot(moto_client, moto_bucket)

    result = run_cli(moto_s3, "annotate", moto_bucket, PREFIX, *args)

    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert snapshot(moto_client, moto_bucket) == before


@pytest.mark.parametrize("path", ["", "/", "a//b", "s3://bkt/app", "../x"])
def test_bad_paths_are_refused(run_cli, moto_s3, moto_bucket, path):
    result = run_cli(moto_s3, "annotate", moto_bucket, path, "--label", "1")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("bucket", ["s3://bkt", "a/b", "sp ace"])
def test_bad_bucket_names_are_refused(run_cli, moto_s3, bucket):
    result = run_cli(moto_s3, "annotate", bucket, PREFIX, "--label", "1")
    assert result.returncode == 2
    assert "bucket" in result.stderr


# -- the environment ------------------------------------------------------------------------------


def test_a_missing_bucket_is_exit_3(run_cli, moto_s3):
    result = run_cli(moto_s3, "annotate", "no-such-bucket-here", PREFIX, "--label", "1")
    assert result.returncode == 3
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_credentials_are_exit_3(run_cli, moto_s3, moto_bucket):
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    result = run_cli(moto_s3, "annotate", moto_bucket, PREFIX, "--label", "1", env=env)
    assert result.returncode == 3, result.stderr
    assert "credentials" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_endpoint_is_exit_3(run_cli, moto_s3, moto_bucket):
    from gos3matic.devserver import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    result = run_cli(
        moto_s3,
        "annotate",
        moto_bucket,
        PREFIX,
        "--label",
        "1",
        "--endpoint-url",
        dead,
        timeout=180,
    )
    assert result.returncode == 3, result.stderr
    assert "cannot reach" in result.stderr and dead in result.stderr
    assert "Traceback" not in result.stderr


def test_an_aws_profile_supplies_the_credentials(
    run_cli, moto_s3, moto_client, moto_bucket, tmp_path
):
    put(moto_client, moto_bucket, f"{PREFIX}a.bin")
    credentials = tmp_path / "credentials"
    credentials.write_text("[ci]\naws_access_key_id = from-profile\naws_secret_access_key = s\n")
    env = {
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        "AWS_PROFILE": "ci",
    }

    result = run_cli(moto_s3, "annotate", moto_bucket, PREFIX, "--label", "1", "-q", env=env)

    assert result.returncode == 0, result.stderr
    assert moto_client.head_object(Bucket=moto_bucket, Key=PREFIX)["Metadata"]["completed"]


def test_endpoint_from_flag_and_from_aws_endpoint_url_s3(
    run_cli, moto_s3, moto_client, moto_bucket
):
    put(moto_client, moto_bucket, f"{PREFIX}a.bin")
    by_flag = run_cli(
        moto_s3,
        "annotate",
        moto_bucket,
        PREFIX,
        "--label",
        "1",
        "--no-marker",
        "--endpoint-url",
        moto_s3.endpoint_url,
        env={"AWS_ENDPOINT_URL": ""},
    )
    assert by_flag.returncode == 0, by_flag.stderr
    by_env = run_cli(
        moto_s3,
        "annotate",
        moto_bucket,
        PREFIX,
        "--label",
        "2",
        "--no-marker",
        env={"AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_S3": moto_s3.endpoint_url},
    )
    assert by_env.returncode == 0, by_env.stderr
    head = moto_client.head_object(Bucket=moto_bucket, Key=f"{PREFIX}a.bin")
    assert head["Metadata"]["go_pipeline_label"] == "2"


# -- entry points and output ----------------------------------------------------------------------


def test_the_documented_command_line_works_from_a_checkout(moto_s3, moto_client, moto_bucket):
    put(moto_client, moto_bucket, f"{PREFIX}a.bin")
    command = [
        sys.executable,
        "annotate_s3.py",
        "annotate",
        moto_bucket,
        PREFIX.rstrip("/"),
        "--label",
        "42",
        "--username",
        "jo",
        "--traceback-url",
        "https://x.example/y",
        "--key",
        "team=core",
        "--key",
        "blessed",
        "--quiet",
    ]
    result = subprocess.run(
        command, cwd=REPO, env=moto_s3.env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    metadata = moto_client.head_object(Bucket=moto_bucket, Key=PREFIX)["Metadata"]
    assert metadata == {
        "go_pipeline_label": "42",
        "user": "jo",
        "completed": "completed",
        "traceback_url": "https://x.example/y",
        "team": "core",
        "blessed": "blessed",
    }
    assert "workers" not in result.stdout  # --quiet: no parameter table


def test_the_installed_command_works(moto_s3, moto_client, moto_bucket):
    put(moto_client, moto_bucket, f"{PREFIX}a.bin")
    installed = Path(sys.executable).parent / "gos3matic"
    result = subprocess.run(
        [str(installed), "annotate", moto_bucket, PREFIX, "--label", "5"],
        env=moto_s3.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (
        moto_client.head_object(Bucket=moto_bucket, Key=PREFIX)["Metadata"]["go_pipeline_label"]
        == "5"
    )


def test_the_parameter_table_shows_the_run_and_never_a_credential(
    run_cli, moto_s3, moto_client, moto_bucket
):
    put(moto_client, moto_bucket, f"{PREFIX}a.bin")
    secret_env = {
        "AWS_ACCESS_KEY_ID": "AKIAFAKEACCESSKEY123",
        "AWS_SECRET_ACCESS_KEY": "fake/Secret+Key",
        "AWS_SESSION_TOKEN": "FakeSessionTokenXYZ",
    }
    result = run_cli(
        moto_s3, "annotate", moto_bucket, PREFIX, *LABEL_ARGS, "--json", env=secret_env
    )
    assert result.returncode == 0, result.stderr
    for name in (
        "bucket",
        "prefix",
        "marker",
        "endpoint",
        "label",
        "user",
        "traceback url",
        "custom keys",
        "max in flight",
    ):
        assert f"  {name} " in result.stderr, name
    for secret in secret_env.values():
        assert secret not in result.stdout + result.stderr


def test_interrupt_stops_new_work_writes_no_complete_marker_and_a_rerun_finishes(
    moto_s3, moto_client, moto_bucket
):
    for index in range(400):
        put(moto_client, moto_bucket, f"{PREFIX}f{index:04}")
    command = [
        sys.executable,
        "-m",
        "gos3matic",
        "annotate",
        moto_bucket,
        PREFIX,
        "--label",
        "9",
        "--workers",
        "1",
        "--json",
    ]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=moto_s3.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until some objects are done, then interrupt
        head = moto_client.head_object(Bucket=moto_bucket, Key=f"{PREFIX}f0005")
        if head["Metadata"].get("go_pipeline_label") == "9":
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    report = json.loads(stdout)
    assert report["interrupted"] is True and report["marker_written"] is False
    assert 0 < report["annotated"] < 400
    # Pending, not missing: GoCD's poll skips the folder instead of failing on it.
    assert "completed" not in moto_client.head_object(Bucket=moto_bucket, Key=PREFIX)["Metadata"]

    again = subprocess.run(
        command, cwd=REPO, env=moto_s3.env(), capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    final = json.loads(again.stdout)
    assert final["skipped"] >= report["annotated"]
    assert final["annotated"] + final["skipped"] == 400


def test_a_path_the_poller_cannot_parse_runs_only_when_asked_and_warns_loud(
    run_cli, moto_s3, moto_client, moto_bucket
):
    put(moto_client, moto_bucket, "app/build/package/latest/a.bin")
    refused = run_cli(moto_s3, "annotate", moto_bucket, "app/build/package/latest", "--label", "1")
    assert refused.returncode == 2, refused.stderr
    loud = run_cli(
        moto_s3, "annotate", moto_bucket, "app/build/package/latest", "--label", "1",
        "--not-a-revision", "--marker",
    )  # fmt: skip
    assert loud.returncode == 0, loud.stderr
    assert "WARNING, GoCD will break" in loud.stderr

    put(moto_client, moto_bucket, "flat/42.1/a.bin")
    mild = run_cli(moto_s3, "annotate", moto_bucket, "flat/42.1", "--label", "1")
    assert mild.returncode == 0, mild.stderr
    assert "gos3matic: warning:" in mild.stderr and "will break" not in mild.stderr

    clean = run_cli(moto_s3, "annotate", moto_bucket, PREFIX, "--label", "1", "--allow-empty")
    assert "warning" not in clean.stderr.lower()
