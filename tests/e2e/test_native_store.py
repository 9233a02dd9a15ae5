"""The native hot path is boto3 by other means: same answers, same writes, same errors.

Every comparison is against boto3 itself (an independent client on the same server), so a
difference in shape, header or encoding between the two clients shows up here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import botocore.session
import botocore.utils
import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.blocking import Blocking

from gos3matic.core.metadata import copy_params, encode_annotation, grant_params
from gos3matic.devserver import LocalS3
from gos3matic.errors import NetworkError, S3Error
from gos3matic.store.boto import (
    Boto3Bucket,
    ThreadedObjectStore,
    make_client,
    parse_timestamp,
)
from gos3matic.store.model import CopySerializer
from gos3matic.store.native import NativeObjectStore, Route, open_object_store
from gos3matic.store.protocols import Connection, Listed

PREFIX = "app/build/package/7.1/"
ANNOTATION = encode_annotation({"go_pipeline_label": "7.1", "user": "Zoë"})
# Keys whose bytes a URL can mangle: each must reach the object its name says.
AWKWARD_KEYS = [
    "with space.txt",
    "ünïcødé-日本語.txt",
    "emoji-🚀.bin",
    "plus+sign.txt",
    "percent%2Fliteral%20.txt",
    "question?mark.txt",
    "hash#tag.txt",
    "tilde~and=eq&amp;semi.txt",
    "a//double/slash",
    "quote'\"<>.txt",
    "colon:at@dollar$comma,.txt",
    "[brackets]{braces}|pipe^caret`tick",
]


SERVICE_MODEL = botocore.session.get_session().get_service_model("s3")


def use_environment_of(server: LocalS3, monkeypatch: pytest.MonkeyPatch) -> LocalS3:
    """The CLI's own setting: boto3 resolves the endpoint and the keys from the environment."""
    for name, value in server.env().items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    return server


@pytest.fixture
def server_env(s3server: LocalS3, monkeypatch: pytest.MonkeyPatch) -> LocalS3:
    return use_environment_of(s3server, monkeypatch)


def open_native(server: LocalS3, bucket: str) -> tuple[Any, Boto3Bucket]:
    """The native store, its requests as plain calls, and the boto3 bucket it was opened on."""
    connection = Connection(endpoint_url=server.endpoint_url)
    boto3_bucket = Boto3Bucket(make_client(connection, 8), bucket)
    store = open_object_store(boto3_bucket, connection, PREFIX, 8)
    assert isinstance(store, NativeObjectStore), "fell back to boto3 on a local server"
    return Blocking(store), boto3_bucket


def boto3_head(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    head = dict(s3.head_object(Bucket=bucket, Key=key))
    head.pop("ResponseMetadata")
    return head


def every_property(server: LocalS3) -> dict[str, Any]:
    """PutObject arguments setting each property a copy must keep that this server supports."""
    properties: dict[str, Any] = {
        "ContentType": "text/plain; charset=utf-8",
        "CacheControl": "max-age=60, must-revalidate",
        "ContentDisposition": 'attachment; filename="notes.txt"',
        "ContentEncoding": "identity",
        "ContentLanguage": "en-GB",
        "Expires": dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        "WebsiteRedirectLocation": "/elsewhere.html",
        "Metadata": {"owner": "team-a", "greeting": "=?UTF-8?B?R3LDvMOfZQ==?="},
        "Tagging": "stage=build&keep=yes",
        "StorageClass": "STANDARD_IA",
    }
    if server.kind == "moto":  # SeaweedFS has no KMS
        properties.update(
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId="arn:aws:kms:us-east-1:123456789012:key/k1",
            BucketKeyEnabled=True,
        )
    else:
        properties.update(ServerSideEncryption="AES256")
    return properties


def test_head_has_boto3s_shape_for_an_object_with_every_property(server_env, s3, bucket):
    key = f"{PREFIX}notes.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"hello", **every_property(server_env))
    store, _ = open_native(server_env, bucket)

    assert store.head_object(key) == boto3_head(s3, bucket, key)


def test_a_locked_object_keeps_retention_and_legal_hold(moto_s3, moto_client, monkeypatch):
    server = use_environment_of(moto_s3, monkeypatch)
    s3 = moto_client
    bucket = "locked-" + uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    key = f"{PREFIX}locked.bin"
    until = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(days=3)
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=b"x",
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=until,
        ObjectLockLegalHoldStatus="ON",
        ChecksumAlgorithm="CRC32",
    )
    store, _ = open_native(server, bucket)

    head = store.head_object(key)

    assert head == boto3_head(s3, bucket, key)
    assert head["ObjectLockRetainUntilDate"] == until
    store.copy_object(copy_params(bucket, key, head, ANNOTATION))
    after = boto3_head(s3, bucket, key)
    assert after["ObjectLockMode"] == "GOVERNANCE"
    assert after["ObjectLockRetainUntilDate"] == until
    assert after["ObjectLockLegalHoldStatus"] == "ON"


