"""Objects over the multipart threshold: every byte and every property survive a copy in parts.

The real CLI against real local servers, read back by an independent client. Failures are injected
by a loopback proxy between the CLI and the server that refuses or holds chosen UploadPartCopy
requests, the only way to make a real server fail one part of a copy on cue.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import pytest
from support.faultproxy import Fault, FaultProxy, Request, Rule, only

from gos3matic.core.metadata import copy_params
from gos3matic.core.sizes import GiB, MiB, part_plan
from gos3matic.store.boto import make_client
from gos3matic.store.multipart import MultipartCopier
from gos3matic.store.protocols import Connection

REPO = Path(__file__).resolve().parents[2]
PREFIX = "app/build/package/7.1/"
LABEL = ["--label", "7", "--no-progress"]
SMALL = ["--multipart-threshold", "8MiB", "--part-size", "5MiB"]
THRESHOLD = 8 * MiB
PART = 5 * MiB
EXPIRES = dt.datetime(2031, 5, 17, 10, 0, tzinfo=dt.timezone.utc)
PROPERTIES = {
    "ContentType": "application/x-tar",
    "CacheControl": "max-age=31536000, immutable",
    "ContentDisposition": 'attachment; filename="big.tar"',
    "ContentEncoding": "identity",
    "ContentLanguage": "en-GB",
    "Expires": EXPIRES,
}
TAGS = [("team", "core"), ("note", "a b+c=d/e:f@g")]


def md5_of(s3: Any, bucket: str, key: str) -> str:
    digest = hashlib.md5()
    for chunk in s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(8 * MiB):
        digest.update(chunk)
    return digest.hexdigest()


def put_large(s3: Any, bucket: str, key: str, size: int, **extra: Any) -> str:
    body = os.urandom(size)
    tagging = urlencode(TAGS, quote_via=quote)
    s3.put_object(Bucket=bucket, Key=key, Body=body, Tagging=tagging, **extra)
    return hashlib.md5(body).hexdigest()


def uploads_left(s3: Any, bucket: str) -> list[Any]:
    return list(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def marker_present(s3: Any, bucket: str) -> bool:
    """A complete marker, the one GoCD triggers on. A failed, interrupted or sharded run leaves a
    pending one (no `completed`) instead, so that GoCD's poll of the package keeps working."""
    try:
        return "completed" in s3.head_object(Bucket=bucket, Key=PREFIX)["Metadata"]
    except s3.exceptions.ClientError:
        return False


def parts_in(etag: str) -> int:
    """1 for a plain MD5 ETag, N for the '<md5-of-md5s>-N' of an object made of N parts."""
    return int(etag.strip('"').rpartition("-")[2]) if "-" in etag else 1


# -- every byte, every property -----------------------------------------------------------------


def test_below_at_and_above_the_threshold_every_byte_and_property_survive(
    run_cli, s3server, s3, bucket
):
    sizes = {
        "below.bin": THRESHOLD - 1,
        "at.bin": THRESHOLD,
        "above.bin": THRESHOLD + 1,  # a 5 MiB part and a 3 MiB + 1 byte one
        "three-parts.bin": 2 * PART + 123_457,
    }
    extra: dict[str, Any] = dict(PROPERTIES, Metadata={"built-by": "jenkins", "commit": "0123abcd"})
    if s3server.kind == "moto":  # SeaweedFS keeps neither of these
        extra.update(StorageClass="STANDARD_IA", WebsiteRedirectLocation="/releases/latest")
    digests = {
        name: put_large(s3, bucket, PREFIX + name, size, **extra) for name, size in sizes.items()
    }
    before = {name: s3.head_object(Bucket=bucket, Key=PREFIX + name) for name in sizes}

    result = run_cli(s3server, "annotate", bucket, PREFIX, *LABEL, *SMALL, "--no-marker", "--json")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["annotated"], report["multipart"], report["failed"]) == (4, 2, 0)
    assert report["bytes_copied"] == sum(sizes.values())
    assert "multipart       2" in result.stderr
    for name, size in sizes.items():
        key = PREFIX + name
        head = s3.head_object(Bucket=bucket, Key=key)
        assert md5_of(s3, bucket, key) == digests[name], name
        assert head["ContentLength"] == size
        assert head["Metadata"] == {
            "built-by": "jenkins",
            "commit": "0123abcd",
            "go_pipeline_label": "7",
        }, name
        for header in (*PROPERTIES, "StorageClass", "WebsiteRedirectLocation"):
            assert head.get(header) == before[name].get(header), (name, header)
        tags = s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
        assert sorted((t["Key"], t["Value"]) for t in tags) == sorted(TAGS), name
    etags = {name: s3.head_object(Bucket=bucket, Key=PREFIX + name)["ETag"] for name in sizes}
    assert etags["below.bin"] == before["below.bin"]["ETag"]  # one CopyObject: MD5 unchanged
    assert etags["at.bin"] == before["at.bin"]["ETag"]  # "larger than" the threshold, not equal
    assert parts_in(etags["above.bin"]) == 2
    assert parts_in(etags["three-parts.bin"]) == 3
    assert uploads_left(s3, bucket) == []

    again = run_cli(s3server, "annotate", bucket, PREFIX, *LABEL, *SMALL, "--no-marker", "--json")
    assert again.returncode == 0, again.stderr
    assert (json.loads(again.stdout)["skipped"], json.loads(again.stdout)["multipart"]) == (4, 0)


