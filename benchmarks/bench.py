"""gos3matic side by side with s5cmd and aws-cli, in every regime, on local servers, in one run.

    python benchmarks/bench.py [--objects N] [--rounds R] [--regimes a,b] [--workers W]
                                (or N=20000 / ROUNDS=R in the env)

Regimes (--regimes, all by default):

  loopback   straight to a local SeaweedFS: bound by CPU, as no real S3 is;
  loopback10k  the same on 10,000 objects (--large), whatever N: the steady state, start-up
             a small part of it;
  rtt50      through benchmarks/netem.py, which adds 50 ms to every answer;
  rtt200     the same with 200 ms: bound by latency for every tool, as real S3 is;
  throttled  through netem at RTT 50 ms allowing 400 requests/s (token bucket, burst 40) and
             answering S3's 503 SlowDown above it; every tool runs, once;
  startup    each tool on an empty prefix, straight to SeaweedFS: its fixed cost;
  backfill   `gos3matic backfill` of 100 revisions x 20 objects against one 2,000-object
             annotate, both at RTT 50 ms on moto (SeaweedFS drops a marker's metadata).

Each tool has its own prefix of N identical small objects (Content-Type, Cache-Control and a user
metadata key, so that what each tool keeps is visible), used in every regime. Rounds alternate the
tools in a rotating order and every round uses a new label, so every object needs a copy; then
gos3matic runs again with its last label (the re-run: everything already annotated). Medians of
the rounds, and the ratios of each round, since the rounds of one tool and the others interleave.

Through netem, every run also has what the forwarder saw: requests, throttled ones, requests in
flight (peak and mean) and the forwarder's own CPU. gos3matic's --json counts (requests, retries,
throttled, peak_in_flight, when its engine reports them) are kept too.

Every run has the client's CPU (user + system of its process and children, from os.wait4) per
object beside its objects/s, and the same-run ratio of it to each other tool's.

Writes a text table, the JSON and a bar chart (objects/s and CPU per object per regime and tool;
needs matplotlib) to benchmarks/results/. The machine is shared and noisy: quote the ratios of
one run, not the times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

from netem import NetemProcess

from gos3matic.devserver import LocalS3, moto_server, seaweedfs_server
from gos3matic.store.boto import Boto3Bucket, make_client
from gos3matic.store.native import open_object_store
from gos3matic.store.protocols import Connection

BUCKET = "bench"
TOOLS = ("gos3matic", "s5cmd", "aws")
BOTO3 = (
    "gos3matic-boto3"  # optional: the same CLI with GOS3MATIC_NO_CRT=1, the engine before awscrt
)
RERUN = "gos3matic re-run"
RESULTS = Path(__file__).resolve().parent / "results"
BIN = Path(sys.executable).parent
SEEDED = {"ContentType": "text/plain", "CacheControl": "max-age=60"}  # and origin=seed
ENGINE_COUNTS = ("requests", "retries", "throttled", "peak_in_flight")  # the new engine's --json
THROTTLE_RPS = 400.0
LARGE = 10_000  # objects of the loopback10k regime, whatever --objects says
BACKFILL_REVISIONS, BACKFILL_OBJECTS = 100, 20
BACKFILL_PACKAGE = "app/build/package"
# Runs the tool from a small fresh process: Linux counts a child's memory before its exec in its
# peak RSS, so a tool started straight from this process would inherit our ~70 MB as its floor.
MEASURE_CHILD = """
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
with open(sys.argv[1], "w") as out:
    print(seconds, usage.ru_maxrss, usage.ru_utime, usage.ru_stime, file=out)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@dataclass(frozen=True)
class Regime:
    key: str
    title: str
    rtt_ms: float | None  # None: straight to the server, no forwarder
    throttle_rps: float | None
    rounds: int  # unless --rounds says otherwise
    reruns: bool
    objects: int | None = None  # None: --objects


REGIMES = {
    regime.key: regime
    for regime in (
        Regime("loopback", "loopback", None, None, 3, True),
        Regime("loopback10k", "loopback, 10,000 objects", None, None, 3, False, LARGE),
        Regime("rtt50", "RTT 50 ms", 50.0, None, 3, True),
        Regime("rtt200", "RTT 200 ms", 200.0, None, 2, True),
        Regime("throttled", f"throttled {THROTTLE_RPS:.0f}/s", 50.0, THROTTLE_RPS, 1, False),
    )
}
# their rounds; backfill runs on moto, whose CPU bounds both commands (~25 s each on 2 cores)
EXTRAS = {"startup": 5, "backfill": 1}