def test_a_native_copy_keeps_every_property_and_merges_metadata(server_env, s3, bucket):
    key = f"{PREFIX}notes.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"hello", **every_property(server_env))
    if server_env.kind == "moto":
        s3.put_object_acl(Bucket=bucket, Key=key, ACL="public-read")
    acl_before = s3.get_object_acl(Bucket=bucket, Key=key)["Grants"]
    before = boto3_head(s3, bucket, key)
    store, _ = open_native(server_env, bucket)

    head = store.head_object(key)
    params = copy_params(bucket, key, head, ANNOTATION)
    params.update(grant_params(store.get_object_acl(key)))
    store.copy_object(params)

    after = boto3_head(s3, bucket, key)
    assert after["Metadata"] == {**before["Metadata"], **ANNOTATION}
    unchanged = {"LastModified", "Metadata"}
    assert {k: v for k, v in after.items() if k not in unchanged} == {
        k: v for k, v in before.items() if k not in unchanged
    }
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"hello"
    acl_after = s3.get_object_acl(Bucket=bucket, Key=key)["Grants"]
    assert sorted(map(str, acl_after)) == sorted(map(str, acl_before))


def test_an_unparseable_expires_is_sent_back_as_it_was_read(server_env, s3, bucket):
    key = f"{PREFIX}odd-expires.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    store, _ = open_native(server_env, bucket)
    params = copy_params(bucket, key, store.head_object(key), ANNOTATION)
    params["Expires"] = "not a date"

    store.copy_object(params)

    head = boto3_head(s3, bucket, key)
    assert head.get("ExpiresString") == "not a date"
    assert "Expires" not in head  # boto3 cannot parse it either: the raw value only


@pytest.mark.parametrize("name", AWKWARD_KEYS)
def test_awkward_key_names_reach_their_own_object(server_env, s3, bucket, name):
    key = PREFIX + name
    s3.put_object(Bucket=bucket, Key=key, Body=b"x", Metadata={"owner": "team-a"})
    store, _ = open_native(server_env, bucket)

    head = store.head_object(key)
    assert head == boto3_head(s3, bucket, key)
    acl = dict(s3.get_object_acl(Bucket=bucket, Key=key))
    acl.pop("ResponseMetadata")
    assert store.get_object_acl(key) == acl
    listed_before = listing(s3, bucket)  # SeaweedFS lists 'a//b' as 'a/b', whoever wrote it
    store.copy_object(copy_params(bucket, key, head, ANNOTATION))

    assert s3.head_object(Bucket=bucket, Key=key)["Metadata"] == {"owner": "team-a", **ANNOTATION}
    assert listing(s3, bucket) == listed_before  # the copy landed on the object, not beside it


def listing(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=PREFIX)["Contents"]]


