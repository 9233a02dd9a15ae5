"""Client CPU per object of `annotate` (HEAD + guarded copy each) on a loopback SeaweedFS.

    python benchmarks/transport_cpu.py [--objects 10000] [--rounds 3] [--tls] [CHECKOUT ...]

Each CHECKOUT (default: this one) runs `python -m gos3matic annotate` from its own directory on
a fresh prefix of N objects; the CPU of the run (user + system, all threads, from the child's
rusage) less that of the same command on an empty prefix (start-up: imports, client, probe) is
divided by N. A checkout given as PATH=ENV (e.g. .=GOS3MATIC_NO_NATIVE) runs with that variable
set to 1. --tls serves SeaweedFS's S3 over HTTPS with a throwaway CA (trustme).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from gos3matic.devserver import LocalS3, seaweedfs_server  # noqa: E402

BUCKET = "cpu-bench"


def seed(server: LocalS3, prefix: str, count: int) -> None:
    s3 = server.client(max_pool_connections=32)

    def put(index: int) -> None:
        s3.put_object(
            Bucket=BUCKET, Key=f"{prefix}f{index:06}", Body=b"x" * 64, Metadata={"by": "bench"}
        )

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(put, range(count)))


def run(checkout: str, env_flag: str | None, server: LocalS3, prefix: str) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one annotate run."""
    env = {**server.env(), **({env_flag: "1"} if env_flag else {})}
    command = [sys.executable, "-m", "gos3matic", "annotate", BUCKET, prefix, "--label", "1"]
    command += ["--no-progress", "--json", "--no-marker", "--allow-empty"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{checkout}: exit {done.returncode}\n{done.stderr}")
    report = json.loads(done.stdout)
    if report["failed"]:
        raise SystemExit(f"{checkout}: {report['failed']} failed")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("checkouts", nargs="*", default=[str(HERE)])
    args = parser.parse_args()
    with seaweedfs_server() as server:
        s3 = server.client()
        s3.create_bucket(Bucket=BUCKET)
        results: dict[str, list[tuple[float, float]]] = {c: [] for c in args.checkouts}
        for round_ in range(args.rounds):
            for index, spec in enumerate(args.checkouts):
                checkout, _, flag = spec.partition("=")
                prefix = f"r{round_}/c{index}/"
                seed(server, prefix, args.objects)
                empty_cpu, _ = run(checkout, flag or None, server, f"empty/{round_}/{index}/")
                cpu, wall = run(checkout, flag or None, server, prefix)
                results[spec].append(((cpu - empty_cpu) / args.objects, args.objects / wall))
                print(
                    f"round {round_ + 1} {spec}: {1000 * (cpu - empty_cpu) / args.objects:.3f} "
                    f"ms CPU/object (start-up {empty_cpu:.2f} s CPU), "
                    f"{args.objects / wall:.0f} objects/s",
                    flush=True,
                )
        print(f"\n{args.objects} objects, SeaweedFS on loopback, medians of {args.rounds}:")
        for spec, rows in results.items():
            cpu = statistics.median(r[0] for r in rows)
            rate = statistics.median(r[1] for r in rows)
            print(f"  {spec}: {1000 * cpu:.3f} ms CPU/object, {rate:.0f} objects/s")


if __name__ == "__main__":
    os.environ.setdefault("TMPDIR", tempfile.gettempdir())
    main()