@dataclass
class Run:
    tool: str
    round: int
    seconds: float
    user: float  # CPU seconds of the tool's process (and its children)
    system: float
    max_rss_kib: int
    server_cpu: float  # CPU seconds the server spent meanwhile
    objects: int
    regime: str = "loopback"
    exit_code: int = 0
    done: int | None = None  # objects the tool says it annotated (or skipped, on a re-run)
    engine: dict[str, Any] = field(default_factory=dict)  # gos3matic's own ENGINE_COUNTS
    # what the forwarder saw during the run (None: no forwarder)
    requests: int | None = None
    forwarded: int | None = None
    throttled: int | None = None
    peak_in_flight: int | None = None
    mean_in_flight: float | None = None
    forwarder_cpu: float | None = None  # CPU seconds of the forwarder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=int(os.environ.get("N", "2000")))
    parser.add_argument(
        "--rounds",
        type=int,
        default=int(os.environ["ROUNDS"]) if os.environ.get("ROUNDS") else None,
        help="rounds of every regime (default: 3 loopback and RTT 50, 2 RTT 200, 1 throttled "
        "and backfill, 5 startup)",
    )
    parser.add_argument("--workers", type=int, help="gos3matic --workers (default: its own)")
    parser.add_argument(
        "--large", type=int, default=LARGE, help=f"objects of loopback10k (default {LARGE})"
    )
    parser.add_argument(
        "--tools",
        default=",".join(TOOLS),
        help=f"comma-separated, among {', '.join(TOOLS)}, {BOTO3}",
    )
    every = [*REGIMES, *EXTRAS]
    parser.add_argument("--regimes", default=",".join(every), help=", ".join(every))
    parser.add_argument("--no-chart", action="store_true", help="no PNG (no matplotlib needed)")
    args = parser.parse_args()
    tools = [tool for tool in args.tools.split(",") if tool]
    if unknown := set(tools) - {*TOOLS, BOTO3}:
        parser.error(f"unknown tools: {', '.join(sorted(unknown))}")
    regimes = [key for key in args.regimes.split(",") if key]
    if unknown := set(regimes) - set(every):
        parser.error(f"unknown regimes: {', '.join(sorted(unknown))}")

    REGIMES["loopback10k"] = replace(
        REGIMES["loopback10k"], objects=args.large, title=f"loopback, {args.large:,} objects"
    )
    machine = describe_machine()
    print(_machine_line(machine), flush=True)
    started = time.monotonic()
    runs: list[Run] = []
    kept: dict[str, Any] = {}
    if set(regimes) - {"backfill"}:
        with seaweedfs_server() as server:
            bench = Bench(server, args.objects, args.workers)
            machine["gos3matic_hot_path"] = bench.hot_path()
            print(f"gos3matic hot path: {machine['gos3matic_hot_path']}", flush=True)
            seeding = time.monotonic()
            bench.seed(tools)
            for count in sorted({REGIMES[k].objects for k in regimes if k in REGIMES} - {None}):
                if count != args.objects:
                    bench.seed(tools, count)
            print(f"seeded {len(tools)} x {args.objects} objects in {_since(seeding)}", flush=True)
            for key in regimes:
                if key in REGIMES:
                    regime = REGIMES[key]
                    runs += bench.regime(regime, tools, args.rounds or regime.rounds)
            if "startup" in regimes:
                runs += bench.startup(tools, args.rounds or EXTRAS["startup"])
            kept = {tool: bench.kept(tool) for tool in tools}
    if "backfill" in regimes:
        runs += backfill_regime(args.objects, args.workers, args.rounds or EXTRAS["backfill"])
    machine["load_average_end"] = os.getloadavg()
    machine["bench_seconds"] = round(time.monotonic() - started, 1)
    result = report(machine, args, runs, kept)
    save(result, args.objects, chart=not args.no_chart)
    return 0


