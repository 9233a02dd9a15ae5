"""One object's HEAD plus the annotation -> the arguments of its copy onto itself.

Pure: the merge keeps every existing key and every property a REPLACE copy would otherwise reset
(docs/s3-notes.md, "Changing metadata"). Dictionaries use boto3's parameter and response names.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from gos3matic.core.contract import LABEL_KEY, TRACEBACK_KEY, USER_KEY
from gos3matic.errors import InputError

if TYPE_CHECKING:
    from gos3matic.core.outcome import Plan

METADATA_LIMIT = 2048  # bytes of user metadata: UTF-8 keys plus values

# Headers that travel as metadata: a REPLACE copy drops each one that is not sent again.
CONTENT_HEADERS = (
    "ContentType",
    "CacheControl",
    "ContentDisposition",
    "ContentEncoding",
    "ContentLanguage",
    "Expires",
    "WebsiteRedirectLocation",
)
# Properties a copy resets unless the request repeats them.
KEPT_PROPERTIES = (
    "StorageClass",
    "ServerSideEncryption",
    "SSEKMSKeyId",
    "BucketKeyEnabled",
    "ObjectLockMode",
    "ObjectLockRetainUntilDate",
    "ObjectLockLegalHoldStatus",
)
ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})

_GRANT_PARAMS = {
    "FULL_CONTROL": "GrantFullControl",
    "READ": "GrantRead",
    "READ_ACP": "GrantReadACP",
    "WRITE_ACP": "GrantWriteACP",
}


class ObjectRefused(Exception):
    """This object cannot be annotated safely; the reason is one line for the summary."""


def encode_value(value: str) -> str:
    """A metadata value as S3 stores it: ASCII as is, anything else RFC 2047 encoded."""
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise InputError(f"invalid metadata value {value!r}: it contains control characters")
    if not _is_utf8(value):  # undecodable bytes in argv or the environment
        raise InputError(f"invalid metadata value {value!r}: it is not valid UTF-8")
    if value != value.strip(" "):  # HTTP drops them: the read-back would never match
        raise InputError(
            f"invalid metadata value {value!r}: S3 drops leading and trailing spaces; remove them"
        )
    if value.isascii():
        return value
    return "=?UTF-8?B?" + base64.b64encode(value.encode("utf-8")).decode("ascii") + "?="


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def encode_annotation(items: Mapping[str, str]) -> dict[str, str]:
    encoded = {key: encode_value(value) for key, value in items.items()}
    size = metadata_size(encoded)
    if size > METADATA_LIMIT:
        raise InputError(
            f"the annotation alone is {size} bytes of metadata; S3 allows {METADATA_LIMIT} "
            "for all keys and values together"
        )
    return encoded


def metadata_size(metadata: Mapping[str, str]) -> int:
    return sum(len(k.encode("utf-8")) + len(v.encode("utf-8")) for k, v in metadata.items())


# The re-run rule. After any run, every object it annotated and the marker carry the same GoCD
# keys, the ones of that run: a GoCD key the run does not set is removed from both. Every other
# key (custom --key values, metadata the uploader set) is merged: kept, or replaced by the run's.
GOCD_KEYS = frozenset({LABEL_KEY, USER_KEY, TRACEBACK_KEY})


def merged_metadata(existing: Mapping[str, str], annotation: Mapping[str, str]) -> dict[str, str]:
    """An object's or the marker's metadata after a run: the re-run rule above."""
    kept = {key: value for key, value in existing.items() if key not in GOCD_KEYS}
    return {**kept, **annotation}


def marker_metadata(
    existing: Mapping[str, str] | None, wanted: Mapping[str, str]
) -> dict[str, str]:
    """What the marker should carry, given the one already there (None: no marker yet)."""
    return merged_metadata(existing or {}, wanted)


# The keys a check (mark, backfill --mark-only) accepts with any value: each shard stage wrote
# its own user and traceback URL, and the checking stage's differ (another stage, a re-run).
SHARD_KEYS = frozenset({USER_KEY, TRACEBACK_KEY})


def check_plan(plan: Plan) -> Plan:
    """The one way to check a revision before its marker (mark and backfill --mark-only alike):
    a dry run without marker or shard, every key but SHARD_KEYS matched exactly, those free."""
    shared = {key: value for key, value in plan.annotation.items() if key not in SHARD_KEYS}
    return replace(
        plan,
        annotation=shared,
        any_value_keys=SHARD_KEYS,
        dry_run=True,
        write_marker=False,
        shard=None,
    )


def is_annotated(
    head: Mapping[str, Any],
    annotation: Mapping[str, str],
    any_value_keys: frozenset[str] = frozenset(),
) -> bool:
    """True when the object carries the annotation and no GoCD key the annotation leaves out,
    except the `any_value_keys`, which may hold anything or be absent (a check's SHARD_KEYS).
    With no `any_value_keys`: a copy would not change the object's metadata."""
    current = head.get("Metadata") or {}
    if any(current.get(key) != value for key, value in annotation.items()):
        return False
    unmatched = GOCD_KEYS - annotation.keys() - any_value_keys
    return not any(key in current for key in unmatched)


def refusal_before_copy(head: Mapping[str, Any]) -> str | None:
    """Why a copy of this object cannot work, when its HEAD already tells."""
    if head.get("SSECustomerAlgorithm"):
        return "encrypted with a customer-provided key (SSE-C); it cannot be copied without it"
    storage_class = head.get("StorageClass")
    restore = head.get("Restore") or ""
    if storage_class in ARCHIVE_CLASSES and 'ongoing-request="false"' not in restore:
        return f"archived in {storage_class} and not restored; restore it first"
    if head.get("ArchiveStatus"):
        return f"archived by Intelligent-Tiering ({head['ArchiveStatus']}); restore it first"
    return None


def grant_params(acl: Mapping[str, Any]) -> dict[str, str]:
    """GetObjectAcl's grants as x-amz-grant-* parameters; none when the ACL is just 'private'."""
    owner_id = (acl.get("Owner") or {}).get("ID", "")  # SeaweedFS may leave both IDs out
    grants = acl.get("Grants") or []
    by_param: dict[str, list[str]] = {}
    for grant in grants:
        grantee = grant.get("Grantee") or {}
        param = _GRANT_PARAMS.get(grant.get("Permission", ""))
        if param is None:  # WRITE applies to buckets only
            continue
        if grantee.get("Type") == "Group":
            who = f'uri="{grantee["URI"]}"'
        elif grantee.get("Type") == "AmazonCustomerByEmail":
            who = f'emailAddress="{grantee["EmailAddress"]}"'
        else:
            who = f'id="{grantee.get("ID", "")}"'
        by_param.setdefault(param, []).append(who)
    private = by_param == {"GrantFullControl": [f'id="{owner_id}"']} or not by_param
    if private:
        return {}
    return {param: ", ".join(who) for param, who in by_param.items()}


def copy_params(
    bucket: str,
    key: str,
    head: Mapping[str, Any],
    annotation: Mapping[str, str],
) -> dict[str, Any]:
    """CopyObject onto itself: merged user metadata and every property sent again, ETag-guarded.

    ACL grants are not in a HEAD: the caller adds `grant_params` of the object's ACL.
    """
    reason = refusal_before_copy(head)
    if reason:
        raise ObjectRefused(reason)
    merged = merged_metadata(head.get("Metadata") or {}, annotation)
    size = metadata_size(merged)
    if size > METADATA_LIMIT:
        raise ObjectRefused(
            f"merged metadata would be {size} bytes, over S3's {METADATA_LIMIT}-byte limit"
        )
    params: dict[str, Any] = {
        "Bucket": bucket,
        "Key": key,
        "CopySource": {"Bucket": bucket, "Key": key},
        "CopySourceIfMatch": head["ETag"],
        "MetadataDirective": "REPLACE",
        "Metadata": merged,
    }
    for name in CONTENT_HEADERS + KEPT_PROPERTIES:
        value = head.get(name)
        if value not in (None, ""):
            params[name] = value
    if "Expires" not in params and head.get("ExpiresString"):
        params["Expires"] = head["ExpiresString"]
    if params.get("ServerSideEncryption") not in ("aws:kms", "aws:kms:dsse"):
        params.pop("SSEKMSKeyId", None)
        params.pop("BucketKeyEnabled", None)
    return params
