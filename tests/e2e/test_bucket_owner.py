"""--expected-bucket-owner reaches S3 on every request the tool makes, through either client.

Neither moto nor SeaweedFS checks the header, so the fault proxy records every request and, for
the refusal, answers 403 to a wrong owner as S3 does.
"""

from __future__ import annotations

import os

import pytest
from support.faultproxy import Fault, FaultProxy, Request, Rule, only

PREFIX = "app/build/package/42.1/"
PACKAGE = "app/build/package"
OWNER = "123456789012"  # moto's account
OWNER_HEADER = "x-amz-expected-bucket-owner"
SOURCE_OWNER_HEADER = "x-amz-source-expected-bucket-owner"
MiB = 1024 * 1024
STORES = {"native": {}, "boto3": {"GOS3MATIC_NO_NATIVE": "1"}}
EVERY_PATH = {
    "HeadBucket",
    "GetBucketOwnershipControls",
    "ListObjectsV2",
    "HeadObject",
    "GetObjectAcl",
    "CopyObject",
    "GetObjectTagging",
    "CreateMultipartUpload",
    "UploadPartCopy",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
    "PutObject",
}


def without_owner(requests: list[Request]) -> list[str]:
    return [f"{r.operation} {r.key}" for r in requests if r.headers.get(OWNER_HEADER) != OWNER] + [
        f"{r.operation} {r.key} (source)"
        for r in requests
        if "x-amz-copy-source" in r.headers and r.headers.get(SOURCE_OWNER_HEADER) != OWNER
    ]


@pytest.mark.parametrize("store", STORES)
def test_every_request_of_annotate_carries_the_expected_owner(
    run_cli, moto_s3, moto_client, moto_bucket, store
):
    s3, bucket = moto_client, moto_bucket
    for index in range(3):
        s3.put_object(Bucket=bucket, Key=f"{PREFIX}f{index}", Body=b"x", ACL="public-read")
    for name in ("big", "refused"):
        s3.put_object(Bucket=bucket, Key=f"{PREFIX}{name}.bin", Body=os.urandom(6 * MiB))
    args = ["annotate", bucket, PREFIX, "--label", "42", "--no-progress",
            "--multipart-threshold", "5MiB", "--part-size", "5MiB",
            "--expected-bucket-owner", OWNER]  # fmt: skip
    # One part refused on the first run: its upload is aborted, so every path is taken.
    refuse = Rule(
        Fault.ACCESS_DENIED, operations=only("UploadPartCopy"), key=f"{PREFIX}refused.bin", limit=1
    )

    with FaultProxy(moto_s3.endpoint_url, [refuse], record=True).running() as proxy:
        first = run_cli(moto_s3, *args, "--endpoint-url", proxy.url, env=STORES[store])
        second = run_cli(moto_s3, *args, "--endpoint-url", proxy.url, env=STORES[store])

    assert first.returncode == 1, first.stderr
    assert second.returncode == 0, second.stderr
    assert {r.operation for r in proxy.requests} >= EVERY_PATH
    assert without_owner(proxy.requests) == []
    agents = {r.headers.get("user-agent", "").split("/")[0] for r in proxy.requests}
    assert ("gos3matic" in agents) == (store == "native")


def test_every_request_of_status_backfill_and_mark_carries_the_expected_owner(
    run_cli, moto_s3, moto_client, moto_bucket
):
    s3, bucket = moto_client, moto_bucket
    for revision in ("41.1", "42.1"):
        s3.put_object(Bucket=bucket, Key=f"{PACKAGE}/{revision}/a.bin", Body=b"x")
    owner = ["--expected-bucket-owner", OWNER]

    with FaultProxy(moto_s3.endpoint_url, record=True).running() as proxy:
        via = ["--endpoint-url", proxy.url]
        backfill = run_cli(moto_s3, "backfill", bucket, PACKAGE, "--no-progress", *owner, *via)
        mark = run_cli(moto_s3, "mark", bucket, f"{PACKAGE}/42.1", "--label", "42", *owner, *via)
        status = run_cli(moto_s3, "status", bucket, PACKAGE, *owner, *via)

    for result in (backfill, mark, status):
        assert result.returncode == 0, result.stderr
    assert {"ListObjectsV2", "HeadObject", "CopyObject", "PutObject"} <= {
        r.operation for r in proxy.requests
    }
    assert without_owner(proxy.requests) == []


def test_a_bucket_of_another_account_is_refused_before_any_write(
    run_cli, moto_s3, moto_client, moto_bucket
):
    s3, bucket = moto_client, moto_bucket
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}a.bin", Body=b"x")
    before = s3.head_object(Bucket=bucket, Key=f"{PREFIX}a.bin")

    def not_the_owner(request: Request) -> bool:
        return request.headers.get(OWNER_HEADER, OWNER) != OWNER

    rules = [Rule(Fault.ACCESS_DENIED, when=not_the_owner)]  # what S3 does; moto does not
    with FaultProxy(moto_s3.endpoint_url, rules).running() as proxy:
        result = run_cli(
            moto_s3, "annotate", bucket, PREFIX, "--label", "42",
            "--expected-bucket-owner", "999999999999", "--endpoint-url", proxy.url,
        )  # fmt: skip

    assert result.returncode == 3, result.stderr
    assert "belongs to another account" in result.stderr
    # start-up reads go out together (HeadBucket, ownership, the probe), and the refusal's
    # listing asks S3 why; no write
    assert proxy.seen["HeadBucket"] == 1
    assert set(proxy.seen) <= {
        "HeadBucket", "GetBucketOwnershipControls", "HeadObject", "ListObjectsV2"
    }  # fmt: skip
    after = s3.head_object(Bucket=bucket, Key=f"{PREFIX}a.bin")
    assert (after["ETag"], after["Metadata"]) == (before["ETag"], before["Metadata"])