class Bench:
    def __init__(self, server: LocalS3, objects: int, workers: int | None):
        self.server = server
        self.objects = objects
        self.workers = workers
        self.env = server.env()
        self.client = server.client()
        self.client.create_bucket(Bucket=BUCKET)
        self.server_pid = _server_pid(server.endpoint_url)
        self.labels: dict[str, str] = {}

    @property
    def port(self) -> int:
        return int(self.server.endpoint_url.rsplit(":", 1)[1])

    def prefix(self, tool: str, objects: int | None = None) -> str:
        """GoCD's <pipeline>/<stage>/<job>/<N>.<M>/ layout; another count, another pipeline."""
        if objects is None or objects == self.objects:
            return f"{tool}/bench/job/1.1/"
        return f"{tool}/bench{objects}/job/1.1/"

    def hot_path(self) -> str:
        """Which store the CLI's open_object_store picks against this server, with this env."""
        if os.environ.get("GOS3MATIC_NO_CRT"):
            return "boto3 (GOS3MATIC_NO_CRT is set)"
        saved = dict(os.environ)
        os.environ.update(self.env)
        try:
            connection = Connection(endpoint_url=self.server.endpoint_url)
            bucket = Boto3Bucket(make_client(connection, 8), BUCKET)
            store = open_object_store(bucket, connection, self.prefix("gos3matic"), 4)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        native = type(store).__name__ == "NativeObjectStore"
        return "native (NativeObjectStore)" if native else "boto3 (the native store fell back)"

    def seed(self, tools: list[str], objects: int | None = None) -> None:
        objects = objects or self.objects
        with tempfile.TemporaryDirectory(prefix="gos3matic-bench-") as tmp:
            for index in range(objects):
                Path(tmp, f"object-{index:06d}.txt").write_text(f"object {index}\n")
            for tool in tools:
                self.upload(f"{tmp}/*", self.prefix(tool, objects))
                listed = self.count(self.prefix(tool, objects))
                if listed != objects:
                    raise SystemExit(f"seeding {tool}: {listed} objects, not {objects}")

    def upload(self, pattern: str, prefix: str) -> None:
        """Files matching `pattern` under `prefix`, with SEEDED's properties, by s5cmd."""
        self._check(
            [
                str(BIN / "s5cmd"),
                "--endpoint-url",
                self.server.endpoint_url,
                "cp",
                "--content-type",
                SEEDED["ContentType"],
                "--cache-control",
                SEEDED["CacheControl"],
                "--metadata",
                "origin=seed",
                pattern,
                f"s3://{BUCKET}/{prefix}",
            ]
        )

    def count(self, prefix: str) -> int:
        return sum(
            page.get("KeyCount", 0)
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=BUCKET, Prefix=prefix
            )
        )

    def command(
        self, tool: str, label: str, endpoint: str | None = None, prefix: str | None = None
    ) -> list[str]:
        prefix = prefix if prefix is not None else self.prefix(tool)
        url = endpoint or self.server.endpoint_url
        if tool.startswith("gos3matic"):
            workers = ["--workers", str(self.workers)] if self.workers else []
            # --json only to check the tally; SeaweedFS cannot keep a marker: --no-marker
            return [
                sys.executable,
                "-m",
                "gos3matic",
                "annotate",
                BUCKET,
                prefix,
                "--label",
                label,
                "--no-marker",
                "--quiet",
                "--no-progress",
                "--json",
                "--endpoint-url",
                url,
                *workers,
            ]
        if tool == "s5cmd":
            return [
                str(BIN / "s5cmd"),
                "--endpoint-url",
                url,
                "cp",
                "--metadata-directive",
                "REPLACE",
                "--metadata",
                f"go_pipeline_label={label}",
                f"s3://{BUCKET}/{prefix}*",
                f"s3://{BUCKET}/{prefix}",
            ]
        return [
            str(BIN / "aws"),
            "s3",
            "cp",
            "--recursive",
            "--metadata-directive",
            "REPLACE",
            "--metadata",
            f"go_pipeline_label={label}",
            f"s3://{BUCKET}/{prefix}",
            f"s3://{BUCKET}/{prefix}",
            "--endpoint-url",
            url,
        ]

    def regime(self, regime: Regime, tools: list[str], rounds: int) -> list[Run]:
        """`rounds` rounds of every tool, then as many gos3matic re-runs, through the regime's
        forwarder (none on loopback)."""
        print(f"\n{regime.title}: {rounds} rounds", flush=True)
        throttled = regime.throttle_rps is not None
        count = regime.objects or self.objects
        runs: list[Run] = []
        with _forwarder(self.port, regime) as netem:
            endpoint = netem.endpoint_url if netem else None
            for number in range(rounds):
                shift = number % len(tools)
                for tool in tools[shift:] + tools[:shift]:  # a rotating order: no tool first
                    label = f"{regime.key}-r{number}-{uuid.uuid4().hex[:8]}"
                    self.labels[tool] = label
                    command = self.command(tool, label, endpoint, self.prefix(tool, count))
                    run = self.timed(
                        tool,
                        number,
                        label,
                        "annotated",
                        regime.key,
                        endpoint,
                        netem,
                        throttled,
                        command,
                        count,
                    )
                    if throttled and tool.startswith("gos3matic"):
                        run.engine["read_back_annotated"] = self.annotated(tool, label)
                    runs.append(run)
                    print(_run_line(run), flush=True)
            if regime.reruns and "gos3matic" in tools:
                for number in range(rounds):
                    run = self.timed(
                        "gos3matic",
                        number,
                        self.labels["gos3matic"],
                        "skipped",
                        regime.key,
                        endpoint,
                        netem,
                    )
                    run.tool = RERUN
                    runs.append(run)
                    print(_run_line(run), flush=True)
        return runs

    def startup(self, tools: list[str], rounds: int) -> list[Run]:
        """Each tool on a prefix that holds nothing: what it costs before the first object."""
        print(f"\nstartup: {rounds} rounds on an empty prefix", flush=True)
        runs = []
        for number in range(rounds):
            for tool in tools:
                label = f"startup-{uuid.uuid4().hex[:8]}"
                command = self.command(tool, label, prefix="empty/bench/job/1.1/")
                run = self.timed(tool, number, label, "", "startup", command=command, tolerate=True)
                runs.append(run)
                print(_run_line(run), flush=True)
        return runs

    def timed(
        self,
        tool: str,
        number: int,
        label: str,
        expect: str,
        regime: str = "loopback",
        endpoint: str | None = None,
        netem: NetemProcess | None = None,
        tolerate: bool = False,
        command: list[str] | None = None,
        objects: int | None = None,
    ) -> Run:
        """One run of `tool` measured from outside; `expect`: the --json count that must be N.
        `tolerate`: a failed run is recorded, not fatal (throttled, or nothing to annotate)."""
        env = {**self.env, "GOS3MATIC_NO_CRT": "1"} if tool == BOTO3 else self.env
        before = netem.snapshot(reset_peaks=True) if netem else None
        server_before = _cpu_seconds(self.server_pid)
        launched = launch(command or self.command(tool, label, endpoint), env)
        server_cpu = _cpu_seconds(self.server_pid) - server_before
        objects = objects or self.objects
        run = launched.run(tool, number, objects, server_cpu, regime)
        if netem and before:
            _add_forwarder(run, netem.snapshot().since(before))
        if run.exit_code != 0 and not tolerate:
            raise SystemExit(f"{tool} failed (exit {run.exit_code}):\n{launched.stderr[-2000:]}")
        if tool.startswith("gos3matic"):
            summary = _json_summary(launched.stdout)
            run.engine.update({name: summary[name] for name in ENGINE_COUNTS if name in summary})
            if "revisions" in summary:  # backfill: one tally per revision
                run.done = sum(r.get("annotated", 0) for r in summary["revisions"])
            if expect:
                run.done = summary.get(expect, run.done)
                if run.done != objects and not tolerate:
                    raise SystemExit(f"gos3matic {expect} {run.done} objects, not {objects}")
        return run

    def annotated(self, tool: str, label: str) -> int:
        """Objects of the tool's prefix that carry `label`, as an independent client reads them."""
        keys = [
            item["Key"]
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=BUCKET, Prefix=self.prefix(tool)
            )
            for item in page.get("Contents", [])
        ]

        def carries(key: str) -> bool:
            head = self.client.head_object(Bucket=BUCKET, Key=key)
            return any(value == label for value in head.get("Metadata", {}).values())

        with ThreadPoolExecutor(16) as pool:
            return sum(pool.map(carries, keys))

    def kept(self, tool: str) -> dict[str, Any]:
        """What a sample object still carries of what it was seeded with."""
        key = f"{self.prefix(tool)}object-000000.txt"
        head = self.client.head_object(Bucket=BUCKET, Key=key)
        return {
            "ContentType": head.get("ContentType"),
            "CacheControl": head.get("CacheControl"),
            "Metadata": head.get("Metadata"),
        }

    def _check(self, command: list[str]) -> None:
        done = subprocess.run(command, env=self.env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{command[0]} failed:\n{done.stderr[-2000:]}")


@contextmanager
def _forwarder(port: int, regime: Regime) -> Iterator[NetemProcess | None]:
    if regime.rtt_ms is None and regime.throttle_rps is None:
        yield None
        return
    with NetemProcess(("127.0.0.1", port), regime.rtt_ms or 0.0, regime.throttle_rps) as netem:
        yield netem


@dataclass
class Launched:
    exit_code: int
    seconds: float
    max_rss_kib: int
    user: float
    system: float
    stdout: str
    stderr: str

    def run(self, tool: str, number: int, objects: int, server_cpu: float, regime: str) -> Run:
        return Run(
            tool,
            number,
            self.seconds,
            self.user,
            self.system,
            self.max_rss_kib,
            server_cpu,
            objects,
            regime=regime,
            exit_code=self.exit_code,
        )


def launch(command: list[str], env: dict[str, str]) -> Launched:
    """Run `command` through MEASURE_CHILD: its wall time, peak RSS and CPU, and its output."""
    with tempfile.TemporaryDirectory(prefix="gos3matic-bench-") as tmp:
        measures, out, err = Path(tmp, "measures"), Path(tmp, "out"), Path(tmp, "err")
        with out.open("wb") as stdout, err.open("wb") as stderr:
            exit_code = subprocess.call(
                [sys.executable, "-c", MEASURE_CHILD, str(measures), *command],
                env=env,
                stdout=stdout,
                stderr=stderr,
            )
        seconds, max_rss, user, system = measures.read_text().split()
        return Launched(
            exit_code,
            float(seconds),
            int(max_rss),
            float(user),
            float(system),
            out.read_text(errors="replace"),
            err.read_text(errors="replace"),
        )


def _json_summary(stdout: str) -> dict[str, Any]:
    try:
        summary = json.loads(stdout)
    except ValueError:
        return {}
    return summary if isinstance(summary, dict) else {}


def _add_forwarder(run: Run, seen: Any) -> None:
    run.requests, run.forwarded, run.throttled = seen.requests, seen.forwarded, seen.throttled
    run.peak_in_flight = seen.peak_in_flight
    run.mean_in_flight = seen.in_flight_seconds / run.seconds if run.seconds else 0.0
    run.forwarder_cpu = seen.cpu_seconds


# -- backfill ---------------------------------------------------------------------------------


def backfill_regime(objects: int, workers: int | None, rounds: int) -> list[Run]:
    """`gos3matic backfill` of 100 revisions x 20 objects vs one annotate of as many objects,
    at RTT 50 ms, on moto: SeaweedFS drops the metadata of a marker, and backfill stops there."""
    total = BACKFILL_REVISIONS * BACKFILL_OBJECTS
    print(
        f"\nbackfill: {BACKFILL_REVISIONS} revisions x {BACKFILL_OBJECTS} objects vs one "
        f"annotate of {total}, RTT 50 ms, moto, {rounds} rounds",
        flush=True,
    )
    runs: list[Run] = []
    with moto_server() as server, tempfile.TemporaryDirectory(prefix="gos3matic-bench-") as tmp:
        bench = Bench(server, total, workers)
        revisions = [f"{number}.1" for number in range(1, BACKFILL_REVISIONS + 1)]
        tree = Path(tmp, "tree")
        for revision in revisions:
            folder = tree / BACKFILL_PACKAGE / revision
            folder.mkdir(parents=True)
            for index in range(BACKFILL_OBJECTS):
                (folder / f"object-{index:03d}.txt").write_text(f"{revision} {index}\n")
        single = tree / "app/build/single/1.1"
        single.mkdir(parents=True)
        for index in range(total):
            (single / f"object-{index:06d}.txt").write_text(f"object {index}\n")
        bench.upload(f"{tree}/*", "")
        if bench.count("app/") != 2 * total:
            raise SystemExit(f"seeding moto: {bench.count('app/')} objects, not {2 * total}")
        label_map = Path(tmp, "labels")
        regime = Regime("backfill", "backfill", 50.0, None, rounds, False)
        with _forwarder(bench.port, regime) as netem:
            assert netem is not None
            for number in range(rounds):
                # Incomplete again, and new labels: every object of every revision needs a copy.
                bench.client.delete_objects(
                    Bucket=BUCKET,
                    Delete={"Objects": [{"Key": f"{BACKFILL_PACKAGE}/{r}/"} for r in revisions]},
                )
                tag = uuid.uuid4().hex[:6]
                label_map.write_text("".join(f"{r}={r}-{tag}\n" for r in revisions))
                commands = {
                    "gos3matic backfill": _backfill_command(netem.endpoint_url, label_map, workers),
                    "gos3matic annotate": [
                        *_annotate_with_marker(netem.endpoint_url, f"single-{tag}", workers)
                    ],
                }
                order = list(commands) if number % 2 == 0 else list(commands)[::-1]
                for tool in order:
                    run = bench.timed(
                        tool,
                        number,
                        "",
                        "annotated",
                        "backfill",
                        netem=netem,
                        command=commands[tool],
                    )
                    runs.append(run)
                    print(_run_line(run), flush=True)
    return runs


def _backfill_command(endpoint: str, label_map: Path, workers: int | None) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gos3matic",
        "backfill",
        BUCKET,
        BACKFILL_PACKAGE,
        "--label-map",
        str(label_map),
        "--json",
        "--quiet",
        "--no-progress",
        "--endpoint-url",
        endpoint,
        *(["--workers", str(workers)] if workers else []),
    ]


