"""SIGTERM and SIGINT mid-run: no new work, in-flight copies finish (or, in parts, are aborted),
no marker, the summary says what was done, exit 130; a re-run finishes the job.

The fault proxy makes the run slow (latency on every copy) and tells the test when copies are
under way, so the signal lands mid-run every time, not by luck of timing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from support.faultproxy import Fault, FaultProxy, Request, Rule, only

REPO = Path(__file__).resolve().parents[2]
PREFIX = "app/build/package/42.1/"
LABEL = ["--label", "42", "--no-progress", "--json"]
WORKERS = 3
MiB = 1024 * 1024


def start_cli(server: Any, proxy: FaultProxy, bucket: str, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "gos3matic", "annotate", bucket, PREFIX, *LABEL, *extra,
               "--endpoint-url", proxy.url]  # fmt: skip
    return subprocess.Popen(
        command,
        cwd=REPO,
        env=server.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def marker_present(s3: Any, bucket: str) -> bool:
    """A complete marker, the one GoCD triggers on. A failed, interrupted or sharded run leaves a
    pending one (no `completed`) instead, so that GoCD's poll of the package keeps working."""
    try:
        return "completed" in s3.head_object(Bucket=bucket, Key=PREFIX)["Metadata"]
    except s3.exceptions.ClientError:
        return False


def annotated_keys(s3: Any, bucket: str) -> set[str]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=PREFIX).get("Contents", [])
    return {
        entry["Key"]
        for entry in listed
        if entry["Key"] != PREFIX
        and s3.head_object(Bucket=bucket, Key=entry["Key"])["Metadata"].get("go_pipeline_label")
    }


class CopiesUnderWay:
    """A CALL rule's action: sets `reached` once the Nth copy arrives at the proxy."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.seen = 0
        self.reached = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> None:
        with self.lock:
            self.seen += 1
            if self.seen >= self.count:
                self.reached.set()


# SIGINT, the same path, is specified in test_annotate.py; SIGTERM is what CI systems send.
@pytest.mark.parametrize("signum", [signal.SIGTERM], ids=["SIGTERM"])
def test_a_signal_mid_run_finishes_in_flight_copies_starts_none_and_a_rerun_finishes(
    run_cli, moto_s3, moto_client, moto_bucket, signum
):
    s3, bucket, count = moto_client, moto_bucket, 60
    for index in range(count):
        s3.put_object(Bucket=bucket, Key=f"{PREFIX}f{index:03}", Body=b"x")
    under_way = CopiesUnderWay(8)
    rules = [
        Rule(Fault.CALL, operations=only("CopyObject"), action=under_way),
        Rule(Fault.DELAY, operations=only("CopyObject"), delay=0.3),
    ]

    with FaultProxy(moto_s3.endpoint_url, rules).running() as proxy:
        process = start_cli(moto_s3, proxy, bucket, "--workers", str(WORKERS))
        assert under_way.reached.wait(60), "no copies reached the proxy"
        copies_at_signal = proxy.seen["CopyObject"]
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    assert signal.Signals(signum).name in stderr  # it said what it is doing
    report = json.loads(stdout)
    assert report["interrupted"] is True and report["marker_state"] == "interrupted"
    assert report["marker_written"] is False and not marker_present(s3, bucket)
    assert report["failed"] == 0
    # What it says it did is what the server did: the copies in flight finished, none started.
    done = proxy.answered["CopyObject", 200]
    assert report["annotated"] == done == len(annotated_keys(s3, bucket))
    assert 8 <= done < count
    assert proxy.seen["CopyObject"] - copies_at_signal <= WORKERS  # HEADs already in flight
    assert report["annotated"] + report["not_started"] <= count  # none counted twice
    assert f"{done} of " in stderr and "a re-run finishes the job" in stderr

    again = run_cli(moto_s3, "annotate", bucket, PREFIX, *LABEL)

    assert again.returncode == 0, again.stderr
    final = json.loads(again.stdout)
    assert (final["skipped"], final["annotated"]) == (done, count - done)
    assert final["marker_written"] is True


class HeldParts:
    """A CALL rule's action: holds every UploadPartCopy until released; `arrived` on the first."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()

    def __call__(self, request: Request) -> None:
        self.arrived.set()
        self.release.wait(30)


def test_sigterm_during_a_multipart_copy_aborts_the_upload_and_a_rerun_finishes(
    run_cli, moto_s3, moto_client, moto_bucket
):
    s3, bucket, key = moto_client, moto_bucket, f"{PREFIX}big.bin"
    body = os.urandom(16 * MiB)
    s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"built-by": "jenkins"})
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}small.txt", Body=b"small")
    before = s3.head_object(Bucket=bucket, Key=key)
    held = HeldParts()
    rules = [Rule(Fault.CALL, operations=only("UploadPartCopy"), action=held)]
    parts = ["--multipart-threshold", "5MiB", "--part-size", "5MiB"]

    with FaultProxy(moto_s3.endpoint_url, rules).running() as proxy:
        process = start_cli(moto_s3, proxy, bucket, *parts)
        assert held.arrived.wait(60), "no UploadPartCopy arrived"
        process.send_signal(signal.SIGTERM)
        threading.Timer(1.0, held.release.set).start()  # the parts in flight then finish
        stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    report = json.loads(stdout)
    assert report["interrupted"] is True and report["marker_written"] is False
    assert [failure["key"] for failure in report["failures"]] == [key]
    assert "aborted" in report["failures"][0]["error"]
    assert proxy.seen["AbortMultipartUpload"] == 1
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    after = s3.head_object(Bucket=bucket, Key=key)
    assert (after["ETag"], after["Metadata"]) == (before["ETag"], {"built-by": "jenkins"})
    assert not marker_present(s3, bucket)

    again = run_cli(moto_s3, "annotate", bucket, PREFIX, *LABEL, *parts)

    assert again.returncode == 0, again.stderr
    final = json.loads(again.stdout)
    assert final["multipart"] == 1 and final["marker_written"] is True
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body


def test_a_second_signal_quits_at_once(moto_s3, moto_client, moto_bucket):
    s3, bucket = moto_client, moto_bucket
    for index in range(10):
        s3.put_object(Bucket=bucket, Key=f"{PREFIX}f{index:03}", Body=b"x")
    held = HeldParts()  # every copy hangs at the proxy: the first signal cannot end the run
    rules = [Rule(Fault.CALL, operations=only("CopyObject"), action=held)]

    with FaultProxy(moto_s3.endpoint_url, rules).running() as proxy:
        process = start_cli(moto_s3, proxy, bucket)
        assert held.arrived.wait(60), "no copy arrived"
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert process.poll() is None  # still waiting for the copies in flight
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        finally:
            held.release.set()

    assert process.returncode == 130
    assert not marker_present(s3, bucket)
