"""Faults between the CLI and S3: a transient one costs a retry and nothing else, a permanent one
fails its object alone and withholds the marker, a concurrent writer is caught by the ETag guard.

The faults come from tests/support/faultproxy.py, a loopback proxy between the CLI and a real local
server; what the run did is read back by an independent client.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from typing import Any

import pytest
from support.blocking import Blocking
from support.faultproxy import Fault, FaultProxy, Request, Rule, Transient, only
from support.inprocess import without_retry_waits

from gos3matic.core.metadata import copy_params
from gos3matic.core.sizes import MiB
from gos3matic.errors import NetworkError, S3Error
from gos3matic.store import retry
from gos3matic.store.boto import Boto3Bucket, ThreadedObjectStore, make_client
from gos3matic.store.flow import FlowControl
from gos3matic.store.multipart import MultipartCopier
from gos3matic.store.native import NativeObjectStore, open_object_store
from gos3matic.store.protocols import Connection

PREFIX = "app/build/package/42.1/"
LABEL = ["--label", "42", "--username", "jo@example.com", "--no-progress"]
ANNOTATION = {"go_pipeline_label": "42", "user": "jo@example.com"}
SMALL_PARTS = ["--multipart-threshold", "5MiB", "--part-size", "5MiB"]
STORES = {"native": {}, "boto3": {"GOS3MATIC_NO_NATIVE": "1"}}
NATIVE_AGENT = "gos3matic/"  # the native store's User-Agent; boto3 sends its own


def seed_objects(s3: Any, bucket: str, count: int) -> dict[str, str]:
    """`count` small objects with metadata of their own; their keys and content digests."""
    digests = {}
    for index in range(count):
        key = f"{PREFIX}dist/file-{index:03}.bin"
        body = os.urandom(200 + index)
        s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"built-by": "jenkins"})
        digests[key] = hashlib.md5(body).hexdigest()
    return digests


def digest_of(s3: Any, bucket: str, key: str) -> str:
    return hashlib.md5(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest()


def keys_under(s3: Any, bucket: str) -> list[str]:
    return [e["Key"] for e in s3.list_objects_v2(Bucket=bucket, Prefix=PREFIX).get("Contents", [])]


def through(proxy: FaultProxy, *args: str) -> list[str]:
    return [*args, "--endpoint-url", proxy.url]


# -- the proxy itself -----------------------------------------------------------------------------


def test_the_proxy_decides_alike_for_a_seed_whatever_the_order_of_requests():
    def request(operation: str, key: str) -> Request:
        return Request(operation, "PUT", "any-bucket", key, {}, {})

    def decisions(seed: int, order: list[Request]) -> dict[tuple[str, str, int], Any]:
        proxy = FaultProxy("http://127.0.0.1:9", Transient(rate=0.3).rules(), seed=seed)
        proxy.server.server_close()  # never served: only its decisions are looked at
        made: dict[tuple[str, str, int], Any] = {}
        for each in order:
            attempt = 1 + sum(1 for op, key, _ in made if (op, key) == (each.operation, each.key))
            answer, _ = proxy.decide(each)
            made[each.operation, each.key, attempt] = answer and answer.fault
        return made

    requests = [request(op, f"k{n}") for op in ("HeadObject", "CopyObject") for n in range(50)]
    twice = requests + requests  # every request retried once
    first = decisions(4, twice)

    assert decisions(4, list(reversed(twice))) == first
    assert decisions(5, twice) != first
    assert 0.2 < sum(fault is not None for fault in first.values()) / len(first) < 0.4


# -- one attempt is one request: retry.py alone multiplies them ----------------------------------


@pytest.fixture
def no_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The policy's attempts without its waits: what is counted here is requests, not time."""
    without_retry_waits(monkeypatch)


def stores_through(proxy: FaultProxy, bucket: str) -> dict[str, Any]:
    connection = Connection(endpoint_url=proxy.url)
    boto3_bucket = Boto3Bucket(make_client(connection, 4), bucket)
    native = open_object_store(boto3_bucket, connection, PREFIX, 4)
    assert isinstance(native, NativeObjectStore), "fell back to boto3 on a local server"
    threaded = ThreadedObjectStore(boto3_bucket, FlowControl(4), threads=4)
    return {"native": Blocking(native), "boto3": boto3_bucket, "boto3 threads": Blocking(threaded)}


FAILING = [Fault.SLOW_DOWN, Fault.INTERNAL_ERROR, Fault.DROP_REPLY, Fault.DROP_REQUEST]


