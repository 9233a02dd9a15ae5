"""The fastest path the manual documents: upload with the GoCD metadata already on every object
(the AWS CLI's --metadata here, as docs/fastest-path.md shows it), then `gos3matic mark`. It sends
one HeadObject per object and no copy; begin -> upload -> annotate sends a HEAD and a copy per
object. Counted from -v's request log, and checked against what an independent client reads."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

OBJECTS = 12
REQUEST = re.compile(r"^request (\w+) (\S+) ", re.MULTILINE)


def upload(server: Any, bucket: str, folder: str, tmp_path: Path, *metadata: str) -> None:
    dist = tmp_path / "dist"
    dist.mkdir(exist_ok=True)
    for index in range(OBJECTS):
        (dist / f"file-{index:02}.txt").write_text(f"content {index}\n")
    aws = Path(sys.executable).parent / "aws"
    command = [str(aws), "s3", "cp", "--recursive", "--only-show-errors", str(dist)]
    command += [f"s3://{bucket}/{folder}", *metadata]
    subprocess.run(command, env=server.env(), check=True, timeout=120)


def requests(stderr: str, folder: str) -> Counter[str]:
    """Operations sent for the objects of FOLDER (the marker's key and bucket calls left out)."""
    return Counter(op for op, key in REQUEST.findall(stderr) if key.startswith(folder + "f"))


def state(client: Any, bucket: str, folder: str) -> dict[str, tuple[str, Any, dict[str, str]]]:
    found = {}
    for entry in client.list_objects_v2(Bucket=bucket, Prefix=folder)["Contents"]:
        if entry["Key"] == folder:
            continue
        head = client.head_object(Bucket=bucket, Key=entry["Key"])
        found[entry["Key"]] = (head["ETag"], head["LastModified"], head["Metadata"])
    return found


def test_upload_with_metadata_then_mark_sends_one_head_per_object_and_copies_nothing(
    run_cli, moto_s3, moto_client, moto_bucket, tmp_path
):
    folder = "myapp/build/package/42.1/"
    assert run_cli(moto_s3, "begin", moto_bucket, folder, "--label", "42").returncode == 0
    upload(moto_s3, moto_bucket, folder, tmp_path, "--metadata", "go_pipeline_label=42,user=jo")
    before = state(moto_client, moto_bucket, folder)

    result = run_cli(moto_s3, "mark", moto_bucket, folder, "--label", "42", "-v")

    assert result.returncode == 0, result.stderr
    assert requests(result.stderr, folder) == Counter({"HeadObject": OBJECTS})
    assert state(moto_client, moto_bucket, folder) == before  # same ETag, date and metadata
    assert all(meta == {"go_pipeline_label": "42", "user": "jo"} for _, _, meta in before.values())
    marker = moto_client.head_object(Bucket=moto_bucket, Key=folder)["Metadata"]
    assert marker["completed"] == "completed" and marker["go_pipeline_label"] == "42"


def test_upload_then_annotate_sends_a_head_and_a_copy_per_object(
    run_cli, moto_s3, moto_client, moto_bucket, tmp_path
):
    folder = "myapp/build/package/43.1/"
    assert run_cli(moto_s3, "begin", moto_bucket, folder, "--label", "43").returncode == 0
    upload(moto_s3, moto_bucket, folder, tmp_path)

    result = run_cli(moto_s3, "annotate", moto_bucket, folder, "--label", "43", "-v")

    assert result.returncode == 0, result.stderr
    sent = requests(result.stderr, folder)
    assert sent["HeadObject"] == OBJECTS and sent["CopyObject"] == OBJECTS, sent
    assert set(sent) <= {"HeadObject", "CopyObject", "GetObjectAcl"}, sent
    after = state(moto_client, moto_bucket, folder)
    assert all(meta["go_pipeline_label"] == "43" for _, _, meta in after.values())


def test_mark_refuses_an_upload_without_the_metadata_and_writes_no_marker(
    run_cli, moto_s3, moto_client, moto_bucket, tmp_path
):
    folder = "myapp/build/package/44.1/"
    assert run_cli(moto_s3, "begin", moto_bucket, folder, "--label", "44").returncode == 0
    upload(moto_s3, moto_bucket, folder, tmp_path)

    result = run_cli(moto_s3, "mark", moto_bucket, folder, "--label", "44")

    assert result.returncode == 1, result.stderr
    marker = moto_client.head_object(Bucket=moto_bucket, Key=folder)["Metadata"]
    assert "completed" not in marker  # still the pending one
