"""The merge: one object's HEAD and the annotation -> the copy that changes nothing else."""

import datetime as dt

import pytest

from gos3matic.core.metadata import (
    METADATA_LIMIT,
    ObjectRefused,
    check_plan,
    copy_params,
    encode_annotation,
    encode_value,
    grant_params,
    is_annotated,
)
from gos3matic.core.outcome import Plan
from gos3matic.errors import InputError

ANNOTATION = {"go_pipeline_label": "42", "user": "jo"}

FULL_HEAD = {
    "ETag": '"abc"',
    "ContentLength": 10,
    "Metadata": {"origin": "jenkins", "user": "someone-else"},
    "ContentType": "application/json",
    "CacheControl": "max-age=60",
    "ContentDisposition": "attachment",
    "ContentEncoding": "gzip",
    "ContentLanguage": "en",
    "Expires": dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc),
    "WebsiteRedirectLocation": "/elsewhere",
    "StorageClass": "STANDARD_IA",
    "ServerSideEncryption": "aws:kms",
    "SSEKMSKeyId": "arn:aws:kms:us-east-1:111122223333:key/k",
    "BucketKeyEnabled": True,
    "ObjectLockMode": "GOVERNANCE",
    "ObjectLockRetainUntilDate": dt.datetime(2031, 1, 1, tzinfo=dt.timezone.utc),
    "ObjectLockLegalHoldStatus": "ON",
    "TagCount": 2,
}


def test_the_copy_resends_every_property_a_replace_would_reset():
    params = copy_params("bkt", "k", FULL_HEAD, ANNOTATION)
    for name in FULL_HEAD.keys() - {"ETag", "ContentLength", "Metadata", "TagCount"}:
        assert params[name] == FULL_HEAD[name], name
    assert params["MetadataDirective"] == "REPLACE"
    assert params["CopySource"] == {"Bucket": "bkt", "Key": "k"}
    assert "TaggingDirective" not in params  # COPY, the default, keeps the tags


def test_the_copy_is_guarded_by_the_etag_it_was_merged_from():
    assert copy_params("bkt", "k", FULL_HEAD, ANNOTATION)["CopySourceIfMatch"] == '"abc"'


def test_existing_keys_are_kept_and_annotation_keys_win():
    merged = copy_params("bkt", "k", FULL_HEAD, ANNOTATION)["Metadata"]
    assert merged == {"origin": "jenkins", "user": "jo", "go_pipeline_label": "42"}


def test_a_kms_key_is_only_sent_with_kms_encryption():
    head = {**FULL_HEAD, "ServerSideEncryption": "AES256"}
    params = copy_params("bkt", "k", head, ANNOTATION)
    assert params["ServerSideEncryption"] == "AES256"
    assert "SSEKMSKeyId" not in params and "BucketKeyEnabled" not in params


def test_a_plain_object_gets_no_invented_properties():
    params = copy_params("bkt", "k", {"ETag": '"e"', "ContentLength": 1}, ANNOTATION)
    assert set(params) == {
        "Bucket",
        "Key",
        "CopySource",
        "CopySourceIfMatch",
        "MetadataDirective",
        "Metadata",
    }


def test_an_unparsed_expires_header_is_sent_back_as_it_came():
    head = {"ETag": '"e"', "Expires": None, "ExpiresString": "not-a-date"}
    assert copy_params("bkt", "k", head, ANNOTATION)["Expires"] == "not-a-date"


def test_merged_metadata_over_2kb_refuses_the_object():
    head = {"ETag": '"e"', "Metadata": {"big": "x" * (METADATA_LIMIT - 10)}}
    with pytest.raises(ObjectRefused, match="2048-byte limit"):
        copy_params("bkt", "k", head, ANNOTATION)


@pytest.mark.parametrize("storage_class", ["GLACIER", "DEEP_ARCHIVE"])
def test_archived_objects_are_refused_before_any_copy(storage_class):
    head = {"ETag": '"e"', "StorageClass": storage_class}
    with pytest.raises(ObjectRefused, match="restore it first"):
        copy_params("bkt", "k", head, ANNOTATION)


def test_a_restored_archived_object_is_copied_and_stays_in_its_class():
    head = {"ETag": '"e"', "StorageClass": "GLACIER", "Restore": 'ongoing-request="false"'}
    assert copy_params("bkt", "k", head, ANNOTATION)["StorageClass"] == "GLACIER"


def test_sse_c_objects_are_refused():
    with pytest.raises(ObjectRefused, match="SSE-C"):
        copy_params("bkt", "k", {"ETag": '"e"', "SSECustomerAlgorithm": "AES256"}, ANNOTATION)


