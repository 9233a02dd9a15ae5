"""One multi-GB object copied onto itself: gos3matic against `aws s3 cp`, same server, same run.

    .venv/bin/python benchmarks/bench_large.py [--size 2GiB] [--rounds 3]

A local SeaweedFS (gos3matic.devserver) holds a pristine object of random bytes. Every timed
run starts from a fresh server-side copy of it (untimed), so that no tool inherits the layout
another one left, and the tools alternate, the first one changing every round. Timed: the whole
command, process start included, as a CI job pays it. The result goes to
benchmarks/results/large-object.txt.

Tools:
  gos3matic multipart  --multipart-threshold 8MiB, default part size: the copy in parts this
                       benchmark is about (what an object over 5 GiB always gets)
  gos3matic default    below 5 GiB one CopyObject, which SeaweedFS does without moving data
  aws s3 cp            --metadata-directive REPLACE: multipart, 8 MB parts, 10 at once; keeps
                       nothing (Content-Type, other metadata, tags are lost)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gos3matic.core.sizes import DEFAULT_PART_SIZE, MiB, human_size, parse_size
from gos3matic.devserver import LocalS3, seaweedfs_server

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "benchmarks" / "results" / "large-object.txt"
BUCKET = "bench-large"
PRISTINE = "pristine/object.bin"
BIN = Path(sys.executable).parent


@dataclass
class Tool:
    name: str
    command: Callable[[LocalS3, str, str], list[str]]  # (server, prefix, label) -> argv
    multipart: bool  # whether the ETag afterwards must be '<md5>-N'
    seconds: list[float] = field(default_factory=list)


def gos3matic(*extra: str) -> Callable[[LocalS3, str, str], list[str]]:
    def command(server: LocalS3, prefix: str, label: str) -> list[str]:
        return [
            sys.executable, "-m", "gos3matic", "annotate", BUCKET, prefix, "--label", label,
            "--no-marker", "--quiet", "--endpoint-url", server.endpoint_url, *extra,
        ]  # fmt: skip

    return command


def aws_cli(server: LocalS3, prefix: str, label: str) -> list[str]:
    url = f"s3://{BUCKET}/{prefix}object.bin"
    return [
        str(BIN / "aws"), "s3", "cp", url, url, "--metadata-directive", "REPLACE",
        "--metadata", f"go_pipeline_label={label}", "--endpoint-url", server.endpoint_url,
        "--only-show-errors",
    ]  # fmt: skip


TOOLS = [
    Tool("gos3matic multipart", gos3matic("--multipart-threshold", "8MiB"), multipart=True),
    Tool("aws s3 cp", aws_cli, multipart=True),
    Tool("gos3matic default", gos3matic(), multipart=False),
]


def write_pristine(s3: Any, size: int) -> str:
    """Random bytes as one PUT (up to 5 GiB), streamed from a temporary file; their MD5."""
    digest = hashlib.md5()
    with tempfile.TemporaryFile() as scratch:
        left = size
        while left:
            block = os.urandom(min(left, 64 * MiB))
            digest.update(block)
            scratch.write(block)
            left -= len(block)
        scratch.seek(0)
        if size <= 5 * 1024 * MiB:
            s3.put_object(Bucket=BUCKET, Key=PRISTINE, Body=scratch, ContentLength=size)
        else:
            s3.upload_fileobj(scratch, BUCKET, PRISTINE)
    return digest.hexdigest()


def content_md5(s3: Any, key: str) -> str:
    digest = hashlib.md5()
    for chunk in s3.get_object(Bucket=BUCKET, Key=key)["Body"].iter_chunks(8 * MiB):
        digest.update(chunk)
    return digest.hexdigest()


def timed_round(
    server: LocalS3, s3: Any, tool: Tool, index: int, size: int, md5: str | None
) -> None:
    slug = tool.name.replace(" ", "-")
    prefix, label = f"{slug}/{index}/", f"r{index}"
    key = f"{prefix}object.bin"
    s3.copy_object(Bucket=BUCKET, Key=key, CopySource={"Bucket": BUCKET, "Key": PRISTINE})
    started = time.monotonic()
    result = subprocess.run(
        tool.command(server, prefix, label), env=server.env(), capture_output=True, text=True
    )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(
            f"{tool.name} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentLength"] == size, (tool.name, head["ContentLength"])
    assert head["Metadata"].get("go_pipeline_label") == label, (tool.name, head["Metadata"])
    assert ("-" in head["ETag"]) == tool.multipart, (tool.name, head["ETag"])
    if md5 is not None:
        assert content_md5(s3, key) == md5, f"{tool.name}: content changed"
    s3.delete_object(Bucket=BUCKET, Key=key)
    tool.seconds.append(seconds)
    print(f"  round {index}  {tool.name:<20} {seconds:7.2f} s  {size / seconds / MiB:8.1f} MiB/s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="2GiB", help="object size (default 2GiB)")
    parser.add_argument("--rounds", type=int, default=3, help="timed runs per tool (default 3)")
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args()
    size = parse_size(args.size, "--size")

    lines: list[str] = []
    with seaweedfs_server() as server:
        s3 = server.client(read_timeout=600, retries={"max_attempts": 1})
        s3.create_bucket(Bucket=BUCKET)
        print(f"writing a {human_size(size)} object of random bytes to {server.endpoint_url} ...")
        md5 = write_pristine(s3, size)
        load_before = os.getloadavg()[0]
        for index in range(1, args.rounds + 1):
            shift = (index - 1) % len(TOOLS)
            for tool in TOOLS[shift:] + TOOLS[:shift]:
                # The content is checked once per tool, in the last round (a full download).
                check = md5 if index == args.rounds else None
                timed_round(server, s3, tool, index, size, check)
        load_after = os.getloadavg()[0]

    lines.append(
        f"Large object copied onto itself: {human_size(size)} ({size} bytes), local SeaweedFS "
        f"(gos3matic.devserver), {args.rounds} rounds, tools alternating, each run on a fresh "
        f"server-side copy; whole command timed, process start included."
    )
    lines.append(
        f"Machine: {os.cpu_count()} cores, {platform.platform()}, Python "
        f"{platform.python_version()}; run {time.strftime('%Y-%m-%d %H:%M %Z')}."
    )
    lines.append(
        f"gos3matic multipart: --multipart-threshold 8MiB, parts of "
        f"{human_size(DEFAULT_PART_SIZE)} (the default). aws s3 cp: aws-cli defaults "
        "(8 MB parts, 10 at once). Content MD5 checked in the last round for every tool."
    )
    lines.append("")
    lines.append(f"{'tool':<22}{'median s':>10}{'best s':>9}{'median bytes/s':>18}  runs (s)")
    medians: dict[str, float] = {}
    for tool in TOOLS:
        median = statistics.median(tool.seconds)
        medians[tool.name] = median
        runs = ", ".join(f"{s:.2f}" for s in tool.seconds)
        lines.append(
            f"{tool.name:<22}{median:>10.2f}{min(tool.seconds):>9.2f}"
            f"{size / median:>18,.0f}  {runs}"
        )
    lines.append("")
    ratio = medians["aws s3 cp"] / medians["gos3matic multipart"]
    mine, theirs = TOOLS[0].seconds, TOOLS[1].seconds
    # Back-to-back runs of one round share the machine's load of the moment: compare them.
    paired = statistics.median(a / g for g, a in zip(mine, theirs, strict=True))
    lines.append(
        f"gos3matic multipart / aws s3 cp, bytes/s: {ratio:.2f}x of the medians, "
        f"{paired:.2f}x the median of the per-round ratios "
        f"({'at least as fast' if min(ratio, paired) >= 1 else 'not faster'})"
    )
    ratio_default = medians["aws s3 cp"] / medians["gos3matic default"]
    lines.append(f"gos3matic default (one CopyObject) / aws s3 cp: {ratio_default:.2f}x")
    lines.append(
        f"Load average (1 min) before / after: {load_before:.1f} / {load_after:.1f} on "
        f"{os.cpu_count()} cores, shared with other work: single runs vary by 2x or more."
    )
    report = "\n".join(lines) + "\n"
    print("\n" + report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