def test_an_object_copied_in_parts_can_be_annotated_again(run_cli, s3server, s3, bucket):
    """Its ACL is read again: moto has none for an upload made without an ACL header, and
    SeaweedFS leaves the grantee's ID out."""
    key = PREFIX + "relabelled.bin"
    digest = put_large(s3, bucket, key, THRESHOLD + PART)
    for label in ("7", "8"):
        result = run_cli(s3server, "annotate", bucket, PREFIX, "--label", label, *SMALL,
                         "--no-marker", "--no-progress")  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert s3.head_object(Bucket=bucket, Key=key)["Metadata"] == {"go_pipeline_label": label}
    assert md5_of(s3, bucket, key) == digest


def test_encryption_with_its_kms_key_storage_class_and_grants_survive(
    run_cli, moto_s3, moto_client, moto_bucket
):
    key = PREFIX + "secret.bin"
    kms_key = "arn:aws:kms:us-east-1:123456789012:key/0b5e2a9c-4d7e-4c6b-9a41-1f3e2d5c6b7a"
    digest = put_large(
        moto_client,
        moto_bucket,
        key,
        THRESHOLD + PART,
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=kms_key,
        StorageClass="STANDARD_IA",
        GrantRead='uri="http://acs.amazonaws.com/groups/global/AllUsers"',
    )
    result = run_cli(moto_s3, "annotate", moto_bucket, PREFIX, *LABEL, *SMALL)

    assert result.returncode == 0, result.stderr
    head = moto_client.head_object(Bucket=moto_bucket, Key=key)
    assert parts_in(head["ETag"]) == 3
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", kms_key)
    assert head["StorageClass"] == "STANDARD_IA"
    grants = moto_client.get_object_acl(Bucket=moto_bucket, Key=key)["Grants"]
    assert any(
        g["Permission"] == "READ" and g["Grantee"].get("URI", "").endswith("/AllUsers")
        for g in grants
    )
    assert md5_of(moto_client, moto_bucket, key) == digest
    assert marker_present(moto_client, moto_bucket)


# -- what s3transfer carries, request by request ------------------------------------------------


@pytest.fixture
def tool_client(moto_s3, monkeypatch):
    """The client gos3matic itself builds, pointed at moto."""
    for name, value in moto_s3.env().items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    return make_client(Connection(moto_s3.endpoint_url, "us-east-1"), max_connections=20)


def record_requests(client: Any) -> list[tuple[str, dict[str, Any]]]:
    seen: list[tuple[str, dict[str, Any]]] = []
    lock = threading.Lock()

    def record(model: Any, params: Any, **kwargs: Any) -> None:
        with lock:
            seen.append((model.name, dict(params)))

    client.meta.events.register("provide-client-params.s3.*", record)
    return seen


def test_every_property_reaches_create_and_the_guard_reaches_every_part(
    tool_client, moto_client, moto_bucket
):
    key = PREFIX + "recorded.bin"
    size = 4 * PART + 1
    put_large(
        moto_client,
        moto_bucket,
        key,
        size,
        **PROPERTIES,
        WebsiteRedirectLocation="/r",
        StorageClass="STANDARD_IA",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId="arn:aws:kms:us-east-1:123456789012:key/k",
        BucketKeyEnabled=True,
        Metadata={"built-by": "jenkins"},
    )
    head = moto_client.head_object(Bucket=moto_bucket, Key=key)
    grants = {"GrantRead": 'uri="http://acs.amazonaws.com/groups/global/AllUsers"'}
    params = {**copy_params(moto_bucket, key, head, {"go_pipeline_label": "7"}), **grants}
    requests = record_requests(tool_client)

    with MultipartCopier(tool_client, threading.Event(), threshold=THRESHOLD, part_size=PART) as c:
        plan = c.copy(params, size)

    names = [name for name, _ in requests]
    assert names[:2] == ["GetObjectTagging", "CreateMultipartUpload"]
    assert names.count("UploadPartCopy") == plan.parts == 5
    assert names[-1] == "CompleteMultipartUpload"
    assert not {"HeadObject", "CopyObject", "PutObjectTagging"} & set(names)  # no second HEAD
    create = next(p for name, p in requests if name == "CreateMultipartUpload")
    properties = {
        name: value
        for name, value in params.items()
        if not name.startswith(("CopySource", "MetadataDirective"))
    }
    assert {name: create.get(name) for name in properties} == properties
    assert set(create) - set(properties) == {"Tagging"}
    assert sorted(parse_qsl(create["Tagging"])) == sorted(TAGS)
    parts = [p for name, p in requests if name == "UploadPartCopy"]
    assert all(p["CopySourceIfMatch"] == head["ETag"] for p in parts)
    ranges = sorted(
        tuple(int(n) for n in p["CopySourceRange"].removeprefix("bytes=").split("-")) for p in parts
    )
    assert ranges[0][0] == 0 and ranges[-1][1] == size - 1
    assert all(b[0] == a[1] + 1 for a, b in pairwise(ranges))


