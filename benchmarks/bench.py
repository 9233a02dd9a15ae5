"""gos3matic side by side with s5cmd and aws-cli, on one local SeaweedFS, in the same run.

    python benchmarks/bench.py [--objects N] [--rounds R] [--workers W]   (or N=20000 in the env)

Each tool gets its own prefix of N identical small objects (Content-Type, Cache-Control and a user
metadata key set, so that what each tool keeps is visible). Rounds alternate between the tools, in
a rotating order, and every round uses a new label so that every object needs a copy. Then
gos3matic runs again with its last label: the re-run rate, when everything is already annotated.

Prints the median wall time and objects/s of each tool, the ratios, gos3matic's peak RSS and the
server's CPU time per run; writes the same, with a description of the machine, to
benchmarks/results/. The machine is shared and noisy: quote the ratios of one run, not the times.
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
from dataclasses import asdict, dataclass
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

from gos3matic.devserver import LocalS3, seaweedfs_server
from gos3matic.store.boto import Boto3Bucket, make_client
from gos3matic.store.crt import open_object_store
from gos3matic.store.protocols import Connection

BUCKET = "bench"
TOOLS = ("gos3matic", "s5cmd", "aws")
BOTO3 = (
    "gos3matic-boto3"  # optional: the same CLI with GOS3MATIC_NO_CRT=1, the engine before awscrt
)
RESULTS = Path(__file__).resolve().parent / "results"
BIN = Path(sys.executable).parent
SEEDED = {"ContentType": "text/plain", "CacheControl": "max-age=60"}  # and origin=seed
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


@dataclass
class Run:
    tool: str
    round: int
    seconds: float
    user: float  # CPU seconds of the tool's process (and its children)
    system: float
    max_rss_kib: int
    server_cpu: float  # CPU seconds SeaweedFS spent meanwhile
    objects: int


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=int(os.environ.get("N", "2000")))
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS", "3")))
    parser.add_argument("--workers", type=int, help="gos3matic --workers (default: its own)")
    parser.add_argument(
        "--tools",
        default=",".join(TOOLS),
        help=f"comma-separated, among {', '.join(TOOLS)}, {BOTO3}",
    )
    args = parser.parse_args()
    tools = [tool for tool in args.tools.split(",") if tool]
    if unknown := set(tools) - {*TOOLS, BOTO3}:
        parser.error(f"unknown tools: {', '.join(sorted(unknown))}")

    machine = describe_machine()
    print(_machine_line(machine), flush=True)
    with seaweedfs_server() as server:
        bench = Bench(server, args.objects, args.workers)
        machine["gos3matic_hot_path"] = bench.hot_path()
        print(f"gos3matic hot path: {machine['gos3matic_hot_path']}", flush=True)
        started = time.monotonic()
        bench.seed(tools)
        print(f"seeded {len(tools)} x {args.objects} objects in {time.monotonic() - started:.1f} s")
        runs = bench.rounds(tools, args.rounds)
        reruns = bench.reruns(args.rounds) if "gos3matic" in tools else []
        kept = {tool: bench.kept(tool) for tool in tools}
    machine["load_average_end"] = os.getloadavg()
    result = report(machine, args, runs, reruns, kept)
    save(result, args.objects)
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

    def prefix(self, tool: str) -> str:
        return f"{tool}/bench/job/1.1/"  # GoCD's <pipeline>/<stage>/<job>/<N>.<M>/ layout

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
        return "awscrt (CrtObjectStore)" if store is not bucket else "boto3 (awscrt fell back)"

    def seed(self, tools: list[str]) -> None:
        with tempfile.TemporaryDirectory(prefix="gos3matic-bench-") as tmp:
            for index in range(self.objects):
                Path(tmp, f"object-{index:06d}.txt").write_text(f"object {index}\n")
            for tool in tools:
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
                        f"{tmp}/*",
                        f"s3://{BUCKET}/{self.prefix(tool)}",
                    ]
                )
                listed = sum(
                    page.get("KeyCount", 0)
                    for page in self.client.get_paginator("list_objects_v2").paginate(
                        Bucket=BUCKET, Prefix=self.prefix(tool)
                    )
                )
                if listed != self.objects:
                    raise SystemExit(f"seeding {tool}: {listed} objects, not {self.objects}")

    def command(self, tool: str, label: str) -> list[str]:
        prefix, url = self.prefix(tool), self.server.endpoint_url
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

    def rounds(self, tools: list[str], count: int) -> list[Run]:
        runs: list[Run] = []
        for number in range(count):
            shift = number % len(tools)
            for tool in tools[shift:] + tools[:shift]:  # a rotating order: no tool always first
                label = f"r{number}-{uuid.uuid4().hex[:8]}"
                self.labels[tool] = label
                run = self.timed(tool, number, label, expect="annotated")
                runs.append(run)
                print(_run_line(run), flush=True)
        return runs

    def reruns(self, count: int) -> list[Run]:
        runs = []
        for number in range(count):
            run = self.timed("gos3matic", number, self.labels["gos3matic"], expect="skipped")
            run.tool = "gos3matic re-run"
            runs.append(run)
            print(_run_line(run), flush=True)
        return runs

    def timed(self, tool: str, number: int, label: str, expect: str) -> Run:
        with tempfile.TemporaryDirectory(prefix="gos3matic-bench-") as tmp:
            measures, out, err = Path(tmp, "measures"), Path(tmp, "out"), Path(tmp, "err")
            server_before = _cpu_seconds(self.server_pid)
            with out.open("wb") as stdout, err.open("wb") as stderr:
                exit_code = subprocess.call(
                    [
                        sys.executable,
                        "-c",
                        MEASURE_CHILD,
                        str(measures),
                        *self.command(tool, label),
                    ],
                    env={**self.env, "GOS3MATIC_NO_CRT": "1"} if tool == BOTO3 else self.env,
                    stdout=stdout,
                    stderr=stderr,
                )
            server_cpu = _cpu_seconds(self.server_pid) - server_before
            if exit_code != 0:
                raise SystemExit(f"{tool} failed (exit {exit_code}):\n{err.read_text()[-2000:]}")
            if tool.startswith("gos3matic"):
                done = json.loads(out.read_text()).get(expect)  # --json: the summary alone
                if done != self.objects:
                    raise SystemExit(f"gos3matic {expect} {done} objects, not {self.objects}")
            seconds, max_rss, user, system = measures.read_text().split()
        return Run(
            tool,
            number,
            float(seconds),
            float(user),
            float(system),
            int(max_rss),
            server_cpu,
            self.objects,
        )

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


def _server_pid(endpoint_url: str) -> int | None:
    port = endpoint_url.rsplit(":", 1)[1]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"-s3.port={port}".encode() in cmdline:
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
        },
        "load_average_start": os.getloadavg(),
    }


def report(
    machine: dict[str, Any],
    args: argparse.Namespace,
    runs: list[Run],
    reruns: list[Run],
    kept: dict[str, Any],
) -> dict[str, Any]:
    n = args.objects
    by_tool: dict[str, list[Run]] = {}
    for run in runs + reruns:
        by_tool.setdefault(run.tool, []).append(run)
    medians = {tool: statistics.median(r.seconds for r in rs) for tool, rs in by_tool.items()}
    rates = {tool: n / seconds for tool, seconds in medians.items()}

    lines = ["", f"{n} objects, {args.rounds} rounds, {_machine_line(machine)}"]
    lines.append(
        f"{'':18} {'median':>8} {'min':>7} {'max':>7} {'objects/s':>10} "
        f"{'CPU s':>6} {'server CPU s':>13} {'peak RSS':>9}"
    )
    for tool, rs in by_tool.items():
        seconds = [r.seconds for r in rs]
        lines.append(
            f"{tool:18} {medians[tool]:7.2f}s {min(seconds):6.2f}s {max(seconds):6.2f}s "
            f"{rates[tool]:10.0f} {statistics.median(r.user + r.system for r in rs):6.2f} "
            f"{statistics.median(r.server_cpu for r in rs):13.2f} "
            f"{max(r.max_rss_kib for r in rs) / 1024:7.1f}MB"
        )
    ratios: dict[str, float] = {}
    per_round: dict[str, list[float]] = {}
    if "gos3matic" in rates:
        for other in ("s5cmd", "aws", BOTO3):
            if other in rates:
                ratios[f"gos3matic/{other}"] = rates["gos3matic"] / rates[other]
                per_round[f"gos3matic/{other}"] = [
                    o.seconds / g.seconds
                    for g, o in zip(by_tool["gos3matic"], by_tool[other], strict=False)
                ]
        if "gos3matic re-run" in rates:
            ratios["re-run/first run"] = rates["gos3matic re-run"] / rates["gos3matic"]
    lines.append("")
    for name, ratio in ratios.items():
        rounds = per_round.get(name)
        detail = f"  (per round: {', '.join(f'{r:.2f}' for r in rounds)})" if rounds else ""
        lines.append(f"{name:22} {ratio:5.2f}x objects/s{detail}")
    if "gos3matic" in by_tool:
        rss = max(r.max_rss_kib for r in by_tool["gos3matic"] + reruns)
        lines.append(f"{'gos3matic peak RSS':22} {rss / 1024:.1f} MB at {n} objects")
        for previous in _other_results(n):
            their = previous["gos3matic_peak_rss_kib"]
            lines.append(
                f"{'':22} {their / 1024:.1f} MB at {previous['objects']} objects "
                f"({(rss - their) / their:+.0%}; {previous['file']})"
            )
    lines.append("")
    for tool, carried in kept.items():
        lost = [name for name in ("ContentType", "CacheControl") if carried[name] != SEEDED[name]]
        if "origin" not in (carried["Metadata"] or {}):
            lost.append("user metadata")
        verdict = "lost " + ", ".join(lost) if lost else "everything"
        lines.append(f"{tool:18} kept after its runs: {verdict}")
    lines.append(
        f"load average {machine['load_average_start'][0]:.1f} at the start, "
        f"{machine['load_average_end'][0]:.1f} at the end ({machine['cores']} cores)"
    )
    text = "\n".join(lines)
    print(text, flush=True)
    return {
        "objects": n,
        "rounds": args.rounds,
        "workers": args.workers,
        "machine": machine,
        "median_seconds": medians,
        "objects_per_second": rates,
        "ratios": ratios,
        "per_round_ratios": per_round,
        "gos3matic_peak_rss_kib": max(
            (r.max_rss_kib for r in by_tool.get("gos3matic", []) + reruns), default=0
        ),
        "kept": kept,
        "runs": [asdict(run) for run in runs + reruns],
        "text": text,
    }


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


def save(result: dict[str, Any], objects: int) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"bench-{objects}-{stamp}.json"
    text = json.dumps(result, indent=2, default=str)
    path.write_text(text + "\n")
    (RESULTS / f"latest-{objects}.json").write_text(text + "\n")
    (RESULTS / f"bench-{objects}-{stamp}.txt").write_text(result["text"] + "\n")
    print(f"results: {path.relative_to(RESULTS.parent.parent)}")


def _machine_line(machine: dict[str, Any]) -> str:
    return (
        f"{machine['cores']} cores ({machine['cpu']}), {machine['memory']}, "
        f"Python {machine['python']}, awscrt {machine['versions']['awscrt']}"
    )


def _run_line(run: Run) -> str:
    return (
        f"  round {run.round} {run.tool:17} {run.seconds:6.2f}s "
        f"{run.objects / run.seconds:7.0f} objects/s  CPU {run.user + run.system:5.2f}s  "
        f"server CPU {run.server_cpu:5.2f}s  RSS {run.max_rss_kib / 1024:.0f}MB"
    )


if __name__ == "__main__":
    sys.exit(main())