def _annotate_with_marker(endpoint: str, label: str, workers: int | None) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gos3matic",
        "annotate",
        BUCKET,
        "app/build/single/1.1",
        "--label",
        label,
        "--json",
        "--quiet",
        "--no-progress",
        "--endpoint-url",
        endpoint,
        *(["--workers", str(workers)] if workers else []),
    ]


# -- the machine ------------------------------------------------------------------------------


def _server_pid(endpoint_url: str) -> int | None:
    port = endpoint_url.rsplit(":", 1)[1]
    flags = {f"-s3.port={port}".encode(), port.encode()}  # weed mini's flag, moto_server's -p
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if flags & set(cmdline) and not any(b"netem.py" in part for part in cmdline):
            return int(proc.name)
    return None


def _cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def describe_machine() -> dict[str, Any]:
    def version(package: str) -> str:
        try:
            return package_metadata.version(package)
        except package_metadata.PackageNotFoundError:
            return "not installed"

    def output(*command: str) -> str:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=30)
        except OSError as error:
            return f"unavailable ({error})"
        return (
            (done.stdout or done.stderr).strip().splitlines()[0]
            if done.stdout or done.stderr
            else ""
        )

    cpu_model = ""
    memory = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "cores": os.cpu_count(),
        "cpu": cpu_model,
        "memory": memory,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            name: version(name)
            for name in ("gos3matic", "boto3", "botocore", "awscrt", "s3transfer", "awscli")
        }
        | {
            "s5cmd": output(str(BIN / "s5cmd"), "version"),
            "seaweedfs": output(str(BIN / "weed"), "version"),
            "moto": version("moto"),
        },
        "load_average_start": os.getloadavg(),
    }


