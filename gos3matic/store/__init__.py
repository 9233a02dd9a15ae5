"""The store every command talks to: one bucket, its client chosen once per run.

`open_store` builds the boto3 client, checks that the bucket is there and ours before any write,
and hands the per-object hot path to awscrt's native client when a probe shows that it reaches the
bucket exactly as boto3 does (store/crt.py); otherwise boto3 serves every request.
"""

from __future__ import annotations

from gos3matic.store.boto import BOTO3_THREADS, Boto3Bucket, make_client
from gos3matic.store.flow import FlowControl
from gos3matic.store.protocols import Connection, Store


def open_store(connection: Connection, bucket: str, max_in_flight: int, probe_key: str) -> Store:
    """BUCKET, reachable, with clients sized for `max_in_flight` requests at once and for part
    copies; the per-object requests share one flow control under that ceiling."""
    from gos3matic.store.crt import open_object_store  # awscrt and s3transfer: a real run only
    from gos3matic.store.multipart import PART_CONCURRENCY

    threads = min(max_in_flight, BOTO3_THREADS)
    client = make_client(connection, max_connections=threads + 4 + PART_CONCURRENCY)
    opened = Boto3Bucket(client, bucket, connection.expected_bucket_owner)
    opened.check_access()
    flow = FlowControl(ceiling=max_in_flight)
    objects = open_object_store(opened, connection, probe_key, max_in_flight, flow)
    return Store(opened, objects)
