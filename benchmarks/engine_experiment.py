"""Experiment, not product code: what a callback-driven engine would gain over worker threads.

    python benchmarks/engine_experiment.py [--objects N] [--rounds R]

Both variants run in this process against one local SeaweedFS, on the same CrtObjectStore, and do
the same work per object (HEAD, GetObjectAcl, CopyObject with the merged metadata and grants):

- threads:   engine.annotate_prefix, as the CLI runs it (64 workers blocking on each request);
- callbacks: each answer's callback, on awscrt's event-loop thread, parses it and sends the next
             request; no worker threads, no waiting, no retries (a sketch, not a full engine).

s5cmd runs in the same rounds for scale. The difference between the two variants is the price of
the synchronous `ObjectStore` seam: three thread wake-ups and GIL hand-offs per object.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import threading
import time
import uuid
from typing import Any

from bench import BUCKET, Bench, _cpu_seconds

from gos3matic.core.metadata import copy_params, encode_annotation, grant_params, is_annotated
from gos3matic.core.outcome import Plan
from gos3matic.devserver import seaweedfs_server
from gos3matic.engine import annotate_prefix
from gos3matic.progress import NoProgress
from gos3matic.store import crt
from gos3matic.store.boto import Boto3Bucket, make_client
from gos3matic.store.protocols import Connection, Store

WORKERS = 64


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=int(os.environ.get("N", "2000")))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float, float]]] = {}
    with seaweedfs_server() as server:
        os.environ.update({k: v for k, v in server.env().items() if k.startswith("AWS_")})
        bench = Bench(server, args.objects, None)
        bench.seed(["gos3matic", "s5cmd"])
        connection = Connection(endpoint_url=server.endpoint_url)
        bucket = Boto3Bucket(make_client(connection, WORKERS + 4), BUCKET)
        prefix = bench.prefix("gos3matic")
        store = crt.open_object_store(bucket, connection, prefix, WORKERS)
        assert isinstance(store, crt.CrtObjectStore), "awscrt fell back to boto3"
        keys = [listed.key for listed in bucket.list_objects(prefix)]
        variants = {
            "threads": lambda label: threads(bucket, store, prefix, label),
            "callbacks": lambda label: callbacks(store, keys, label),
        }
        for number in range(args.rounds):
            for name, run in variants.items():
                label = encode_annotation({"go_pipeline_label": uuid.uuid4().hex[:8]})
                before = (_cpu_seconds(bench.server_pid), _own_cpu(), time.perf_counter())
                run(label)
                seconds = time.perf_counter() - before[2]
                cpu = _own_cpu() - before[1]
                server_cpu = _cpu_seconds(bench.server_pid) - before[0]
                results.setdefault(name, []).append((seconds, cpu, server_cpu))
                print(f"  round {number} {name:9} {seconds:5.2f}s  CPU {cpu:5.2f}s", flush=True)
            s5cmd = bench.timed("s5cmd", number, uuid.uuid4().hex[:8], expect="")
            results.setdefault("s5cmd", []).append(
                (s5cmd.seconds, s5cmd.user + s5cmd.system, s5cmd.server_cpu)
            )
            print(f"  round {number} s5cmd     {s5cmd.seconds:5.2f}s", flush=True)
    print(f"\n{args.objects} objects, {args.rounds} rounds, load average {os.getloadavg()[0]:.1f}")
    print(f"{'':10} {'median':>7} {'objects/s':>10} {'CPU s':>6} {'server CPU s':>13}")
    medians = {}
    for name, runs in results.items():
        seconds, cpu, server_cpu = (statistics.median(r[i] for r in runs) for i in range(3))
        medians[name] = seconds
        print(
            f"{name:10} {seconds:6.2f}s {args.objects / seconds:10.0f} {cpu:6.2f} "
            f"{server_cpu:13.2f}"
        )
    print(f"callbacks/threads {medians['threads'] / medians['callbacks']:.2f}x objects/s")
    print(f"callbacks/s5cmd   {medians['s5cmd'] / medians['callbacks']:.2f}x objects/s")
    return 0


def threads(bucket: Boto3Bucket, store: Any, prefix: str, label: dict[str, str]) -> None:
    plan = Plan(BUCKET, prefix, label, label, WORKERS, write_marker=False)
    outcome = annotate_prefix(plan, Store(bucket, store), NoProgress(), threading.Event(), print)
    assert outcome.tally.annotated == len(list(bucket.list_objects(prefix))), outcome.tally


def callbacks(store: Any, keys: list[str], label: dict[str, str]) -> None:
    """HEAD -> merge -> GetObjectAcl -> CopyObject, each step started by the previous answer."""
    pending = iter(keys)
    lock = threading.Lock()
    left = [len(keys)]
    finished = threading.Event()
    failures: list[BaseException] = []

    def send(method: str, operation: str, key: str, headers: Any, query: str, then: Any) -> None:
        exchange = crt._Exchange()
        request = crt.crt_http.HttpRequest(
            method,
            store.route.path(key) + query,
            crt.crt_http.HttpHeaders(
                [("host", store.route.host), ("content-length", "0"), *headers]
            ),
        )

        def on_done(error: BaseException | None = None, **_: Any) -> None:
            if error is not None:
                failures.append(error)
                done()
            else:
                then(exchange)

        store.client.make_request(
            type=crt.crt_s3.S3RequestType.DEFAULT,
            request=request,
            operation_name=operation,
            on_headers=exchange.on_headers if method == "HEAD" else None,
            on_body=None if method == "HEAD" else exchange.on_body,
            on_done=on_done,
        )

    def done(_: Any = None) -> None:
        with lock:
            left[0] -= 1
            if left[0] == 0:
                finished.set()
        start()

    def start() -> None:
        with lock:
            key = next(pending, None)
        if key is None:
            return

        def after_head(exchange: Any) -> None:
            head = store._head.parse(exchange.headers)
            if is_annotated(head, label):
                done()
                return
            params = copy_params(BUCKET, key, head, label)

            def after_acl(exchange: Any) -> None:
                body = b"".join(exchange.body)
                answer = {"status_code": 200, "headers": crt.HeadersDict(), "body": body}
                params.update(grant_params(store._parser.parse(answer, store._acl_shape)))
                send("PUT", "CopyObject", key, store._copy.headers(params), "", done)

            send("GET", "GetObjectAcl", key, [], "?acl", after_acl)

        send("HEAD", "HeadObject", key, [], "", after_head)

    for _ in range(WORKERS):
        start()
    finished.wait()
    assert not failures, failures[:3]


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    sys.exit(main())
