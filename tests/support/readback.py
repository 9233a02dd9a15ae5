"""What an independent client reads back from a bucket: the evidence, never our code's word."""

from __future__ import annotations

from typing import Any


def snapshot(s3: Any, bucket: str) -> dict[str, tuple[str, Any, dict[str, str]]]:
    """Every object's ETag, Last-Modified and metadata: equal before and after = nothing written."""
    state = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            head = s3.head_object(Bucket=bucket, Key=entry["Key"])
            state[entry["Key"]] = (head["ETag"], head["LastModified"], head.get("Metadata"))
    return state