def test_object_lock_retention_and_legal_hold_reach_create(tool_client, moto_client):
    """moto ignores Object Lock on multipart uploads (AWS applies it): checked on the request."""
    bucket = "locked-" + os.urandom(4).hex()
    moto_client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    until = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(days=30)
    key = PREFIX + "locked.bin"
    lock = {
        "ObjectLockMode": "GOVERNANCE",
        "ObjectLockRetainUntilDate": until,
        "ObjectLockLegalHoldStatus": "ON",
    }
    digest = put_large(moto_client, bucket, key, THRESHOLD + 1, **lock)
    head = moto_client.head_object(Bucket=bucket, Key=key)
    requests = record_requests(tool_client)

    with MultipartCopier(tool_client, threading.Event(), threshold=THRESHOLD, part_size=PART) as c:
        c.copy(copy_params(bucket, key, head, {"go_pipeline_label": "7"}), THRESHOLD + 1)

    create = next(p for name, p in requests if name == "CreateMultipartUpload")
    assert {name: create.get(name) for name in lock} == lock
    assert md5_of(moto_client, bucket, key) == digest


def test_s3transfer_alone_would_lose_the_tags_of_a_copy_onto_itself(tool_client, moto_bucket):
    """Why gos3matic adds Tagging to CreateMultipartUpload itself (s3transfer 0.19): with
    TaggingDirective=COPY it reads the tags after completing, from the new untagged object."""
    from s3transfer.manager import TransferConfig, TransferManager

    key = PREFIX + "plain-s3transfer.bin"
    put_large(tool_client, moto_bucket, key, THRESHOLD + 1)
    manager = TransferManager(tool_client, TransferConfig(multipart_threshold=THRESHOLD))
    source = {"Bucket": moto_bucket, "Key": key}
    extra = {"MetadataDirective": "REPLACE", "Metadata": {"a": "1"}, "TaggingDirective": "COPY"}
    manager.copy(source, moto_bucket, key, extra_args=extra).result()
    with pytest.raises(ValueError, match="BucketKeyEnabled"):
        manager.copy(source, moto_bucket, key, extra_args={"BucketKeyEnabled": True})
    manager.shutdown()
    tags = tool_client.get_object_tagging(Bucket=moto_bucket, Key=key)["TagSet"]
    if tags:
        pytest.fail("s3transfer now keeps tags on a copy onto itself: multipart.py can simplify")


# -- failures ------------------------------------------------------------------------------------


def part(number: int) -> Callable[[Request], bool]:
    """Matches the UploadPartCopy of one part number."""
    return lambda request: request.query.get("partNumber") == [str(number)]


def test_a_part_refused_mid_copy_aborts_the_upload_and_withholds_the_marker(
    run_cli, s3server, s3, bucket
):
    key = PREFIX + "big.bin"
    digest = put_large(s3, bucket, key, 6 * PART + 17, Metadata={"built-by": "jenkins"})
    s3.put_object(Bucket=bucket, Key=PREFIX + "small.txt", Body=b"small")
    before = s3.head_object(Bucket=bucket, Key=key)

    refuse_third = Rule(Fault.ACCESS_DENIED, operations=only("UploadPartCopy"), when=part(3))
    with FaultProxy(s3server.endpoint_url, [refuse_third]).running() as proxy:
        result = run_cli(
            s3server, "annotate", bucket, PREFIX, *LABEL, *SMALL, "--json",
            "--endpoint-url", proxy.url,
        )  # fmt: skip

    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["failed"] == 1 and report["multipart"] == 0
    assert report["failures"][0]["key"] == key
    assert report["failures"][0]["error"].startswith("AccessDenied")
    assert report["marker_written"] is False and not marker_present(s3, bucket)
    assert uploads_left(s3, bucket) == []
    after = s3.head_object(Bucket=bucket, Key=key)
    assert (after["ETag"], after["Metadata"]) == (before["ETag"], {"built-by": "jenkins"})
    assert md5_of(s3, bucket, key) == digest
    assert proxy.seen["UploadPartCopy"] >= 3


