"""Client CPU per object of `annotate` (HEAD + guarded copy each) on a loopback SeaweedFS.

    python benchmarks/transport_cpu.py [--objects 10000] [--rounds 3] [CHECKOUT ...]
    python benchmarks/transport_cpu.py --listing   # CPU per listed object of the page parser

Each CHECKOUT (default: this one) runs `python -m gos3matic annotate` from its own directory on
a fresh prefix of N objects; the CPU of the run (user + system, all threads, from the child's
rusage) less that of the same command on an empty prefix (start-up: imports, client, probe) is
divided by N. A checkout given as PATH=ENV (e.g. .=GOS3MATIC_NO_NATIVE) runs with that variable
set to 1. --tls serves S3 over HTTPS with a throwaway CA (AWS_CA_BUNDLE names it).

--listing times store/listing.py's parser alone on a 1,000-key ListObjectsV2 page as S3 writes
it (URL-encoded keys, ETag, size, storage class): the CPU per listed object, best of 5 rounds.
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


TLS_ENV: dict[str, str] = {}  # --tls: AWS_CA_BUNDLE and the https endpoint


def run(checkout: str, env_flag: str | None, server: LocalS3, prefix: str) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one annotate run."""
    env = {**server.env(), **TLS_ENV, **({env_flag: "1"} if env_flag else {})}
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
    parser.add_argument("--listing", action="store_true")
    parser.add_argument("--tls", action="store_true", help="S3 over HTTPS (a trustme CA)")
    parser.add_argument("checkouts", nargs="*", default=[str(HERE)])
    args = parser.parse_args()
    if args.listing:
        listing_cpu()
        return
    tls = None
    if args.tls:  # S3 over HTTPS, its certificate from a throwaway CA
        import trustme

        folder = Path(tempfile.mkdtemp(prefix="gos3matic-tls-"))
        ca = trustme.CA()
        issued = ca.issue_cert("127.0.0.1")
        ca.cert_pem.write_to_path(str(folder / "ca.pem"))
        issued.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
        issued.private_key_pem.write_to_path(str(folder / "key.pem"))
        tls = (str(folder / "cert.pem"), str(folder / "key.pem"))
        TLS_ENV["AWS_CA_BUNDLE"] = str(folder / "ca.pem")
    with seaweedfs_server(tls=tls) as server:
        if server.https_url:
            TLS_ENV["AWS_ENDPOINT_URL"] = server.https_url
        s3 = server.client()
        s3.create_bucket(Bucket=BUCKET)
        results: dict[str, list[tuple[float, float]]] = {c: [] for c in args.checkouts}
        for round_ in range(args.rounds):
            for index, spec in enumerate(args.checkouts):
                checkout, _, flag = spec.partition("=")
                prefix = f"run{round_}/tool{index}/job/1.1/"
                seed(server, prefix, args.objects)
                empty_cpu, _ = run(
                    checkout, flag or None, server, f"empty{round_}/tool{index}/job/1.1/"
                )
                cpu, wall = run(checkout, flag or None, server, prefix)
                results[spec].append(((cpu - empty_cpu) / args.objects, args.objects / wall))
                print(
                    f"round {round_ + 1} {spec}: {1000 * (cpu - empty_cpu) / args.objects:.3f} "
                    f"ms CPU/object (start-up {empty_cpu:.2f} s CPU), "
                    f"{args.objects / wall:.0f} objects/s",
                    flush=True,
                )
        over = " over TLS" if args.tls else ""
        print(f"\n{args.objects} objects, SeaweedFS on loopback{over}, medians of {args.rounds}:")
        for spec, rows in results.items():
            cpu = statistics.median(r[0] for r in rows)
            rate = statistics.median(r[1] for r in rows)
            print(f"  {spec}: {1000 * cpu:.3f} ms CPU/object, {rate:.0f} objects/s")


def listing_cpu() -> None:
    from gos3matic.store.listing import parse_page

    entries = "".join(
        f"<Contents><Key>app/build/job/1.1/dist/f%C3%BC{i:06}.bin</Key>"
        "<LastModified>2026-12-03T10:00:00.000Z</LastModified>"
        "<ETag>&quot;0123456789abcdef0123456789abcdef&quot;</ETag>"
        f"<Size>{i}</Size><StorageClass>STANDARD</StorageClass></Contents>"
        for i in range(1000)
    )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        "<Name>b</Name><Prefix>app/</Prefix><KeyCount>1000</KeyCount><MaxKeys>1000</MaxKeys>"
        "<EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>"
        f"<NextContinuationToken>next</NextContinuationToken>{entries}</ListBucketResult>"
    ).encode()
    rounds = []
    for _ in range(5):
        started = time.process_time()
        for _ in range(20):
            listed, _token = parse_page(body)
        rounds.append((time.process_time() - started) / (20 * len(listed)))
    print(f"listing parse: {1000 * min(rounds):.4f} ms CPU per listed object (best of 5)")


if __name__ == "__main__":
    os.environ.setdefault("TMPDIR", tempfile.gettempdir())
    main()
