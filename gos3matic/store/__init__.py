"""The store every command talks to: one bucket, its client chosen once per run.

`open_store` builds the boto3 client, checks that the bucket is there and ours before any write,
and hands the per-object hot path to awscrt's native client when a probe shows that it reaches the
bucket exactly as boto3 does (store/crt.py); otherwise boto3 serves every request.
"""

from __future__ import annotations

from gos3matic.store.boto import Boto3Bucket, make_client
from gos3matic.store.protocols import Connection, Store


def open_store(connection: Connection, bucket: str, workers: int, probe_key: str) -> Store:
    """BUCKET, reachable, with a client sized for `workers` requests at once and part copies."""
    from gos3matic.store.crt import open_object_store  # awscrt and s3transfer: a real run only
    from gos3matic.store.multipart import PART_CONCURRENCY

    client = make_client(connection, max_connections=workers + 4 + PART_CONCURRENCY)
    opened = Boto3Bucket(client, bucket, connection.expected_bucket_owner)
    opened.check_access()
    objects = open_object_store(opened, connection, probe_key, workers)
    return Store(opened, objects)
