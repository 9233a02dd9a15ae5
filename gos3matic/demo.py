"""`make demo`: a local S3 server, a sample deliverable, the documented command, the marker shown.

Runs entirely on 127.0.0.1 with throwaway credentials; nothing outside this machine is touched.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from gos3matic.devserver import LocalS3, moto_server

BUCKET = "gos3matic-demo"
PACKAGE = "myapp/build/package"
REVISION = f"{PACKAGE}/42.1"
CHECKOUT_SCRIPT = Path(__file__).resolve().parent.parent / "annotate_s3.py"

SAMPLE_FILES = {
    "myapp-2.4.0.tar.gz": ("application/gzip", 48_000),
    "myapp-2.4.0.tar.gz.sha256": ("text/plain", 90),
    "docs/index.html": ("text/html; charset=utf-8", 3_000),
    "docs/style.css": ("text/css", 1_200),
    "reports/junit.xml": ("application/xml", 9_000),
    "reports/coverage.json": ("application/json", 12_000),
}


def seed(s3: Any) -> int:
    """A deliverable as Jenkins or a nightly script would upload it: no GoCD metadata at all."""
    s3.create_bucket(Bucket=BUCKET)
    count = 0
    for name, (content_type, size) in SAMPLE_FILES.items():
        s3.put_object(
            Bucket=BUCKET,
            Key=f"{REVISION}/{name}",
            Body=os.urandom(size),
            ContentType=content_type,
            CacheControl="max-age=3600",
            Metadata={"built-by": "jenkins"},
            Tagging="origin=jenkins",
        )
        count += 1
    for index in range(20):
        s3.put_object(
            Bucket=BUCKET,
            Key=f"{REVISION}/lib/module-{index:02}.jar",
            Body=os.urandom(2_000),
            ContentType="application/java-archive",
        )
        count += 1
    return count


def show_object(s3: Any, key: str, title: str) -> None:
    head = s3.head_object(Bucket=BUCKET, Key=key)
    print(f"{title}: s3://{BUCKET}/{key}")
    print(f"    Content-Type   {head.get('ContentType')}")
    print(f"    Cache-Control  {head.get('CacheControl')}")
    print(f"    metadata       {head.get('Metadata')}")


def annotate_command() -> list[str]:
    entry = [str(CHECKOUT_SCRIPT)] if CHECKOUT_SCRIPT.exists() else ["-m", "gos3matic"]
    return [
        sys.executable,
        *entry,
        "annotate",
        BUCKET,
        REVISION,
        "--label",
        "42",
        "--username",
        "demo@example.com",
        "--traceback-url",
        "https://gocd.example.com/go/tab/build/detail/myapp/42/build/1/package",
        "--key",
        "source=jenkins",
    ]


def run_demo(server: LocalS3) -> int:
    env = server.env()  # complete: no AWS_PROFILE or real credential of the user leaks in
    s3 = server.client()
    count = seed(s3)
    print(f"Seeded s3://{BUCKET}/{REVISION}/ with {count} objects on {server.endpoint_url}\n")
    show_object(s3, f"{REVISION}/docs/index.html", "Before")

    command = annotate_command()
    print("\n$ " + shlex.join(["python", *command[1:]]), flush=True)
    result = subprocess.run(command, env=env, check=False)
    print()
    show_object(s3, f"{REVISION}/docs/index.html", "After ")
    try:
        marker = s3.head_object(Bucket=BUCKET, Key=f"{REVISION}/")
        print(f"\nMarker: s3://{BUCKET}/{REVISION}/  ({marker['ContentLength']} bytes)")
        print(f"    metadata       {marker['Metadata']}")
    except s3.exceptions.ClientError:
        print(f"\nNo marker at s3://{BUCKET}/{REVISION}/")
    print(f"\nannotate exited {result.returncode}.")
    if result.returncode != 0:
        return result.returncode

    status = [sys.executable, "-m", "gos3matic", "status", BUCKET, PACKAGE]
    print("\nWhat will GoCD's s3material poller see?", flush=True)
    print("$ " + shlex.join(["gos3matic", *status[3:]]), flush=True)
    return subprocess.run(status, env=env, check=False).returncode


def main() -> int:
    print("Starting a local S3 server (moto) on 127.0.0.1 ...", flush=True)
    with moto_server() as server:
        return run_demo(server)


if __name__ == "__main__":
    sys.exit(main())
