"""Versioned buckets: every copy onto itself adds a version, and the run says how many it added.

The count is what S3 answered (the VersionId of each copy, multipart completion and marker),
checked against what an independent client lists.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from gos3matic.core.sizes import MiB

PREFIX = "app/build/package/42.1/"
LABEL = ["--label", "42", "--no-progress", "--json"]
SMALL_PARTS = ["--multipart-threshold", "5MiB", "--part-size", "5MiB"]
STORES = {"native": {}, "boto3": {"GOS3MATIC_NO_NATIVE": "1"}}


def versions(s3: Any, bucket: str) -> int:
    return len(s3.list_object_versions(Bucket=bucket, Prefix=PREFIX).get("Versions", []))


def seed(s3: Any, bucket: str) -> None:
    for index in range(4):
        s3.put_object(Bucket=bucket, Key=f"{PREFIX}f{index}.bin", Body=b"x" * (index + 1))
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}big.bin", Body=os.urandom(6 * MiB))


@pytest.mark.parametrize("store", STORES)
def test_the_summary_counts_the_versions_the_run_created_and_a_rerun_creates_none(
    run_cli, moto_s3, moto_client, moto_bucket, store
):
    s3, bucket = moto_client, moto_bucket
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    seed(s3, bucket)
    before = versions(s3, bucket)

    first = run_cli(moto_s3, "annotate", bucket, PREFIX, *LABEL, *SMALL_PARTS, env=STORES[store])

    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["annotated"], report["multipart"]) == (5, 1)
    # four copies, one multipart copy, the pending marker written first, the complete marker
    assert report["new_versions"] == 7
    assert versions(s3, bucket) - before == 7
    assert "new versions    7" in first.stderr

    s3.put_object(Bucket=bucket, Key=f"{PREFIX}late.bin", Body=b"late")  # one more upload
    before = versions(s3, bucket)
    again = run_cli(moto_s3, "annotate", bucket, PREFIX, *LABEL, *SMALL_PARTS, env=STORES[store])

    assert again.returncode == 0, again.stderr
    rerun = json.loads(again.stdout)
    assert (rerun["annotated"], rerun["skipped"]) == (1, 5)
    # The new object's copy and a new marker (its annotation is the same: left alone) -> 1.
    assert rerun["new_versions"] == versions(s3, bucket) - before == 1


def test_an_unversioned_bucket_gains_no_versions(run_cli, moto_s3, moto_client, moto_bucket):
    seed(moto_client, moto_bucket)

    result = run_cli(moto_s3, "annotate", moto_bucket, PREFIX, *LABEL, *SMALL_PARTS)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["new_versions"] == 0
    assert "new versions" not in result.stderr  # no note about versions that cannot exist