def test_already_annotated_means_every_key_with_the_same_value():
    assert is_annotated({"Metadata": {**ANNOTATION, "other": "x"}}, ANNOTATION)
    assert not is_annotated({"Metadata": {"go_pipeline_label": "41", "user": "jo"}}, ANNOTATION)
    assert not is_annotated({"Metadata": {"go_pipeline_label": "42"}}, ANNOTATION)
    assert not is_annotated({}, ANNOTATION)


def test_without_free_keys_a_gocd_key_the_annotation_leaves_out_means_not_annotated():
    stored = {"Metadata": {"go_pipeline_label": "42", "user": "shard@example.com"}}
    assert not is_annotated(stored, {"go_pipeline_label": "42"})


def test_free_keys_may_hold_anything_or_nothing_and_the_rest_must_match():
    free = frozenset({"user", "traceback_url"})
    label = {"go_pipeline_label": "42", "source": "ci"}
    shard = {**label, "user": "shard@example.com", "traceback_url": "https://ci/build/1"}
    assert is_annotated({"Metadata": shard}, label, free)
    assert is_annotated({"Metadata": label}, label, free)  # a run with no user, no URL
    assert not is_annotated({"Metadata": {**shard, "go_pipeline_label": "41"}}, label, free)
    assert not is_annotated({"Metadata": {**shard, "source": "other"}}, label, free)
    assert not is_annotated({"Metadata": {"user": "shard@example.com"}}, label, free)


def test_the_check_plan_names_what_must_match_and_what_is_free():
    annotation = {
        "go_pipeline_label": "42",
        "user": "mark@example.com",
        "traceback_url": "https://ci/publish/1",
        "source": "ci",
    }
    plan = Plan("bkt", "p/s/j/42.1/", annotation, {}, 4, shard=(1, 2))
    check = check_plan(plan)
    assert check.annotation == {"go_pipeline_label": "42", "source": "ci"}
    assert check.any_value_keys == {"user", "traceback_url"}
    assert (check.dry_run, check.write_marker, check.shard) == (True, False, None)
    assert plan.any_value_keys == frozenset()  # a plan to write checks every GoCD key
    shard_stage = {**annotation, "user": "shard@example.com", "traceback_url": "https://ci/b/2"}
    assert is_annotated({"Metadata": shard_stage}, check.annotation, check.any_value_keys)
    assert not is_annotated({"Metadata": shard_stage}, plan.annotation, plan.any_value_keys)


def test_non_ascii_values_are_stored_the_way_s3_stores_them():
    assert encode_value("José") == "=?UTF-8?B?Sm9zw6k=?="
    assert encode_value("plain") == "plain"


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "\x00", "tab\there", "\x7f"])
def test_control_characters_in_values_are_refused(value):
    with pytest.raises(InputError, match="control characters"):
        encode_value(value)


def test_an_annotation_that_alone_exceeds_2kb_is_bad_input():
    with pytest.raises(InputError, match="2048"):
        encode_annotation({"go_pipeline_label": "1", "notes": "x" * 2100})


def test_a_private_acl_needs_no_grants():
    acl = {
        "Owner": {"ID": "owner"},
        "Grants": [
            {"Grantee": {"Type": "CanonicalUser", "ID": "owner"}, "Permission": "FULL_CONTROL"}
        ],
    }
    assert grant_params(acl) == {}


def test_a_private_acl_without_ids_needs_no_grants():
    # SeaweedFS answers so for an object made by a multipart upload.
    acl = {
        "Owner": {"ID": ""},
        "Grants": [{"Grantee": {"Type": "CanonicalUser"}, "Permission": "FULL_CONTROL"}],
    }
    assert grant_params(acl) == {}


def test_a_public_read_acl_is_sent_again_as_grants():
    acl = {
        "Owner": {"ID": "owner"},
        "Grants": [
            {"Grantee": {"Type": "CanonicalUser", "ID": "owner"}, "Permission": "FULL_CONTROL"},
            {
                "Grantee": {
                    "Type": "Group",
                    "URI": "http://acs.amazonaws.com/groups/global/AllUsers",
                },
                "Permission": "READ",
            },
            {
                "Grantee": {"Type": "AmazonCustomerByEmail", "EmailAddress": "a@b.c"},
                "Permission": "READ_ACP",
            },
        ],
    }
    assert grant_params(acl) == {
        "GrantFullControl": 'id="owner"',
        "GrantRead": 'uri="http://acs.amazonaws.com/groups/global/AllUsers"',
        "GrantReadACP": 'emailAddress="a@b.c"',
    }
