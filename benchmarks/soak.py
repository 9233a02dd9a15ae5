"""Soak: 20,000 objects annotated through the fault proxy, next to a 2,000-object run.

    python benchmarks/soak.py [--objects 2000,20000] [--rate 0.05] [--seed 1] [--workers N]
                              [--out soak.txt]

One local SeaweedFS; for each size a fresh prefix of small objects (seeded with s5cmd, each with
Content-Type, Cache-Control and a metadata key of its own). The CLI runs as a real process
against tests/support/faultproxy.py, which fails `--rate` of all requests (half 503 SlowDown, a
quarter 500 InternalError, a quarter replies dropped after the server acted), seeded. Then every
object is read back with a HEAD straight from the server: it must carry the label and still carry
what it had.

Reports, per size: what --json said, what the read-back found, the faults injected, the wall
time and the CLI's peak RSS; writes the same to benchmarks/results/soak.txt. SeaweedFS cannot
keep a marker's metadata (docs/s3-notes.md, "The local test servers"): exit 4 with marker_state
not-kept is expected there; every object annotated and none failed is the pass mark.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from bench import MEASURE_CHILD  # the tool's own peak RSS, not ours
from support.faultproxy import Fault, FaultProxy, Transient  # a test helper, not installed

from gos3matic.devserver import LocalS3, seaweedfs_server

BUCKET = "soak"
RESULTS = Path(__file__).resolve().parent / "results"
BIN = Path(sys.executable).parent
SEEDED = {"ContentType": "text/plain", "CacheControl": "max-age=60", "origin": "seed"}


@dataclass
class Soak:
    objects: int
    exit_code: int
    seconds: float
    max_rss_mib: float
    report: dict[str, Any]
    verified: int  # objects read back with the label and everything they had
    requests: int
    injected: dict[str, int]
    operations: dict[str, int]  # requests the proxy saw, by S3 operation

    @property
    def passed(self) -> bool:
        report = self.report
        return (
            report.get("annotated") == self.objects
            and report.get("failed") == 0
            and self.verified == self.objects
            and self.exit_code in (0, 4)
        )


def seed(server: LocalS3, s3: Any, prefix: str, count: int) -> None:
    with tempfile.TemporaryDirectory(prefix="gos3matic-soak-") as tmp:
        for index in range(count):
            Path(tmp, f"object-{index:06d}.txt").write_text(f"object {index}\n")
        subprocess.run(
            [str(BIN / "s5cmd"), "--endpoint-url", server.endpoint_url, "cp",
             "--content-type", SEEDED["ContentType"], "--cache-control", SEEDED["CacheControl"],
             "--metadata", f"origin={SEEDED['origin']}", f"{tmp}/*", f"s3://{BUCKET}/{prefix}"],
            env=server.env(), check=True, capture_output=True,
        )  # fmt: skip
    if len(keys(s3, prefix)) != count:
        raise SystemExit(f"seeding {prefix}: not {count} objects")


def keys(s3: Any, prefix: str) -> list[str]:
    return [
        entry["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        for entry in page.get("Contents", [])
        if entry["Key"] != prefix
    ]


def verify(s3: Any, prefix: str, label: str) -> int:
    def intact(key: str) -> bool:
        head = s3.head_object(Bucket=BUCKET, Key=key)
        metadata = head.get("Metadata", {})
        return (
            metadata.get("go_pipeline_label") == label
            and metadata.get("origin") == SEEDED["origin"]
            and head.get("ContentType") == SEEDED["ContentType"]
            and head.get("CacheControl") == SEEDED["CacheControl"]
        )

    with ThreadPoolExecutor(32) as pool:
        return sum(pool.map(intact, keys(s3, prefix)))


def soak(
    server: LocalS3, s3: Any, count: int, rate: float, seed_: int, workers: int | None
) -> Soak:
    prefix, label = f"soak/run/job/{count}.1/", f"soak-{count}"
    started = time.monotonic()
    seed(server, s3, prefix, count)
    print(f"  seeded {count} objects in {time.monotonic() - started:.0f} s", flush=True)
    with (
        FaultProxy(server.endpoint_url, Transient(rate).rules(), seed=seed_).running() as proxy,
        tempfile.NamedTemporaryFile("r") as measured,
    ):
        command = [sys.executable, "-c", MEASURE_CHILD, measured.name,
                   sys.executable, "-m", "gos3matic", "annotate", BUCKET, prefix,
                   "--label", label, "--json", "--quiet", "--no-progress",
                   "--endpoint-url", proxy.url,
                   *(["--workers", str(workers)] if workers else [])]  # fmt: skip
        result = subprocess.run(command, env=server.env(), capture_output=True, text=True)
        seconds, max_rss_kib, _, _ = measured.read().split()
        injected = {fault.name: proxy.count(fault) for fault in Fault if proxy.count(fault)}
        requests = proxy.total_seen()
        operations = dict(proxy.seen.most_common())
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        report = {"error": result.stderr.strip().splitlines()[-1:] or result.returncode}
    print(f"  annotated in {float(seconds):.0f} s, exit {result.returncode}; verifying", flush=True)
    return Soak(
        count,
        result.returncode,
        float(seconds),
        int(max_rss_kib) / 1024,
        report,
        verify(s3, prefix, label),
        requests,
        injected,
        operations,
    )


def table(soaks: list[Soak], rate: float, seed_: int) -> str:
    lines = [
        f"gos3matic soak through tests/support/faultproxy.py: {rate:.0%} of requests failed "
        f"(half 503 SlowDown, a quarter 500, a quarter replies dropped after the write), "
        f"seed {seed_}, SeaweedFS {time.strftime('%Y-%m-%d %H:%M')}",
        f"machine: {platform.platform()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} "
        "(shared: times are indicative, counts are exact)",
        "",
        f"{'objects':>8} {'annotated':>9} {'failed':>6} {'verified':>8} {'requests':>8} "
        f"{'faults':>6} {'ratio':>6} {'seconds':>7} {'obj/s':>6} {'peak RSS':>9} "
        f"{'exit':>4}  marker",
    ]
    for s in soaks:
        faults = sum(n for name, n in s.injected.items() if name not in ("DELAY", "CALL"))
        lines.append(
            f"{s.objects:>8} {s.report.get('annotated', '?'):>9} {s.report.get('failed', '?'):>6} "
            f"{s.verified:>8} {s.requests:>8} {faults:>6} {faults / max(s.requests, 1):>6.1%} "
            f"{s.seconds:>7.1f} {s.objects / s.seconds:>6.0f} {s.max_rss_mib:>6.1f} MiB "
            f"{s.exit_code:>4}  {s.report.get('marker_state', '?')}"
        )
    lines.append("")
    for s in soaks:
        lines.append(f"{s.objects} objects, faults injected: {s.injected}")
        lines.append(f"{s.objects} objects, requests: {s.operations}")
    lines += [
        "",
        "pass mark: annotated == objects, failed == 0, and a HEAD of every object finds the label",
        "with its Content-Type, Cache-Control and own metadata kept. Exit 4 / not-kept: SeaweedFS",
        "drops metadata on keys ending in '/', the marker's (see docs/s3-notes.md).",
        "result: " + ("PASS" if all(s.passed for s in soaks) else "FAIL"),
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", default="2000,20000", help="comma-separated sizes")
    parser.add_argument("--rate", type=float, default=0.05, help="share of requests failed")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, help="gos3matic --workers (default: its own)")
    parser.add_argument("--out", default="soak.txt", help="file name under benchmarks/results")
    args = parser.parse_args()
    sizes = [int(size) for size in args.objects.split(",")]

    soaks = []
    with seaweedfs_server() as server:
        s3 = server.client(max_pool_connections=32)
        s3.create_bucket(Bucket=BUCKET)
        for count in sizes:
            print(f"{count} objects:", flush=True)
            soaks.append(soak(server, s3, count, args.rate, args.seed, args.workers))
    text = table(soaks, args.rate, args.seed)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / args.out).write_text(text + "\n")
    return 0 if all(s.passed for s in soaks) else 1


if __name__ == "__main__":
    sys.exit(main())