# -- the report -------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(runs: list[Run]) -> dict[str, Any]:
    """Per regime and tool: medians, objects/s, ratios to gos3matic, what the forwarder saw."""
    regimes: dict[str, dict[str, Any]] = {}
    for run in runs:
        regime = regimes.setdefault(run.regime, {"tools": {}})
        regime["tools"].setdefault(run.tool, []).append(run)
    summary: dict[str, Any] = {}
    for key, regime in regimes.items():
        tools: dict[str, list[Run]] = regime["tools"]
        entry: dict[str, Any] = {"tools": {}, "ratios": {}, "per_round_ratios": {}}
        for tool, rs in tools.items():
            seconds = _median([r.seconds for r in rs])
            requests = [r.requests for r in rs if r.requests is not None]
            entry["tools"][tool] = {
                "rounds": len(rs),
                "median_seconds": seconds,
                # startup copies nothing: its seconds are the cost before the first object
                "objects_per_second": None if key == "startup" else rs[0].objects / seconds,
                "exit_codes": sorted({r.exit_code for r in rs}),
                "cpu_seconds": _median([r.user + r.system for r in rs]),
                # the client's own CPU (user + system, its children's included) per object
                "cpu_ms_per_object": _median([1000 * (r.user + r.system) / r.objects for r in rs]),
                "server_cpu_seconds": _median([r.server_cpu for r in rs]),
                "peak_rss_kib": max(r.max_rss_kib for r in rs),
                "requests": _median([float(n) for n in requests]) if requests else None,
                "throttled": _median([float(r.throttled or 0) for r in rs]) if requests else None,
                "throttled_share": (
                    sum(r.throttled or 0 for r in rs) / max(sum(requests), 1) if requests else None
                ),
                "allowed_rate_used": _allowed_rate_used(key, rs),
                "peak_in_flight": max((r.peak_in_flight or 0 for r in rs), default=0)
                if requests
                else None,
                "mean_in_flight": _median([r.mean_in_flight or 0.0 for r in rs])
                if requests
                else None,
                "forwarder_cpu_share": max(
                    ((r.forwarder_cpu or 0.0) / r.seconds for r in rs), default=0.0
                )
                if requests
                else None,
                "engine": rs[-1].engine,
            }
        if "gos3matic" in tools and key != "startup":  # startup: seconds only, no rates
            mine = tools["gos3matic"]
            for other in ("s5cmd", "aws", BOTO3):
                if other in tools:
                    name = f"gos3matic/{other}"
                    entry["ratios"][name] = (
                        entry["tools"]["gos3matic"]["objects_per_second"]
                        / entry["tools"][other]["objects_per_second"]
                    )
                    entry["per_round_ratios"][name] = [
                        theirs.seconds / ours.seconds
                        for ours, theirs in zip(mine, tools[other], strict=False)
                    ]
                    cpu = f"CPU per object gos3matic/{other}"
                    entry["ratios"][cpu] = (
                        entry["tools"]["gos3matic"]["cpu_ms_per_object"]
                        / entry["tools"][other]["cpu_ms_per_object"]
                    )
                    entry["per_round_ratios"][cpu] = [
                        (ours.user + ours.system) / (theirs.user + theirs.system)
                        for ours, theirs in zip(mine, tools[other], strict=False)
                    ]
            if RERUN in tools:
                entry["ratios"]["re-run/first run"] = (
                    entry["tools"][RERUN]["objects_per_second"]
                    / entry["tools"]["gos3matic"]["objects_per_second"]
                )
        if "gos3matic backfill" in tools and "gos3matic annotate" in tools:
            entry["ratios"]["backfill/annotate seconds"] = (
                entry["tools"]["gos3matic backfill"]["median_seconds"]
                / entry["tools"]["gos3matic annotate"]["median_seconds"]
            )
            entry["per_round_ratios"]["backfill/annotate seconds"] = [
                b.seconds / a.seconds
                for b, a in zip(
                    tools["gos3matic backfill"], tools["gos3matic annotate"], strict=False
                )
            ]
        summary[key] = entry
    return summary


