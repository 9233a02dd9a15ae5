"""The bucket as a user types it: a name no S3 accepts, and an s3:// URL in either case."""

from __future__ import annotations

import pytest
from support.readback import snapshot

PREFIX = "app/build/package/42.1/"


@pytest.mark.parametrize("name", ["ab", "bucket-", ".bucket", "has space"])
def test_a_bucket_name_no_s3_accepts_is_one_line_and_exit_2(
    run_cli, moto_s3, moto_client, moto_bucket, name
):
    moto_client.put_object(Bucket=moto_bucket, Key=f"{PREFIX}a.bin", Body=b"x")
    before = snapshot(moto_client, moto_bucket)

    result = run_cli(moto_s3, "annotate", name, PREFIX, "--label", "42")

    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "invalid bucket name" in lines[0], result.stderr
    assert snapshot(moto_client, moto_bucket) == before


@pytest.mark.parametrize("scheme", ["s3://", "S3://"])
def test_an_s3_url_annotates_its_revision_whatever_the_case_of_its_scheme(
    run_cli, moto_s3, moto_client, moto_bucket, scheme
):
    moto_client.put_object(Bucket=moto_bucket, Key=f"{PREFIX}a.bin", Body=b"x")

    result = run_cli(moto_s3, "annotate", f"{scheme}{moto_bucket}/{PREFIX}", "--label", "42")

    assert result.returncode == 0, result.stderr
    head = moto_client.head_object(Bucket=moto_bucket, Key=f"{PREFIX}a.bin")
    assert head["Metadata"]["go_pipeline_label"] == "42"
    marker = moto_client.head_object(Bucket=moto_bucket, Key=PREFIX)
    assert marker["Metadata"]["completed"] == "completed"
