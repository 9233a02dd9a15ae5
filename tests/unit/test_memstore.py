"""The in-memory store answers as S3 does where the engine relies on it (docs/s3-notes.md)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from support.inprocess import without_retry_waits
from support.memstore import (
    ALL_USERS,
    INTERNAL_ERROR,
    SLOW_DOWN,
    MemoryStore,
    Request,
    md5_etag,
    private_acl,
)

from gos3matic.errors import S3Error
from gos3matic.store.retry import ATTEMPTS


@pytest.fixture(autouse=True)
def _no_retry_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    without_retry_waits(monkeypatch)


def copy_onto_itself(memory: MemoryStore, key: str, **params: Any) -> str | None:
    request = {"Bucket": memory.name, "Key": key, "CopySource": {"Bucket": memory.name, "Key": key}}
    return asyncio.run(memory.objects.copy_object({**request, **params}))


def error_of(call: Any) -> S3Error:
    with pytest.raises(S3Error) as raised:
        call()
    return raised.value


def test_a_replace_copy_keeps_only_what_the_request_sends_again_but_the_tags():
    memory = MemoryStore()
    before = memory.put(
        "k",
        b"body",
        metadata={"origin": "ci"},
        tags={"team": "build"},
        grants={"GrantRead": f'uri="{ALL_USERS}"'},
        ContentType="text/plain",
        CacheControl="max-age=60",
        StorageClass="STANDARD_IA",
    )
    copy_onto_itself(memory, "k", MetadataDirective="REPLACE", Metadata={"Label": "42"})
    after = memory.stored["k"]
    assert after.metadata == {"label": "42"}  # S3 lower-cases the keys
    assert after.properties["ContentType"] == "binary/octet-stream"
    assert "CacheControl" not in after.properties
    assert after.storage_class == "STANDARD"
    assert after.grants == private_acl()
    assert after.tags == {"team": "build"}
    assert (after.body, after.etag) == (before.body, before.etag)
    assert after.last_modified > before.last_modified


def test_a_copy_guarded_by_a_stale_etag_is_refused_with_412_and_writes_nothing():
    memory = MemoryStore()
    memory.put("k", b"new", metadata={"v": "2"})
    error = error_of(
        lambda: copy_onto_itself(
            memory, "k", CopySourceIfMatch=md5_etag(b"old"), MetadataDirective="REPLACE"
        )
    )
    assert (error.code, error.status) == ("PreconditionFailed", 412)
    assert memory.stored["k"].metadata == {"v": "2"}


def test_a_copy_onto_itself_that_changes_nothing_is_refused():
    memory = MemoryStore()
    memory.put("k", b"body")
    error = error_of(lambda: copy_onto_itself(memory, "k"))
    assert (error.code, error.status) == ("InvalidRequest", 400)


def test_an_archived_object_cannot_be_copied():
    memory = MemoryStore()
    memory.put("k", b"body", StorageClass="GLACIER")
    error = error_of(lambda: copy_onto_itself(memory, "k", MetadataDirective="REPLACE"))
    assert error.code == "ObjectNotInActiveTierError"


def test_head_answers_as_boto3_does():
    memory = MemoryStore(versioning=True)
    memory.put("std", b"abc", metadata={"a": "1"})
    memory.put("ia", b"abc", StorageClass="STANDARD_IA")
    head = memory.head_object("std")
    assert head["ETag"] == md5_etag(b"abc")
    assert (head["ContentLength"], head["ContentType"]) == (3, "binary/octet-stream")
    assert head["Metadata"] == {"a": "1"}
    assert head["ServerSideEncryption"] == "AES256"  # every new object, by default
    assert head["VersionId"]
    assert "StorageClass" not in head  # S3 sends none for STANDARD
    assert memory.head_object("ia")["StorageClass"] == "STANDARD_IA"
    error = error_of(lambda: memory.head_object("missing"))
    assert (error.code, error.status, error.message) == ("NotFound", 404, "")


def test_a_conditional_marker_is_refused_when_the_key_exists():
    memory = MemoryStore()
    memory.put_marker("p/", {"completed": "completed"}, if_none_match=True)
    error = error_of(lambda: memory.put_marker("p/", {}, if_none_match=True))
    assert (error.code, error.status) == ("PreconditionFailed", 412)
    assert memory.head_metadata("p/") == {"completed": "completed"}


def test_a_store_that_drops_folder_metadata_keeps_the_marker_without_it():
    memory = MemoryStore(keeps_folder_metadata=False)
    memory.put_marker("p/", {"completed": "completed"})
    assert memory.head_metadata("p/") == {}


def test_listings_are_in_key_order_one_request_a_page():
    memory = MemoryStore(page_size=2)
    for key in ("p/b", "p/a", "p/c/1", "p/c/2", "p/d/x", "q/a", "p/"):
        memory.put(key)
    listed = [listed.key for listed in memory.list_objects("p/")]
    assert listed == ["p/", "p/a", "p/b", "p/c/1", "p/c/2", "p/d/x"]
    assert memory.sent("ListObjectsV2") == 3
    assert list(memory.list_folders("p/")) == ["p/c/", "p/d/"]


def test_injected_faults_fail_that_many_attempts_each_logged_retried_and_counted():
    memory = MemoryStore()
    memory.put("k", b"body")
    memory.put("other")
    memory.fail("HeadObject", INTERNAL_ERROR, key="k")
    memory.fail("HeadObject", SLOW_DOWN, key="k")  # last: the pacer it switches on spaces sends
    asyncio.run(memory.objects.head_object("other"))  # the faults are k's alone
    head = asyncio.run(memory.objects.head_object("k"))
    assert head["ETag"] == md5_etag(b"body")
    assert memory.requests == [Request("HeadObject", "other")] + [Request("HeadObject", "k")] * 3
    stats = memory.flow.stats
    assert (stats.requests, stats.retries, stats.throttled) == (4, 2, 1)


def test_a_fault_on_every_attempt_is_raised_after_the_last():
    memory = MemoryStore()
    memory.put("k")
    memory.fail("HeadObject", INTERNAL_ERROR, times=None)
    error = error_of(lambda: asyncio.run(memory.objects.head_object("k")))
    assert (error.code, error.status) == ("500", 500)  # a HEAD's error has no body
    assert memory.sent("HeadObject") == ATTEMPTS


def test_a_change_before_the_copy_gives_the_object_a_new_etag():
    memory = MemoryStore()
    old = memory.put("k", b"body").etag
    memory.change_before_copy("k", metadata={"rebuilt": "yes"})
    error = error_of(
        lambda: copy_onto_itself(memory, "k", CopySourceIfMatch=old, MetadataDirective="REPLACE")
    )
    assert error.code == "PreconditionFailed"
    assert memory.stored["k"].metadata == {"rebuilt": "yes"}
    assert memory.stored["k"].etag != old


def test_a_copy_in_parts_keeps_what_it_is_sent_and_the_tags_under_a_new_etag():
    memory = MemoryStore()
    body = bytes(range(256)) * (11 * 4096)  # 11 MiB
    before = memory.put("big", body, tags={"team": "build"}, ContentType="text/plain")
    copier = memory.large_copier(threading.Event(), 5 << 20, 5 << 20, acls_enabled=True)
    params = {
        "Bucket": memory.name,
        "Key": "big",
        "CopySource": {"Bucket": memory.name, "Key": "big"},
        "CopySourceIfMatch": before.etag,
        "MetadataDirective": "REPLACE",
        "Metadata": {"label": "42"},
        "ContentType": "text/plain",
    }
    copied = copier.copy(params, len(body))
    after = memory.stored["big"]
    assert copied.parts == 3
    assert after.body == body
    assert after.etag.endswith('-3"')
    assert (after.metadata, after.tags) == ({"label": "42"}, {"team": "build"})
    assert after.properties["ContentType"] == "text/plain"
    assert memory.sent("UploadPartCopy") == 3
    assert not memory.uploads


def test_a_copy_in_parts_of_a_changed_object_is_refused_and_its_upload_aborted():
    memory = MemoryStore()
    memory.put("big", b"x" * (6 << 20))
    memory.change_before_copy("big", operation="UploadPartCopy")
    copier = memory.large_copier(threading.Event(), 5 << 20, 5 << 20, acls_enabled=True)
    params = {
        "Bucket": memory.name,
        "Key": "big",
        "CopySource": {"Bucket": memory.name, "Key": "big"},
        "CopySourceIfMatch": md5_etag(b"x" * (6 << 20)),
        "MetadataDirective": "REPLACE",
    }
    error = error_of(lambda: copier.copy(params, 6 << 20))
    assert error.code == "PreconditionFailed"
    assert memory.sent("AbortMultipartUpload") == 1
    assert not memory.uploads
    assert memory.stored["big"].body.endswith(b" (rebuilt)")
