"""Errors that name their cause, quickly, and refusals before any write: the real command against
local servers, its output read, the bucket read back."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from support.faultproxy import Fault, FaultProxy, Rule, only
from support.readback import snapshot

PACKAGE = "app/build/package/"
PREFIX = f"{PACKAGE}42.1/"


def upload(s3: Any, bucket: str, *keys: str) -> None:
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"payload")


# -- credentials the store refuses ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("credentials", "named"),
    [
        ({"AWS_SECRET_ACCESS_KEY": "not-the-secret"}, "SignatureDoesNotMatch"),
        ({"AWS_ACCESS_KEY_ID": "nobody-knows-me"}, "InvalidAccessKeyId"),
    ],
    ids=["wrong-secret", "unknown-key"],
)
def test_refused_credentials_are_named_with_where_they_came_from(
    run_cli, seaweed_s3, seaweed_client, seaweed_bucket, credentials, named
):
    """SeaweedFS checks signatures against the identity gos3matic.devserver configures."""
    upload(seaweed_client, seaweed_bucket, f"{PREFIX}a.bin")
    before = snapshot(seaweed_client, seaweed_bucket)

    result = run_cli(
        seaweed_s3, "annotate", seaweed_bucket, PREFIX, "--label", "42", "--json",
        env=credentials,
    )  # fmt: skip

    assert result.returncode == 3, result.stderr
    error = json.loads(result.stdout)["error"]
    assert named in error and "refused the credentials" in error
    assert "from the environment ($AWS_ACCESS_KEY_ID, $AWS_SECRET_ACCESS_KEY)" in error
    assert "access denied" not in error
    assert "not-the-secret" not in result.stdout + result.stderr
    assert "retrying" not in result.stderr, result.stderr  # refused keys are not retried
    assert snapshot(seaweed_client, seaweed_bucket) == before


def test_an_expired_token_is_named(run_cli, moto_s3, moto_client, moto_bucket):
    """moto checks no token: the proxy answers as S3 does for an expired one."""
    upload(moto_client, moto_bucket, f"{PREFIX}a.bin")
    expired = [
        Rule(Fault.ACCESS_DENIED, operations=only("HeadBucket")),  # a HEAD's error has no body
        Rule(Fault.ACCESS_DENIED, operations=only("ListObjectsV2"), code="ExpiredToken"),
    ]

    with FaultProxy(moto_s3.endpoint_url, expired).running() as proxy:
        result = run_cli(
            moto_s3, "status", moto_bucket, PACKAGE, "--endpoint-url", proxy.url,
            env={"AWS_SESSION_TOKEN": "an-old-token"},
        )  # fmt: skip

    assert result.returncode == 3
    assert "refused the credentials (ExpiredToken: the session token has expired)" in (
        result.stderr
    )
    assert "an-old-token" not in result.stderr


def test_a_plain_access_denied_says_whose_credentials(run_cli, moto_s3, moto_bucket):
    denied = [Rule(Fault.ACCESS_DENIED, operations=only("HeadBucket", "ListObjectsV2"))]

    with FaultProxy(moto_s3.endpoint_url, denied).running() as proxy:
        result = run_cli(
            moto_s3, "annotate", moto_bucket, PREFIX, "--label", "42", "--endpoint-url", proxy.url
        )

    assert result.returncode == 3
    assert (
        f"access denied to bucket {moto_bucket!r} for the credentials from the environment"
        in result.stderr
    )


# -- endpoints no retry can reach -----------------------------------------------------------------


def test_a_host_name_that_does_not_resolve_ends_at_once(run_cli, moto_s3, moto_bucket):
    """.invalid never resolves (RFC 2606): no request is sent anywhere."""
    result = run_cli(
        moto_s3, "annotate", moto_bucket, PREFIX, "--label", "42", "--json",
        "--endpoint-url", "http://nonexistent.invalid:9",
    )  # fmt: skip

    assert result.returncode == 3, result.stderr
    error = json.loads(result.stdout)["error"]
    assert error.startswith("cannot resolve the host name of http://nonexistent.invalid:9")
    assert "retrying" not in result.stderr, result.stderr  # once retried 8 times (~15 s)


def test_an_endpoint_that_refuses_connections_is_never_silent_while_retried(
    run_cli, moto_s3, moto_bucket
):
    """Connection refused is worth retrying (a restarting proxy), for ~15 s in all: the user is
    told so at the first retry and again while the back-off grows, then told what failed."""
    with socket.socket() as probe:  # a free port on loopback that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_cli(
        moto_s3, "annotate", moto_bucket, PREFIX, "--label", "42", "--json",
        "--endpoint-url", f"http://127.0.0.1:{port}",
    )  # fmt: skip

    assert result.returncode == 3, result.stderr
    retrying = [line for line in result.stderr.splitlines() if "retrying (attempt" in line]
    assert len(retrying) >= 2, result.stderr
    assert "still retrying" in retrying[-1]
    assert f"127.0.0.1:{port}" in json.loads(result.stdout)["error"]


def test_https_against_an_http_server_ends_at_once_and_says_so(
    run_cli, moto_s3, moto_client, moto_bucket
):
    upload(moto_client, moto_bucket, f"{PREFIX}a.bin")
    https = moto_s3.endpoint_url.replace("http://", "https://")

    result = run_cli(
        moto_s3, "annotate", moto_bucket, PREFIX, "--label", "42",
        "--endpoint-url", https,
    )  # fmt: skip

    assert result.returncode == 3, result.stderr
    assert f"gos3matic: error: TLS with {https} failed" in result.stderr
    assert "use http://" in result.stderr
    assert "retrying" not in result.stderr, result.stderr  # a TLS mismatch is never retried


# -- paths that are not one revision ------------------------------------------------------------


def test_a_package_root_is_refused_before_any_write(run_cli, moto_s3, moto_client, moto_bucket):
    upload(moto_client, moto_bucket, f"{PACKAGE}41.1/a.bin", f"{PACKAGE}42.1/a.bin")
    before = snapshot(moto_client, moto_bucket)

    annotated = run_cli(moto_s3, "annotate", moto_bucket, "app/build/package", "--label", "42")
    dry = run_cli(moto_s3, "annotate", moto_bucket, PACKAGE, "--label", "42", "--dry-run")
    marked = run_cli(moto_s3, "mark", moto_bucket, PACKAGE, "--label", "42", "--no-check")
    forced = run_cli(moto_s3, "annotate", moto_bucket, PACKAGE, "--label", "42", "--not-a-revision")

    for result in (annotated, dry, marked):
        assert result.returncode == 2, result.stderr
        assert "its last segment 'package' is not a revision <N>.<M>" in result.stderr
        assert f"gos3matic backfill {moto_bucket} app/build/package" in result.stderr
        assert "app/build/package/<N>.<M>" in result.stderr  # or name one revision
        assert "would annotate" not in result.stdout
    assert forced.returncode == 2, forced.stderr  # a listing finds its revisions
    assert f"it holds revision folders ({PACKAGE}41.1/ among them)" in forced.stderr
    assert snapshot(moto_client, moto_bucket) == before


def test_an_object_key_as_path_is_refused_before_any_write(
    run_cli, moto_s3, moto_client, moto_bucket
):
    upload(moto_client, moto_bucket, f"{PREFIX}file.txt")
    before = snapshot(moto_client, moto_bucket)

    named = run_cli(moto_s3, "annotate", moto_bucket, f"{PREFIX}file.txt", "--label", "42")
    assert named.returncode == 2, named.stderr
    assert "its last segment 'file.txt' is not a revision" in named.stderr
    assert f"'gos3matic annotate {moto_bucket} {PREFIX.rstrip('/')}'" in named.stderr
    forced = ("--label", "42", "--not-a-revision", "--marker")
    result = run_cli(moto_s3, "annotate", moto_bucket, f"{PREFIX}file.txt", *forced)
    allowed = run_cli(
        moto_s3, "annotate", moto_bucket, f"{PREFIX}file.txt", *forced, "--allow-empty"
    )

    for refused in (result, allowed):
        assert refused.returncode == 2, refused.stderr
        assert f"refusing {PREFIX}file.txt: it is an object, not a folder" in refused.stderr
        assert f"name the folder that holds it, {PREFIX.rstrip('/')}" in refused.stderr
        assert "--allow-empty" not in refused.stderr
    assert snapshot(moto_client, moto_bucket) == before