def _allowed_rate_used(regime: str, runs: list[Run]) -> float | None:
    throttle = REGIMES[regime].throttle_rps if regime in REGIMES else None
    if not throttle:
        return None
    return _median([(r.forwarded or 0) / r.seconds / throttle for r in runs])


def targets(summary: dict[str, Any], peak_rss: int, objects: int) -> list[dict[str, Any]]:
    """The issue's targets, checked against this run (None: not measured in this run)."""

    def ratio(regime: str, name: str) -> float | None:
        return summary.get(regime, {}).get("ratios", {}).get(name)

    def tool(regime: str, name: str) -> dict[str, Any]:
        return summary.get(regime, {}).get("tools", {}).get(name, {})

    # issue 16's targets table
    checks: list[tuple[str, float | None, str, float]] = [
        (
            "loopback 10,000: CPU per object gos3matic/s5cmd",
            ratio("loopback10k", "CPU per object gos3matic/s5cmd"),
            "<=",
            0.75,
        ),
        (
            "loopback 10,000: gos3matic/s5cmd objects/s",
            ratio("loopback10k", "gos3matic/s5cmd"),
            ">=",
            1.0,
        ),
        ("loopback: gos3matic/s5cmd objects/s", ratio("loopback", "gos3matic/s5cmd"), ">=", 0.8),
        ("RTT 50 ms: gos3matic/s5cmd objects/s", ratio("rtt50", "gos3matic/s5cmd"), ">=", 1.2),
        ("RTT 200 ms: gos3matic/s5cmd objects/s", ratio("rtt200", "gos3matic/s5cmd"), ">=", 1.5),
        ("RTT 200 ms: gos3matic/aws objects/s", ratio("rtt200", "gos3matic/aws"), ">=", 15.0),
        ("loopback: re-run/first run objects/s", ratio("loopback", "re-run/first run"), ">=", 2.0),
    ]
    started = tool("startup", "gos3matic").get("median_seconds")
    s5cmd_started = tool("startup", "s5cmd").get("median_seconds")
    checks.append(("start-up, empty prefix: gos3matic seconds", started, "<=", 0.3))
    if started is not None and s5cmd_started is not None:
        checks.append(("start-up: gos3matic - s5cmd seconds", started - s5cmd_started, "<=", 0.1))
    throttled = tool("throttled", "gos3matic")
    if throttled:
        rate_used = throttled["allowed_rate_used"]
        annotated = throttled["engine"].get("read_back_annotated")
        share = None if annotated is None else annotated / objects
        checks += [
            ("throttled: share of objects annotated (read back)", share, ">=", 1.0),
            ("throttled: share of requests throttled", throttled["throttled_share"], "<=", 0.05),
            ("throttled: share of the allowed rate used", rate_used, ">=", 0.8),
        ]
    others = [p for p in _other_results(objects) if p["objects"] != objects]
    for previous in others:
        if previous["objects"] in (2000, 20000) and objects in (2000, 20000):
            small, large = sorted(
                [(objects, peak_rss), (previous["objects"], previous["gos3matic_peak_rss_kib"])]
            )
            growth = large[1] / small[1] - 1 if small[1] else None
            checks.append(("peak RSS 20,000 vs 2,000 objects: growth", growth, "<=", 0.10))
    checks.append(
        (
            "backfill 100 x 20 / one 2,000-object annotate, seconds",
            ratio("backfill", "backfill/annotate seconds"),
            "<=",
            1.5,
        )
    )
    return [
        {
            "target": name,
            "measured": value,
            "bound": f"{op} {bound:g}",
            "met": None if value is None else (value >= bound if op == ">=" else value <= bound),
        }
        for name, value, op, bound in checks
    ]


