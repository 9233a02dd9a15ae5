"""-v and --log: one line per request a run sends, and never a credential."""

from __future__ import annotations

import re

PREFIX = "app/build/package/42.1/"
LINE = re.compile(r"request (\w+) (\S+) (.+) attempt (\d+) (\d+\.\d) ms")


def put_objects(s3, bucket: str, count: int) -> list[str]:
    keys = [f"{PREFIX}file-{index}.txt" for index in range(count)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    return keys


def requests_in(text: str) -> list[tuple[str, str, str, int]]:
    found = []
    for line in text.splitlines():
        match = LINE.search(line)
        if match:
            operation, key, status, attempt, _ = match.groups()
            found.append((operation, key, status, int(attempt)))
    return found


def test_verbose_names_every_request_on_stderr(run_cli, moto_s3, moto_client, moto_bucket):
    keys = put_objects(moto_client, moto_bucket, 3)

    result = run_cli(moto_s3, "annotate", moto_bucket, PREFIX, "--label", "42", "-v", "--json")

    assert result.returncode == 0, result.stderr
    sent = requests_in(result.stderr)
    for key in keys:  # each object: read, then copied onto itself, each once and answered 200
        assert ("HeadObject", key, "200", 1) in sent
        assert ("CopyObject", key, "200", 1) in sent
    assert ("PutObject", PREFIX, "200", 1) in sent  # the marker
    assert not requests_in(result.stdout)  # stdout stays the one JSON object
    unnamed = [line for line in result.stderr.splitlines() if line.startswith("request  ")]
    assert unnamed == []  # the start-up probe too names its operation


def test_log_appends_the_same_lines_to_a_file_and_keeps_stderr_quiet(
    run_cli, moto_s3, moto_client, moto_bucket, tmp_path
):
    keys = put_objects(moto_client, moto_bucket, 2)
    log = tmp_path / "requests.log"
    secret = {"AWS_ACCESS_KEY_ID": "AKIALOGTESTKEY000001", "AWS_SECRET_ACCESS_KEY": "s3cr3t/Log"}

    result = run_cli(
        moto_s3, "annotate", moto_bucket, PREFIX, "--label", "42", "--log", str(log), env=secret
    )

    assert result.returncode == 0, result.stderr
    written = log.read_text()
    sent = requests_in(written)
    assert {("HeadObject", key) for key in keys} <= {(op, key) for op, key, _, _ in sent}
    assert not requests_in(result.stderr)
    for value in secret.values():
        assert value not in written


def test_an_unwritable_log_is_bad_input_before_any_request(
    run_cli, moto_s3, moto_client, moto_bucket
):
    put_objects(moto_client, moto_bucket, 1)
    result = run_cli(
        moto_s3, "annotate", moto_bucket, PREFIX, "--label", "42", "--log", "/nonexistent/dir/x.log"
    )
    assert result.returncode == 2
    assert "--log" in result.stderr
    head = moto_client.head_object(Bucket=moto_bucket, Key=f"{PREFIX}file-0.txt")
    assert head["Metadata"] == {}