def test_a_missing_key_is_not_found(server_env, bucket):
    store, _ = open_native(server_env, bucket)

    with pytest.raises(S3Error) as head_error:
        store.head_object(f"{PREFIX}missing")
    with pytest.raises(S3Error) as copy_error:
        store.copy_object(
            {
                "Bucket": bucket,
                "Key": f"{PREFIX}missing",
                "CopySource": {"Bucket": bucket, "Key": f"{PREFIX}missing"},
                "MetadataDirective": "REPLACE",
                "Metadata": dict(ANNOTATION),
            }
        )

    assert (head_error.value.code, head_error.value.status) == ("NotFound", 404)
    assert head_error.value.operation == "HeadObject"
    assert copy_error.value.code == "NoSuchKey"  # from the XML body of the error
    assert copy_error.value.status == 404


def test_a_copy_guarded_by_a_stale_etag_is_refused_with_412(
    seaweed_s3, seaweed_client, seaweed_bucket, monkeypatch
):
    # SeaweedFS enforces CopySourceIfMatch; moto ignores it (docs/s3-notes.md, local servers).
    use_environment_of(seaweed_s3, monkeypatch)
    bucket = seaweed_bucket
    key = f"{PREFIX}changing.txt"
    seaweed_client.put_object(Bucket=bucket, Key=key, Body=b"first")
    store, _ = open_native(seaweed_s3, bucket)
    params = copy_params(bucket, key, store.head_object(key), ANNOTATION)
    seaweed_client.put_object(Bucket=bucket, Key=key, Body=b"second")

    with pytest.raises(S3Error) as error:
        store.copy_object(params)

    assert (error.value.code, error.value.status) == ("PreconditionFailed", 412)
    assert seaweed_client.head_object(Bucket=bucket, Key=key)["Metadata"] == {}


def test_no_answer_is_a_network_error():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    route = Route("http", f"127.0.0.1:{port}", "/bucket/", "us-east-1")
    credentials = botocore.credentials.Credentials("key", "secret")
    store = Blocking(NativeObjectStore(route, SERVICE_MODEL, credentials, 2))

    with pytest.raises(NetworkError):
        store.send("HEAD", "HeadObject", route.path("some/key"))  # one attempt: no retry.py


# -- fallback: boto3, with no visible difference --


def test_no_native_store_on_request(server_env, bucket, monkeypatch):
    monkeypatch.setenv("GOS3MATIC_NO_NATIVE", "1")
    connection = Connection(endpoint_url=server_env.endpoint_url)
    boto3_bucket = Boto3Bucket(make_client(connection, 8), bucket)

    assert isinstance(open_object_store(boto3_bucket, connection, PREFIX, 8), ThreadedObjectStore)


