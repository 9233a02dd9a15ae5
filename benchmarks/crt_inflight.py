"""How many requests awscrt's S3Client keeps on the wire, by throughput target and connection cap.

    python benchmarks/crt_inflight.py [--requests N] [--rtt-ms 200]

awscrt's S3Client alone (built as gos3matic/crt.py builds it: SigV4 with static keys, no TLS, its
own retries off) sends N HeadObject requests of type DEFAULT at once to a local SeaweedFS through
benchmarks/netem.py's forwarder, which adds a round trip to every answer. Each configuration runs
in a fresh process, twice on the same client: "cold" (connections still to open) and "warm".

In flight is counted by the forwarder: requests it has received whose answer it has not yet
delivered (peak, and mean over the batch). Against a latency-bound server requests/s is about
mean in flight / round trip, so the mean says how many requests the client really overlaps.
Also printed: the client process's peak RSS, and the forwarder's CPU time (it must not be the
limit). Results go to benchmarks/results/crt-inflight.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from netem import NetemProcess, Stats

BUCKET = "inflight"
KEYS = 100  # distinct objects the HEADs go round
RESULTS = Path(__file__).resolve().parent / "results"
# (label, throughput_target_gbps, max_active_connections_override); None: awscrt's default
CONFIGS: list[tuple[str, float | None, int | None]] = [
    ("defaults", None, None),
    ("target 10", 10, None),
    ("target 25", 25, None),
    ("target 50", 50, None),
    ("target 100", 100, None),
    ("target 200", 200, None),
    ("target 1000", 1000, None),
    ("defaults, override 512", None, 512),
    ("target 100, override 64", 100, 64),
    ("target 1000, override 1000", 1000, 1000),
    ("target 1000, override 256", 1000, 256),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="HEADs sent at once")
    parser.add_argument("--rtt-ms", type=float, default=200.0)
    parser.add_argument("--only", help="comma-separated config labels (default: all)")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # JSON: one configuration to run
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(**json.loads(args.child))), flush=True)
        return 0

    from gos3matic.devserver import seaweedfs_server  # the parent alone needs the server

    configs = CONFIGS
    if args.only:
        wanted = {label.strip() for label in args.only.split(",")}
        configs = [config for config in CONFIGS if config[0] in wanted]
    rows = []
    with seaweedfs_server() as server:
        client = server.client()
        client.create_bucket(Bucket=BUCKET)
        for index in range(KEYS):
            client.put_object(Bucket=BUCKET, Key=f"object-{index:04d}", Body=b"x")
        port = int(server.endpoint_url.rsplit(":", 1)[1])
        header = (
            f"{args.requests} HeadObject at once, RTT {args.rtt_ms:g} ms through netem, "
            f"awscrt {_version('awscrt')}, {os.cpu_count()} cores, "
            f"load average {os.getloadavg()[0]:.1f} at the start"
        )
        print(header, flush=True)
        print(_table_head(), flush=True)
        for label, target, override in configs:
            row = _run_child(label, target, override, port, args, server)
            rows.append(row)
            print(_table_row(row), flush=True)
    text = "\n".join(
        [
            header,
            _table_head(),
            *(_table_row(row) for row in rows),
            f"load average {os.getloadavg()[0]:.1f} at the end",
        ]
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "crt-inflight.txt").write_text(text + "\n\n" + _legend() + "\n")
    (RESULTS / "crt-inflight.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"results: {(RESULTS / 'crt-inflight.txt').relative_to(RESULTS.parent.parent)}")
    return 0


def _run_child(
    label: str,
    target: float | None,
    override: int | None,
    port: int,
    args: argparse.Namespace,
    server: Any,
) -> dict[str, Any]:
    spec = {
        "label": label,
        "target": target,
        "override": override,
        "port": port,
        "requests": args.requests,
        "rtt_ms": args.rtt_ms,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
    }
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise SystemExit(f"{label} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_one(
    label: str,
    target: float | None,
    override: int | None,
    port: int,
    requests: int,
    rtt_ms: float,
    access_key: str,
    secret_key: str,
) -> dict[str, Any]:
    from awscrt import auth, http, s3

    baseline_kib = _rss_kib("VmRSS")  # Python, awscrt and the forwarder's client imported
    row: dict[str, Any] = {"label": label, "target": target, "override": override}
    with NetemProcess(("127.0.0.1", port), rtt_ms=rtt_ms) as netem:
        signing = auth.AwsSigningConfig(
            algorithm=auth.AwsSigningAlgorithm.V4,
            signature_type=auth.AwsSignatureType.HTTP_REQUEST_HEADERS,
            credentials_provider=auth.AwsCredentialsProvider.new_static(access_key, secret_key),
            region="us-east-1",
            service="s3",
            use_double_uri_encode=False,
            should_normalize_uri_path=False,
            signed_body_value="e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            signed_body_header_type=auth.AwsSignedBodyHeaderType.X_AMZ_CONTENT_SHA_256,
        )
        client = s3.S3Client(
            region="us-east-1",
            signing_config=signing,
            tls_mode=s3.S3RequestTlsMode.DISABLED,
            throughput_target_gbps=target,
            max_active_connections_override=override,
            retry_config=s3.S3RetryConfig(retry_mode=s3.S3RetryMode.NONE),
            connect_timeout_ms=10_000,
        )
        host = f"127.0.0.1:{netem.port}"
        for batch in ("cold", "warm"):
            before = netem.snapshot(reset_peaks=True)
            seconds, failures = _batch(client, s3, http, host, requests)
            during = netem.snapshot().since(before)
            row[batch] = _measures(during, seconds, failures, requests)
        del client
    row["rss_mib"] = _rss_kib() / 1024
    row["rss_over_baseline_mib"] = (_rss_kib() - baseline_kib) / 1024
    return row


def _batch(client: Any, s3: Any, http: Any, host: str, count: int) -> tuple[float, int]:
    """`count` HEADs handed to the client at once; seconds until the last one is done."""
    left = [count]
    failures = [0]
    lock = threading.Lock()
    finished = threading.Event()

    def on_done(error: BaseException | None = None, **_: Any) -> None:
        with lock:
            failures[0] += error is not None
            left[0] -= 1
            if left[0] == 0:
                finished.set()

    started = time.perf_counter()
    for index in range(count):
        request = http.HttpRequest(
            "HEAD",
            f"/{BUCKET}/object-{index % KEYS:04d}",
            http.HttpHeaders([("host", host), ("content-length", "0")]),
        )
        client.make_request(
            type=s3.S3RequestType.DEFAULT,
            request=request,
            operation_name="HeadObject",
            on_done=on_done,
        )
    if not finished.wait(600):
        raise SystemExit(f"{left[0]} of {count} requests not done after 600 s")
    return time.perf_counter() - started, failures[0]


def _measures(during: Stats, seconds: float, failures: int, requests: int) -> dict[str, Any]:
    return {
        "seconds": seconds,
        "requests_per_second": requests / seconds,
        "peak_in_flight": during.peak_in_flight,
        "mean_in_flight": during.in_flight_seconds / during.wall_seconds,
        "connections": during.connections,
        "failures": failures,
        "forwarder_cpu_share": during.cpu_seconds / during.wall_seconds,
    }


def _rss_kib(field: str = "VmHWM") -> int:
    """This process's peak (VmHWM) or current (VmRSS) resident set. Not ru_maxrss: Linux counts
    the parent's memory before exec in it, a floor of the parent's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def _version(package: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _table_head() -> str:
    return (
        f"{'':28} {'cold: peak':>10} {'mean':>5} {'req/s':>6} {'conns':>5}   "
        f"{'warm: peak':>10} {'mean':>5} {'req/s':>6}   {'RSS MiB':>11} {'netem CPU':>9}"
    )


def _table_row(row: dict[str, Any]) -> str:
    cold, warm = row["cold"], row["warm"]
    failed = cold["failures"] + warm["failures"]
    cpu = max(cold["forwarder_cpu_share"], warm["forwarder_cpu_share"])
    return (
        f"{row['label']:28} {cold['peak_in_flight']:10d} {cold['mean_in_flight']:5.0f} "
        f"{cold['requests_per_second']:6.0f} {cold['connections']:5d}   "
        f"{warm['peak_in_flight']:10d} {warm['mean_in_flight']:5.0f} "
        f"{warm['requests_per_second']:6.0f}   {row['rss_mib']:5.1f} "
        f"+{row['rss_over_baseline_mib']:4.1f} {cpu:9.0%}"
        + (f"  {failed} FAILED" if failed else "")
    )


def _legend() -> str:
    return (
        "peak / mean: requests on the wire as the forwarder sees them (received, answer not yet\n"
        "delivered); req/s: requests / seconds from the first make_request to the last on_done;\n"
        "conns: connections the client opened in the batch; RSS MiB: the client process's peak\n"
        "(Python, awscrt), then '+' what it grew by once the client existed; netem CPU: the\n"
        "forwarder's CPU time / wall time over a batch, the higher of the two."
    )


if __name__ == "__main__":
    sys.exit(main())