def report(
    machine: dict[str, Any], args: argparse.Namespace, runs: list[Run], kept: dict[str, Any]
) -> dict[str, Any]:
    n = args.objects
    summary = summarize(runs)
    gos3matic_runs = [r for r in runs if r.tool in ("gos3matic", RERUN) and r.regime in REGIMES]
    peak_rss = max((r.max_rss_kib for r in gos3matic_runs), default=0)
    lines = ["", f"{n} objects, {_machine_line(machine)}"]
    for key, entry in summary.items():
        lines += ["", _regime_title(key, entry)]
        lines.append(
            f"  {'':19} {'median':>7} {'objects/s':>9} {'gos3matic/it':>12} {'requests':>8} "
            f"{'throttled':>9} {'in flight':>10} {'CPU s':>6} {'ms/obj':>6} {'srv CPU':>7} "
            f"{'peak RSS':>8}"
        )
        for tool, measured in entry["tools"].items():
            lines.append(_tool_line(key, tool, measured, entry))
        for name, value in entry["ratios"].items():
            rounds = entry["per_round_ratios"].get(name)
            detail = f"  (per round: {', '.join(f'{r:.2f}' for r in rounds)})" if rounds else ""
            lines.append(f"  {name:26} {value:6.2f}x{detail}")
        shares = [
            m["forwarder_cpu_share"]
            for m in entry["tools"].values()
            if m["forwarder_cpu_share"] is not None
        ]
        if shares:
            per_request = _forwarder_cost(runs, key)
            lines.append(
                f"  forwarder CPU: at most {max(shares):.0%} of one core during a run "
                f"({per_request:.0f} us per request)"
            )
    goals = targets(summary, peak_rss, n)
    lines += ["", "targets (medians of this run):"]
    for goal in goals:
        value = goal["measured"]
        verdict = {True: "met", False: "NOT met", None: "not measured"}[goal["met"]]
        shown = "-" if value is None else f"{value:.2f}"
        lines.append(f"  {goal['target']:52} {shown:>6}  (target {goal['bound']}): {verdict}")
    lines.append("")
    if peak_rss:
        lines.append(f"gos3matic peak RSS {peak_rss / 1024:.1f} MB at {n} objects (all regimes)")
        for previous in _other_results(n):
            their = previous["gos3matic_peak_rss_kib"]
            lines.append(
                f"{'':18} {their / 1024:.1f} MB at {previous['objects']} objects "
                f"({(peak_rss - their) / their:+.0%}; {previous['file']})"
            )
    for tool, carried in kept.items():
        lost = [name for name in ("ContentType", "CacheControl") if carried[name] != SEEDED[name]]
        if "origin" not in (carried["Metadata"] or {}):
            lost.append("user metadata")
        verdict = "lost " + ", ".join(lost) if lost else "everything"
        lines.append(f"{tool:18} kept after its runs: {verdict}")
    lines.append(
        f"load average {machine['load_average_start'][0]:.1f} at the start, "
        f"{machine['load_average_end'][0]:.1f} at the end ({machine['cores']} cores); "
        f"the bench took {machine['bench_seconds'] / 60:.1f} min"
    )
    text = "\n".join(lines)
    print(text, flush=True)
    loopback = summary.get("loopback", {})
    return {
        "objects": n,
        "workers": args.workers,
        "machine": machine,
        "regimes": summary,
        "targets": goals,
        # as before the regimes, for comparisons with older results: loopback
        "objects_per_second": {
            tool: measured["objects_per_second"]
            for tool, measured in loopback.get("tools", {}).items()
        },
        "ratios": loopback.get("ratios", {}),
        "gos3matic_peak_rss_kib": peak_rss,
        "kept": kept,
        "runs": [asdict(run) for run in runs],
        "text": text,
    }


def _regime_title(key: str, entry: dict[str, Any]) -> str:
    rounds = max(m["rounds"] for m in entry["tools"].values())
    if key in REGIMES:
        regime = REGIMES[key]
        where = (
            "straight to SeaweedFS"
            if regime.rtt_ms is None
            else f"SeaweedFS through netem, +{regime.rtt_ms:g} ms"
        )
        if regime.throttle_rps:
            where += f", {regime.throttle_rps:g} requests/s then 503 SlowDown"
        return f"{regime.title} ({where}), {rounds} rounds"
    if key == "startup":
        return f"startup (an empty prefix, straight to SeaweedFS), {rounds} rounds"
    return (
        f"backfill ({BACKFILL_REVISIONS} revisions x {BACKFILL_OBJECTS} objects vs one annotate "
        f"of {BACKFILL_REVISIONS * BACKFILL_OBJECTS}, markers written; moto through netem, "
        f"+50 ms), {rounds} rounds"
    )


def _tool_line(key: str, tool: str, measured: dict[str, Any], entry: dict[str, Any]) -> str:
    ratio = entry["ratios"].get(f"gos3matic/{tool}")
    requests = measured["requests"]
    in_flight = (
        f"{measured['peak_in_flight']}/{measured['mean_in_flight']:.0f}"
        if measured["peak_in_flight"] is not None
        else "-"
    )
    throttled = (
        f"{measured['throttled_share']:.1%}"
        if measured["throttled_share"] is not None and measured["throttled"]
        else "-"
    )
    failed = "" if measured["exit_codes"] == [0] else f"  exit {measured['exit_codes']}"
    if key == "startup":
        failed = ""  # nothing to annotate: some tools say so with an exit code
    used = measured["allowed_rate_used"]
    rate = f"  {used:.0%} of the allowed rate" if used is not None else ""
    own = {name: measured["engine"][name] for name in ENGINE_COUNTS if name in measured["engine"]}
    if own:  # what gos3matic says of itself, when its engine reports it
        rate += "  (its own count: " + ", ".join(f"{k} {v}" for k, v in own.items()) + ")"
    return (
        f"  {tool:19} {measured['median_seconds']:6.2f}s {_rate(measured):>9} "
        f"{'' if ratio is None else f'{ratio:11.2f}x':>12} "
        f"{'-' if requests is None else f'{requests:.0f}':>8} {throttled:>9} {in_flight:>10} "
        f"{measured['cpu_seconds']:6.2f} {measured['cpu_ms_per_object']:6.3f} "
        f"{measured['server_cpu_seconds']:7.2f} "
        f"{measured['peak_rss_kib'] / 1024:6.1f}MB{rate}{failed}"
    )


def _rate(measured: dict[str, Any]) -> str:
    rate = measured["objects_per_second"]
    return "-" if rate is None else f"{rate:.0f}"


def _forwarder_cost(runs: list[Run], regime: str) -> float:
    seen = [r for r in runs if r.regime == regime and r.requests]
    cpu = sum(r.forwarder_cpu or 0.0 for r in seen)
    return 1e6 * cpu / max(sum(r.requests or 0 for r in seen), 1)