def test_boto3_when_a_proxy_is_configured(server_env, bucket, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    connection = Connection(endpoint_url=server_env.endpoint_url)
    boto3_bucket = Boto3Bucket(make_client(connection, 8), bucket)

    assert isinstance(open_object_store(boto3_bucket, connection, PREFIX, 8), ThreadedObjectStore)


# -- CopyObject headers, without a server: byte for byte what boto3 sends --


def boto3_copy_headers(params: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The headers boto3 would send for CopyObject(**params), captured before the wire."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    client = make_client(Connection(endpoint_url="http://127.0.0.1:9", region="us-east-1"), 1)
    sent: dict[str, str] = {}

    def capture(request: Any, **_: Any) -> Any:
        sent.update(
            {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        )
        raise _Sent

    client.meta.events.register("before-send.s3.CopyObject", capture)
    with pytest.raises(_Sent):
        client.copy_object(**params)
    return sent


class _Sent(Exception):
    pass


# boto3's own: signing, user agent, invocation ids and its Content-Length of the empty body.
_TRANSPORT = {
    "authorization",
    "x-amz-date",
    "x-amz-content-sha256",
    "user-agent",
    "amz-sdk-invocation-id",
    "amz-sdk-request",
    "content-length",
    "host",
}


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {
            "ContentType": "text/html",
            "CacheControl": "no-cache",
            "ContentDisposition": "inline",
            "ContentEncoding": "gzip",
            "ContentLanguage": "fr",
            "Expires": dt.datetime(2031, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc),
            "WebsiteRedirectLocation": "/x",
            "StorageClass": "GLACIER_IR",
            "ServerSideEncryption": "aws:kms",
            "SSEKMSKeyId": "arn:aws:kms:eu-west-1:123456789012:key/abc",
            "BucketKeyEnabled": False,
            "ObjectLockMode": "COMPLIANCE",
            "ObjectLockRetainUntilDate": dt.datetime(2032, 1, 1, tzinfo=dt.timezone.utc),
            "ObjectLockLegalHoldStatus": "OFF",
            "GrantRead": 'uri="http://acs.amazonaws.com/groups/global/AllUsers"',
            "GrantFullControl": 'id="abc", id="def"',
            "GrantReadACP": 'emailAddress="a@example.com"',
            "GrantWriteACP": 'id="abc"',
            "ExpectedBucketOwner": "123456789012",
            "ExpectedSourceBucketOwner": "123456789012",
        },
        {"Expires": "Thu, 01 Dec 2033 16:00:00 GMT"},
    ],
    ids=["minimal", "every-parameter", "expires-string"],
)
def test_copy_headers_are_the_ones_boto3_sends(extra, monkeypatch):
    key = "dir/ünï cødé+%?#~.txt"
    params = {
        "Bucket": "bucket",
        "Key": key,
        "CopySource": {"Bucket": "bucket", "Key": key},
        "CopySourceIfMatch": '"0123456789abcdef"',
        "MetadataDirective": "REPLACE",
        "Metadata": {"go_pipeline_label": "7.1", "user": "=?UTF-8?B?Wm/Dqw==?="},
        **extra,
    }
    ours = dict(CopySerializer(SERVICE_MODEL.operation_model("CopyObject")).headers(params))

    theirs = {
        k: v
        for k, v in boto3_copy_headers(params, monkeypatch).items()
        if k.lower() not in _TRANSPORT
    }
    assert ours == theirs


def test_an_unknown_copy_parameter_is_refused():
    with pytest.raises(TypeError, match="NotAParameter"):
        CopySerializer(SERVICE_MODEL.operation_model("CopyObject")).headers(
            {"Bucket": "b", "Key": "k", "CopySource": "b/k", "NotAParameter": 1}
        )


# -- timestamps: S3's two forms without dateutil, every other one through botocore --


@given(
    st.datetimes(
        min_value=dt.datetime(1970, 1, 1),
        max_value=dt.datetime(9999, 12, 31),
        timezones=st.just(dt.timezone.utc),
    ),
    st.sampled_from(["iso-z", "iso-ms", "rfc1123", "iso-offset", "epoch"]),
)
def test_timestamps_parse_as_botocore_parses_them(when, form):
    text = {
        "iso-z": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "iso-ms": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
        "rfc1123": email.utils.format_datetime(when, usegmt=True),
        "iso-offset": when.isoformat(),
        "epoch": str(int(when.timestamp())),
    }[form]

    assert parse_timestamp(text) == botocore.utils.parse_timestamp(text)


# -- the listing on the same connections --


def test_the_native_listing_is_boto3s_listing_across_pages(server_env, s3, bucket):
    keys = [PREFIX + name for name in AWKWARD_KEYS] + [f"{PREFIX}many/{i:04}" for i in range(1010)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=b"x" * 3), keys))
    s3.put_object(Bucket=bucket, Key="elsewhere/not-listed", Body=b"x")
    native, _ = open_native(server_env, bucket)
    expected = [
        (entry["Key"], entry["Size"], entry["ETag"])
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX)
        for entry in page.get("Contents", [])
    ]

    async def pages() -> list[list[Listed]]:
        return [page async for page in native.store.list_pages(PREFIX)]

    listed = asyncio.run(pages())

    assert len(listed) >= 2  # more than one page of 1,000
    assert [(o.key, o.size, o.etag) for page in listed for o in page] == expected
    assert len(expected) >= 1010
