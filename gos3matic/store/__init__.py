"""The store every command talks to: one bucket, its client chosen once per run.

`open_store` builds the boto3 client, checks that the bucket is there and ours before any write,
and hands the per-object hot path to the native store, HTTP on the engine's own event loop, when
a probe shows that it reaches the bucket exactly as boto3 does (store/native.py); otherwise boto3
serves every request. Its requests go out at once, not one round trip after another: against a
distant S3 each costs tens of milliseconds. boto3 is imported here, when a run needs it, not to
parse arguments.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from gos3matic.store.protocols import Connection, Store
from gos3matic.store.retry import RequestLog


def open_store(
    connection: Connection,
    bucket: str,
    max_in_flight: int,
    probe_key: str,
    log: RequestLog | None = None,
) -> Store:
    """BUCKET, reachable, with clients sized for `max_in_flight` requests at once and for part
    copies; the per-object requests share one flow control under that ceiling. Every request
    of either client is told to LOG, the run's request log (none: nothing logged)."""
    from gos3matic.store.boto import BOTO3_THREADS, Boto3Bucket, make_client
    from gos3matic.store.flow import FlowControl
    from gos3matic.store.multipart import PART_CONCURRENCY
    from gos3matic.store.native import open_object_store

    threads = min(max_in_flight, BOTO3_THREADS)
    client = make_client(connection, max_connections=threads + 4 + PART_CONCURRENCY)
    opened = Boto3Bucket(client, bucket, connection.expected_bucket_owner, log)
    flow = FlowControl(ceiling=max_in_flight)
    with ThreadPoolExecutor(3, thread_name_prefix="open") as start:
        access = start.submit(opened.check_access)
        start.submit(opened.acls_enabled)  # asked by every write; the answer is kept
        objects = start.submit(
            open_object_store, opened, connection, probe_key, max_in_flight, flow
        )
        access.result()  # a missing or foreign bucket is the first thing to say
        return Store(opened, objects.result())
