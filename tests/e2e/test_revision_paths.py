"""Every PATH that is not one revision folder is refused before any write, on moto and SeaweedFS:
what an independent client lists and reads back is the same before and after."""

from __future__ import annotations

import pytest
from support.readback import snapshot

PACKAGE = "myapp/build/package/"
LABEL = ("--label", "1")


def upload(s3, bucket: str, *keys: str) -> None:
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")


def complete(s3, bucket: str, folder: str) -> None:
    s3.put_object(
        Bucket=bucket,
        Key=folder,
        Body=b"",
        Metadata={"completed": "completed", "go_pipeline_label": "7", "user": "alice"},
    )


@pytest.fixture
def package(s3, bucket):
    """Two revisions of a package, one complete: what a prefix above it would relabel."""
    upload(s3, bucket, f"{PACKAGE}41.1/a.bin", f"{PACKAGE}42.1/a.bin", f"{PACKAGE}42.1/lib/b.bin")
    complete(s3, bucket, f"{PACKAGE}41.1/")
    return snapshot(s3, bucket)


@pytest.mark.parametrize(
    "argv, instead",
    [
        (["annotate", "myapp", *LABEL], "'gos3matic annotate {bucket} myapp/.../<N>.<M>'"),
        (
            ["annotate", "myapp/build", *LABEL],
            "'gos3matic annotate {bucket} myapp/build/.../<N>.<M>'",
        ),
        (["annotate", "myapp/build/package", *LABEL], "'gos3matic backfill {bucket} myapp/build/"),
        (["annotate", "myapp/build/package", *LABEL, "--dry-run"], "gos3matic backfill"),
        (["annotate", f"{PACKAGE}latest", *LABEL], f"'gos3matic annotate {{bucket}} {PACKAGE}<N>"),
        (["annotate", f"{PACKAGE}42", *LABEL], "name the revision folder"),
        (["annotate", f"{PACKAGE}42.1.3", *LABEL], "name the revision folder"),
        (["mark", "myapp/build/package", *LABEL, "--no-check"], "'gos3matic backfill {bucket}"),
        (["begin", f"{PACKAGE}latest", *LABEL], f"'gos3matic begin {{bucket}} {PACKAGE}<N>.<M>'"),
    ],
)
def test_a_last_segment_not_n_m_is_refused_with_nothing_written(
    run_cli, s3server, s3, bucket, package, argv, instead
):
    command, path, *rest = argv
    upload(s3, bucket, f"{PACKAGE}latest/c.bin", f"{PACKAGE}42/c.bin", f"{PACKAGE}42.1.3/c.bin")
    before = snapshot(s3, bucket)

    result = run_cli(s3server, command, bucket, path, *rest)

    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines  # one clear line
    assert "is not a revision <N>.<M>" in lines[0]
    assert instead.format(bucket=bucket) in lines[0]
    assert "--not-a-revision" in lines[0]
    assert snapshot(s3, bucket) == before


def test_a_prefix_above_revisions_is_refused_even_when_not_a_revision(
    run_cli, s3server, s3, bucket, package
):
    for path in ("myapp", "myapp/build", "myapp/build/package"):
        result = run_cli(s3server, "annotate", bucket, path, *LABEL, "--not-a-revision")

        assert result.returncode == 2, result.stderr
        assert f"refusing {path}/: it holds revision folders" in result.stderr
        assert f"gos3matic annotate {bucket} {PACKAGE}41.1'" in result.stderr
        assert f"gos3matic backfill {bucket} myapp/build/package'" in result.stderr
    assert snapshot(s3, bucket) == package


def test_a_revision_holding_a_complete_revision_is_refused(run_cli, s3server, s3, bucket):
    """A GoCD folder nested at depth (its marker there) counts; a version-named folder of a
    revision's own content (no marker: lib/3.6/) does not."""
    upload(s3, bucket, "outer/a/b/9.1/x/y/z/3.1/a.bin", "other/a/b/9.1/lib/3.6/a.jar")
    complete(s3, bucket, "outer/a/b/9.1/x/y/z/3.1/")
    before = snapshot(s3, bucket)

    refused = run_cli(s3server, "annotate", bucket, "outer/a/b/9.1", *LABEL)
    assert refused.returncode == 2, refused.stderr
    assert "outer/a/b/9.1/x/y/z/3.1/ among them" in refused.stderr
    assert snapshot(s3, bucket) == before

    taken = run_cli(s3server, "annotate", bucket, "other/a/b/9.1", *LABEL, "--no-progress")
    assert taken.returncode in (0, 4), taken.stderr  # 4: SeaweedFS drops the marker's metadata
    assert s3.head_object(Bucket=bucket, Key="other/a/b/9.1/lib/3.6/a.jar")["Metadata"] == {
        "go_pipeline_label": "1"
    }


def test_not_a_revision_annotates_the_objects_and_writes_a_marker_only_when_asked(
    run_cli, s3server, s3, bucket
):
    upload(s3, bucket, "data/exports/a.csv", "data/exports/b.csv")

    objects_only = run_cli(
        s3server, "annotate", bucket, "data/exports", *LABEL, "--not-a-revision", "--no-progress"
    )
    assert objects_only.returncode == 0, objects_only.stderr
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(keys) == ["data/exports/a.csv", "data/exports/b.csv"]  # no marker, no pending
    for key in keys:
        assert s3.head_object(Bucket=bucket, Key=key)["Metadata"] == {"go_pipeline_label": "1"}

    with_marker = run_cli(
        s3server,
        "annotate",
        bucket,
        "data/exports",
        *LABEL,
        "--not-a-revision",
        "--marker",
        "--no-progress",
    )
    assert with_marker.returncode in (0, 4), with_marker.stderr
    assert "data/exports/" in [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]


def test_marker_without_not_a_revision_is_refused(run_cli, moto_s3, moto_bucket):
    result = run_cli(moto_s3, "annotate", moto_bucket, f"{PACKAGE}42.1", *LABEL, "--marker")
    assert result.returncode == 2
    assert "--marker is only for --not-a-revision" in result.stderr


def test_backfill_refuses_a_revision_as_its_package(run_cli, moto_s3, moto_client, moto_bucket):
    upload(moto_client, moto_bucket, "app/build/42.1/a.bin")
    before = snapshot(moto_client, moto_bucket)
    result = run_cli(moto_s3, "backfill", moto_bucket, "app/build/42.1")
    assert result.returncode == 2, result.stderr
    assert "'42.1' is a revision folder, not a job" in result.stderr
    assert "'gos3matic annotate BUCKET app/build/42.1'" in result.stderr
    assert snapshot(moto_client, moto_bucket) == before