def test_an_object_overwritten_during_its_copy_is_read_and_merged_again(
    run_cli, seaweed_s3, seaweed_client, seaweed_bucket
):
    """SeaweedFS enforces CopySourceIfMatch (moto ignores it): a part finds the object changed,
    the upload is aborted, and the new content is annotated with its own metadata."""
    s3, bucket, key = seaweed_client, seaweed_bucket, PREFIX + "moving.bin"
    put_large(s3, bucket, key, 3 * PART, Metadata={"version": "1"})
    replaced: dict[str, str] = {}

    def overwrite_once(_: Request) -> None:
        if not replaced:
            replaced["md5"] = put_large(s3, bucket, key, 3 * PART + 5, Metadata={"version": "2"})

    before_part_2 = Rule(
        Fault.CALL, operations=only("UploadPartCopy"), when=part(2), action=overwrite_once
    )
    with FaultProxy(seaweed_s3.endpoint_url, [before_part_2]).running() as proxy:
        result = run_cli(
            seaweed_s3, "annotate", bucket, PREFIX, *LABEL, *SMALL, "--json", "--no-marker",
            "--endpoint-url", proxy.url,
        )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert proxy.seen["CreateMultipartUpload"] == 2  # the first upload was abandoned on the 412
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["Metadata"] == {"version": "2", "go_pipeline_label": "7"}
    assert head["ContentLength"] == 3 * PART + 5
    assert md5_of(s3, bucket, key) == replaced["md5"]
    assert uploads_left(s3, bucket) == []


def test_an_interrupt_during_a_multipart_copy_aborts_it(s3server, s3, bucket):
    key = PREFIX + "big.bin"
    digest = put_large(s3, bucket, key, 4 * PART)
    first_part, release = threading.Event(), threading.Event()

    def hold(_: Request) -> None:
        first_part.set()
        release.wait(30)

    holding = Rule(Fault.CALL, operations=only("UploadPartCopy"), action=hold)
    with FaultProxy(s3server.endpoint_url, [holding]).running() as proxy:
        command = [sys.executable, "-m", "gos3matic", "annotate", bucket, PREFIX, *LABEL,
                   *SMALL, "--json", "--endpoint-url", proxy.url]  # fmt: skip
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=s3server.env(),  # complete: merged over os.environ it would bring AWS_PROFILE back
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert first_part.wait(60), "no UploadPartCopy arrived"
        process.send_signal(signal.SIGINT)
        threading.Timer(1.0, release.set).start()  # the parts in flight then finish
        stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    report = json.loads(stdout)
    assert report["interrupted"] is True and report["marker_written"] is False
    assert report["failed"] == 1 and "interrupted" in report["failures"][0]["error"]
    assert uploads_left(s3, bucket) == []
    assert "go_pipeline_label" not in s3.head_object(Bucket=bucket, Key=key)["Metadata"]
    assert md5_of(s3, bucket, key) == digest
    assert not marker_present(s3, bucket)


# -- the real thing ------------------------------------------------------------------------------


@pytest.mark.slow
def test_an_object_over_5_gib_is_copied_in_parts_by_default(
    run_cli, seaweed_s3, seaweed_client, seaweed_bucket
):
    """5 GiB + 1 MiB, built on the server from a 64 MiB random block, annotated with defaults."""
    s3, bucket, key = seaweed_client, seaweed_bucket, PREFIX + "huge.bin"
    block = os.urandom(64 * MiB)
    s3.put_object(Bucket=bucket, Key="block", Body=block)
    size = 5 * GiB + MiB
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="application/x-huge")
    parts, expected = [], hashlib.md5()
    for number, start in enumerate(range(0, size, len(block)), start=1):
        end = min(start + len(block), size) - 1
        answer = s3.upload_part_copy(
            Bucket=bucket,
            Key=key,
            UploadId=upload["UploadId"],
            PartNumber=number,
            CopySource={"Bucket": bucket, "Key": "block"},
            CopySourceRange=f"bytes=0-{end - start}",
        )
        parts.append({"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]})
        expected.update(block[: end - start + 1])
    s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    s3.delete_object(Bucket=bucket, Key="block")

    result = run_cli(
        seaweed_s3, "annotate", bucket, PREFIX, *LABEL, "--json", "--no-marker", timeout=3600
    )

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["multipart"], report["bytes_copied"]) == (1, size)
    head = s3.head_object(Bucket=bucket, Key=key)
    assert parts_in(head["ETag"]) == part_plan(size).parts == 321  # 16 MiB parts by default
    assert head["ContentType"] == "application/x-huge"
    assert head["Metadata"] == {"go_pipeline_label": "7"}
    assert md5_of(s3, bucket, key) == expected.hexdigest()
    assert uploads_left(s3, bucket) == []