@pytest.mark.usefixtures("no_waits")
@pytest.mark.parametrize("fault", FAILING, ids=[f.name for f in FAILING])
def test_a_request_that_keeps_failing_is_sent_exactly_as_often_as_the_policy_says(
    moto_s3, moto_client, moto_bucket, monkeypatch, fault
):
    """botocore's own retries are off and the native store has none: retry.py alone multiplies."""
    for name, value in moto_s3.env().items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    key = f"{PREFIX}a.bin"
    moto_client.put_object(Bucket=moto_bucket, Key=key, Body=b"x" * (6 * MiB))
    head = moto_client.head_object(Bucket=moto_bucket, Key=key)
    params = copy_params(moto_bucket, key, head, ANNOTATION)

    with FaultProxy(moto_s3.endpoint_url).running() as proxy:
        stores = stores_through(proxy, moto_bucket)
        proxy.rules = [
            Rule(fault, operations=only("HeadObject", "CopyObject", "CreateMultipartUpload"))
        ]
        attempts: dict[str, int] = {}
        for name, store in stores.items():
            for operation, call in (
                ("HeadObject", lambda store=store: store.head_object(key)),
                ("CopyObject", lambda store=store: store.copy_object(params)),
            ):
                before = proxy.seen[operation]
                with pytest.raises((S3Error, NetworkError)):
                    call()
                attempts[f"{name} {operation}"] = proxy.seen[operation] - before
        client = stores["boto3"].client
        copier = MultipartCopier(client, threading.Event(), threshold=5 * MiB)
        with copier, pytest.raises((S3Error, NetworkError)):
            copier.copy(params, 6 * MiB)
        attempts["s3transfer CreateMultipartUpload"] = proxy.seen["CreateMultipartUpload"]

    assert attempts == dict.fromkeys(attempts, retry.ATTEMPTS)
    assert proxy.count(fault) == len(attempts) * retry.ATTEMPTS


# -- transient faults -----------------------------------------------------------------------------

COMPLETED = "x-amz-meta-completed"  # on the marker only
GUARD = "if-none-match"  # on the pending marker only
FORCED = [  # each at least once, whatever the draws: the cases where a retry is subtle
    Rule(Fault.DROP_REPLY, operations=only("CopyObject"), limit=2),  # copied, reply lost
    Rule(Fault.DROP_REPLY, operations=only("CompleteMultipartUpload"), limit=1),
    Rule(Fault.SLOW_DOWN, operations=only("UploadPartCopy"), limit=1),
    Rule(
        Fault.DROP_REPLY,
        operations=only("PutObject"),
        limit=1,
        when=lambda r: COMPLETED in r.headers,
    ),
    # the pending marker, written first with If-None-Match: its retry finds it there (412)
    Rule(
        Fault.DROP_REPLY, operations=only("PutObject"), limit=1, when=lambda r: GUARD in r.headers
    ),
]


def test_transient_faults_cost_retries_and_lose_nothing(run_cli, moto_s3, moto_client, moto_bucket):
    """Through the native store, with ACL reads (moto's buckets have ACLs on), a multipart copy
    and the marker; the boto3 store is put through the same on SeaweedFS below."""
    s3, bucket = moto_client, moto_bucket
    digests = seed_objects(s3, bucket, 20)
    big = f"{PREFIX}big.bin"
    body = os.urandom(6 * MiB)  # two parts
    s3.put_object(Bucket=bucket, Key=big, Body=body, Metadata={"built-by": "jenkins"})
    digests[big] = hashlib.md5(body).hexdigest()
    rules = FORCED + Transient(rate=0.25).rules()

    with FaultProxy(moto_s3.endpoint_url, rules, seed=4, record=True).running() as proxy:
        result = run_cli(
            moto_s3, "annotate", bucket, PREFIX, *LABEL, *SMALL_PARTS, "--json", *through(proxy)
        )  # fmt: skip

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["annotated"], report["skipped"], report["failed"]) == (21, 0, 0)
    assert report["multipart"] == 1 and report["failures"] == []
    assert report["marker_written"] is True and report["marker_verified"] is True
    for key, digest in digests.items():
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["Metadata"] == {"built-by": "jenkins", **ANNOTATION}, key
        assert digest_of(s3, bucket, key) == digest, key
    assert s3.head_object(Bucket=bucket, Key=PREFIX)["Metadata"]["completed"] == "completed"
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    # The faults really happened: at least 15% of all requests, of every kind.
    assert proxy.failures_injected() >= 0.15 * proxy.total_seen(), proxy.injected
    for fault in (Fault.SLOW_DOWN, Fault.INTERNAL_ERROR, Fault.DROP_REPLY):
        assert proxy.count(fault) > 0, fault
    for operation in ("CopyObject", "HeadObject", "CompleteMultipartUpload", "PutObject"):
        assert proxy.count(operation=operation) > 0, operation
    copies = [r for r in proxy.requests if r.operation == "CopyObject"]
    assert all(NATIVE_AGENT in r.headers.get("user-agent", "") for r in copies)


