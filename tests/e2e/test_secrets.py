"""No credential in any output: not on stdout, not on stderr, not in --json, not in an error.

Recognisable fake keys go in through the environment; every command runs to success and to each
kind of failure, and neither the keys nor the token may come back out.
"""

from __future__ import annotations

from typing import Any

import pytest
from support.faultproxy import Fault, FaultProxy, Rule, only
from support.inprocess import run_main, without_retry_waits

from gos3matic.devserver import free_port

PREFIX = "app/build/package/42.1/"
PACKAGE = "app/build/package"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIACANARYACCESSKEY7",
    "AWS_SECRET_ACCESS_KEY": "canary/Secret+Access/Key0123456789abcdefgh",
    "AWS_SESSION_TOKEN": "CanarySessionToken//////////wEaCXVzLWVhc3QtMSJHMEUCIQD",
}
SECRETS = [*CREDENTIALS.values(), "Secret+Access", "CanarySessionToken"]  # and parts of them
ENDPOINT_WITH_KEYS = (
    f"http://{CREDENTIALS['AWS_ACCESS_KEY_ID']}:"
    f"{CREDENTIALS['AWS_SECRET_ACCESS_KEY'].replace('/', '%2F')}@127.0.0.1:9"
)


def assert_no_secret(*outputs: str) -> None:
    for output in outputs:
        for secret in SECRETS:
            assert secret not in output, f"{secret!r} in output:\n{output}"


@pytest.fixture
def deliverable(moto_client: Any, moto_bucket: str) -> str:
    for name in ("a.bin", "b.bin"):
        moto_client.put_object(Bucket=moto_bucket, Key=f"{PREFIX}{name}", Body=b"x")
    return moto_bucket


def runs(bucket: str) -> dict[str, list[str]]:
    label = ["--label", "42", "--username", "jo"]
    return {
        "annotate, human": ["annotate", bucket, PREFIX, *label],
        "annotate, json": ["annotate", bucket, PREFIX, *label, "--json", "--key", "a=b"],
        "annotate, dry run": ["annotate", bucket, PREFIX, *label, "--dry-run"],
        "status": ["status", bucket, PACKAGE],
        "status, json": ["status", bucket, PACKAGE, "--json"],
        "backfill, json": ["backfill", bucket, PACKAGE, "--json"],
        "mark": ["mark", bucket, PREFIX, *label],
        "mark, json": ["mark", bucket, PREFIX, *label, "--json"],
        "missing bucket": ["annotate", "no-such-bucket-here", PREFIX, *label, "--json"],
        "bad input": ["annotate", bucket, PREFIX, "--label", "4 2"],
        "bad option": ["status", bucket, PACKAGE, "--no-such-flag"],
        "credentials in the endpoint URL": [
            *("annotate", bucket, PREFIX, *label, "--endpoint-url", ENDPOINT_WITH_KEYS)
        ],
    }


def test_no_command_prints_a_credential_in_success_or_failure(moto_s3, moto_client, deliverable):
    codes = {}
    for name, args in runs(deliverable).items():
        code, stdout, stderr = run_main({**moto_s3.env(), **CREDENTIALS}, args)
        codes[name] = code
        assert "Traceback" not in stderr, name
        assert_no_secret(stdout, stderr)
    assert codes["annotate, human"] == codes["mark"] == 0  # the runs really ran
    assert codes["missing bucket"] == 3 and codes["bad input"] == codes["bad option"] == 2
    assert codes["credentials in the endpoint URL"] == 2


def test_a_real_process_prints_no_credential(run_cli, moto_s3, deliverable):
    result = run_cli(moto_s3, "annotate", deliverable, PREFIX, "--label", "42", env=CREDENTIALS)

    assert result.returncode == 0, result.stderr
    assert "endpoint" in result.stdout  # the parameter table was shown
    assert_no_secret(result.stdout, result.stderr)


@pytest.mark.parametrize("store", [{}, {"GOS3MATIC_NO_NATIVE": "1"}], ids=["native", "boto3"])
def test_an_error_body_that_names_the_key_prints_no_credential(
    run_cli, moto_s3, moto_client, deliverable, store
):
    """S3's error bodies can carry the access key and what was signed (SignatureDoesNotMatch):
    the proxy sends such a body for one copy, and the summary must keep them out of sight."""
    key = CREDENTIALS["AWS_ACCESS_KEY_ID"]
    signed = f"AWS4-HMAC-SHA256\n{CREDENTIALS['AWS_SESSION_TOKEN']}"
    details = f"<AWSAccessKeyId>{key}</AWSAccessKeyId><StringToSign>{signed}</StringToSign>"
    rules = [
        Rule(
            Fault.ACCESS_DENIED,
            operations=only("CopyObject"),
            key=f"{PREFIX}a.bin",
            code="SignatureDoesNotMatch",
            details=details,
        )
    ]
    with FaultProxy(moto_s3.endpoint_url, rules, record=True).running() as proxy:
        failed = run_cli(
            moto_s3, "annotate", deliverable, PREFIX, "--label", "42", "--json",
            "--endpoint-url", proxy.url, env={**CREDENTIALS, **store},
        )  # fmt: skip
    assert failed.returncode == 1, failed.stderr
    assert f"{PREFIX}a.bin" in failed.stdout and "SignatureDoesNotMatch" in failed.stdout
    assert_no_secret(failed.stdout, failed.stderr)
    assert any(key in r.headers.get("authorization", "") for r in proxy.requests)  # it was sent


def test_an_unreachable_endpoint_prints_no_credential(monkeypatch, moto_s3):
    without_retry_waits(monkeypatch)
    dead = f"http://127.0.0.1:{free_port()}"
    args = ["annotate", "bkt", PREFIX, "--label", "42", "--json", "--endpoint-url", dead]

    code, stdout, stderr = run_main({**moto_s3.env(), **CREDENTIALS}, args)

    assert code == 3, stderr
    assert "cannot reach" in stderr
    assert_no_secret(stdout, stderr)