def _other_results(objects: int) -> list[dict[str, Any]]:
    found = []
    for path in sorted(RESULTS.glob("latest-*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if data.get("objects") != objects and data.get("gos3matic_peak_rss_kib"):
            found.append({**data, "file": path.name})
    return found


def save(result: dict[str, Any], objects: int, chart: bool) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"bench-{objects}-{stamp}.json"
    text = json.dumps(result, indent=2, default=str)
    path.write_text(text + "\n")
    (RESULTS / f"latest-{objects}.json").write_text(text + "\n")
    (RESULTS / f"bench-{objects}-{stamp}.txt").write_text(result["text"] + "\n")
    print(f"results: {path.relative_to(RESULTS.parent.parent)}")
    if chart:
        png = RESULTS / f"bench-{objects}.png"  # one stable name, for the README
        if draw_chart(result, png):
            print(f"chart: {png.relative_to(RESULTS.parent.parent)}")


CHART_TOOLS = (
    "gos3matic",
    RERUN,
    "s5cmd",
    "aws",
    BOTO3,
    "gos3matic annotate",
    "gos3matic backfill",
)
COLORS = {
    "gos3matic": "#1f77b4",
    RERUN: "#aec7e8",
    "s5cmd": "#ff7f0e",
    "aws": "#7f7f7f",
    BOTO3: "#9467bd",
    "gos3matic annotate": "#2ca02c",
    "gos3matic backfill": "#98df8a",
}


def draw_chart(result: dict[str, Any], png: Path) -> bool:
    """Objects/s per regime (groups) and tool (bars), log scale; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib import ticker
    except ImportError:
        print("no chart: matplotlib is not installed (pip install matplotlib)")
        return False
    regimes = [key for key in result["regimes"] if key != "startup"]
    names = {
        key: REGIMES[key].title.replace(", ", "\n", 1)
        if key in REGIMES
        else "backfill, moto\nRTT 50 ms"
        for key in regimes
    }
    figure, (axes, cpu_axes) = plt.subplots(
        2, 1, figsize=(10, 9), dpi=100, sharex=True, height_ratios=(3, 2)
    )
    drawn: set[str] = set()
    for group, key in enumerate(regimes):
        tools = [t for t in CHART_TOOLS if t in result["regimes"][key]["tools"]]
        width = 0.8 / max(len(tools), 1)
        for slot, tool in enumerate(tools):
            measured = result["regimes"][key]["tools"][tool]
            x = group + (slot - (len(tools) - 1) / 2) * width
            for panel, value, shown in (
                (axes, measured["objects_per_second"], "{:.0f}"),
                (cpu_axes, measured.get("cpu_ms_per_object"), "{:.2f}"),
            ):
                if value is None:
                    continue
                panel.bar(
                    x,
                    value,
                    width * 0.95,
                    color=COLORS[tool],
                    label=None if tool in drawn or panel is cpu_axes else tool,
                )
                panel.annotate(
                    shown.format(value),
                    (x, value),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    xytext=(0, 2),
                    textcoords="offset points",
                )
            drawn.add(tool)
    cpu_axes.set_yscale("log")
    cpu_axes.set_ylabel("client CPU ms per object (log)")
    cpu_axes.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    cpu_axes.yaxis.set_minor_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    cpu_axes.tick_params(axis="y", which="minor", labelsize=7)
    cpu_axes.grid(axis="y", which="both", alpha=0.3)
    cpu_axes.set_xticks(range(len(regimes)), [names.get(key, key) for key in regimes])
    axes.set_yscale("log")
    plain = ticker.FuncFormatter(lambda value, _: f"{value:g}")
    axes.yaxis.set_major_formatter(plain)
    axes.yaxis.set_minor_formatter(plain)
    axes.tick_params(axis="y", which="minor", labelsize=7)
    axes.set_ylabel("objects/s (log scale; median of rounds)")
    machine = result["machine"]
    axes.set_title(
        f"Annotating {result['objects']:,} small objects: every tool with its defaults\n"
        f"{machine['date'][:10]}, {machine['cores']} cores, same run; quote ratios, not rates",
        fontsize=10,
    )
    axes.legend(fontsize=8, loc="upper right")
    axes.grid(axis="y", which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(png)
    plt.close(figure)
    return True


def _machine_line(machine: dict[str, Any]) -> str:
    return (
        f"{machine['cores']} cores ({machine['cpu']}), {machine['memory']}, "
        f"Python {machine['python']}, awscrt {machine['versions']['awscrt']}"
    )


def _since(started: float) -> str:
    return f"{time.monotonic() - started:.1f} s"


def _run_line(run: Run) -> str:
    seen = ""
    if run.requests is not None:
        throttled = f", {run.throttled} throttled" if run.throttled else ""
        seen = (
            f"  {run.requests} requests{throttled}, in flight {run.peak_in_flight} peak "
            f"{run.mean_in_flight or 0:.0f} mean, netem CPU {run.forwarder_cpu or 0:.2f}s"
        )
    failed = f"  EXIT {run.exit_code}" if run.exit_code else ""
    rate = "" if run.regime == "startup" else f"{run.objects / run.seconds:7.0f} objects/s"
    return (
        f"  round {run.round} {run.tool:18} {run.seconds:6.2f}s {rate:17} "
        f"CPU {run.user + run.system:5.2f}s  "
        f"server CPU {run.server_cpu:5.2f}s  RSS {run.max_rss_kib / 1024:.0f}MB{seen}{failed}"
    )


if __name__ == "__main__":
    sys.exit(main())