def test_transient_faults_under_the_etag_guard_lose_nothing(
    run_cli, seaweed_s3, seaweed_client, seaweed_bucket
):
    """SeaweedFS enforces CopySourceIfMatch: a copy retried after its reply was lost must still
    pass the guard (or find the object annotated), never fail it. Through boto3 this time."""
    s3, bucket = seaweed_client, seaweed_bucket
    digests = seed_objects(s3, bucket, 20)
    rules = [
        Rule(Fault.DROP_REPLY, operations=only("CopyObject"), limit=3),
        *Transient(rate=0.25).rules(),
    ]

    with FaultProxy(seaweed_s3.endpoint_url, rules, seed=7, record=True).running() as proxy:
        result = run_cli(
            seaweed_s3, "annotate", bucket, PREFIX, *LABEL, "--json", "--no-marker",
            *through(proxy), env=STORES["boto3"],
        )  # fmt: skip

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["annotated"], report["failed"]) == (20, 0)
    for key, digest in digests.items():
        assert s3.head_object(Bucket=bucket, Key=key)["Metadata"] == {
            "built-by": "jenkins",
            **ANNOTATION,
        }
        assert digest_of(s3, bucket, key) == digest
    assert proxy.failures_injected() >= 0.15 * proxy.total_seen()
    assert proxy.count(Fault.DROP_REPLY, "CopyObject") >= 3
    assert not any(NATIVE_AGENT in r.headers.get("user-agent", "") for r in proxy.requests)


# -- a permanent failure --------------------------------------------------------------------------


@pytest.mark.parametrize("store", STORES)
def test_a_refused_object_fails_alone_no_complete_marker_and_a_rerun_finishes(
    run_cli, moto_s3, moto_client, moto_bucket, store
):
    s3, bucket = moto_client, moto_bucket
    seed_objects(s3, bucket, 12)
    refused = f"{PREFIX}dist/file-007.bin"
    rules = [Rule(Fault.ACCESS_DENIED, operations=only("CopyObject"), key=refused)]

    with FaultProxy(moto_s3.endpoint_url, rules).running() as proxy:
        result = run_cli(
            moto_s3, "annotate", bucket, PREFIX, *LABEL, "--json", *through(proxy),
            env=STORES[store],
        )  # fmt: skip

    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert (report["annotated"], report["failed"]) == (11, 1)
    assert [failure["key"] for failure in report["failures"]] == [refused]
    assert report["failures"][0]["error"].startswith("AccessDenied")
    assert f"FAILED {refused}: AccessDenied" in result.stderr  # the human summary, too
    assert report["marker_written"] is False  # a pending marker only, the poller skips it:
    assert "completed" not in s3.head_object(Bucket=bucket, Key=PREFIX)["Metadata"]
    assert proxy.count(Fault.ACCESS_DENIED) == 1  # a permanent error is not retried
    assert "go_pipeline_label" not in s3.head_object(Bucket=bucket, Key=refused)["Metadata"]

    again = run_cli(moto_s3, "annotate", bucket, PREFIX, *LABEL, "--json", env=STORES[store])

    assert again.returncode == 0, again.stderr
    final = json.loads(again.stdout)
    assert (final["annotated"], final["skipped"], final["failed"]) == (1, 11, 0)
    assert final["marker_written"] is True
    assert s3.head_object(Bucket=bucket, Key=refused)["Metadata"]["go_pipeline_label"] == "42"


# -- a concurrent writer --------------------------------------------------------------------------


@pytest.mark.parametrize("store", STORES)
def test_an_object_overwritten_between_head_and_copy_is_read_and_merged_again(
    run_cli, seaweed_s3, seaweed_client, seaweed_bucket, store
):
    """SeaweedFS enforces CopySourceIfMatch (moto ignores it). The proxy, on the first copy of
    one key, uploads new content to that key first: our copy, guarded by the old ETag, gets 412,
    and the new content ends up annotated with its own metadata, not the stale one."""
    s3, bucket = seaweed_client, seaweed_bucket
    digests = seed_objects(s3, bucket, 6)
    moving = f"{PREFIX}dist/file-003.bin"
    new_body = b"uploaded by someone else meanwhile"

    def overwrite(request: Request) -> None:
        s3.put_object(Bucket=bucket, Key=moving, Body=new_body, Metadata={"version": "2"})

    rules = [Rule(Fault.CALL, operations=only("CopyObject"), key=moving, limit=1, action=overwrite)]
    with FaultProxy(seaweed_s3.endpoint_url, rules).running() as proxy:
        result = run_cli(
            seaweed_s3, "annotate", bucket, PREFIX, *LABEL, "--json", "--no-marker",
            *through(proxy), env=STORES[store],
        )  # fmt: skip

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["annotated"], report["failed"]) == (6, 0)
    assert proxy.count(Fault.CALL) == 1
    assert proxy.answered["CopyObject", 412] == 1  # the guard caught it
    head = s3.head_object(Bucket=bucket, Key=moving)
    assert head["Metadata"] == {"version": "2", **ANNOTATION}
    assert digest_of(s3, bucket, moving) == hashlib.md5(new_body).hexdigest()
    for key in set(digests) - {moving}:
        assert digest_of(s3, bucket, key) == digests[key]
