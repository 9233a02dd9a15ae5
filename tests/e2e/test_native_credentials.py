"""The native store signs with the credentials boto3 resolved, and keeps up when they rotate.

A server of our own checks each request's signature against the secret of the key ID it names,
as S3 does; a refreshable provider (botocore's RefreshableCredentials, as assumed roles, SSO and
instance roles are) hands out new keys during the run. A session token from the environment
reaches S3 on every request of a real run (moto, through the recording proxy).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import re
from typing import Any

import botocore.auth
import botocore.credentials
import botocore.session
import pytest
from botocore.awsrequest import AWSRequest
from dateutil.tz import tzlocal
from support.faultproxy import FaultProxy
from support.rawserver import Seen, answer, raw_server

from gos3matic.errors import CredentialsRefused
from gos3matic.store import sign
from gos3matic.store.native import NativeObjectStore, Route

SERVICE_MODEL = botocore.session.get_session().get_service_model("s3")
_CREDENTIAL = re.compile(r"Credential=([^/]+)/")


class CheckingServer:
    """Answers 200 to a request signed with a key it knows, 403 SignatureDoesNotMatch else."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.keys_seen: list[str] = []
        self.refused = 0

    def __call__(self, seen: Seen) -> bytes:
        key_id = _CREDENTIAL.search(seen.headers.get("authorization", ""))
        key_id_text = key_id.group(1) if key_id else ""
        self.keys_seen.append(key_id_text)
        secret = self.secrets.get(key_id_text)
        if secret is None or not self._valid(seen, key_id_text, secret):
            self.refused += 1
            body = b"<Error><Code>SignatureDoesNotMatch</Code><Message>no</Message></Error>"
            return answer(403, body=body, reason="Forbidden")
        return answer(200, [("ETag", '"abc"')])

    def _valid(self, seen: Seen, key_id: str, secret: str) -> bool:
        method, target = seen.method, seen.target
        headers = {
            name: value
            for name, value in seen.headers.items()
            if name not in ("authorization", "content-length")
        }
        request = AWSRequest(method, f"http://{seen.headers['host']}{target}", headers=headers)
        when = dt.datetime.strptime(seen.headers["x-amz-date"], "%Y%m%dT%H%M%SZ")
        token = seen.headers.get("x-amz-security-token")
        credentials = botocore.credentials.Credentials(key_id, secret, token)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(botocore.auth, "get_current_datetime", lambda: when)
            botocore.auth.S3SigV4Auth(credentials, "s3", "us-east-1").add_auth(request)
        return bool(request.headers["Authorization"] == seen.headers["authorization"])


def test_keys_that_rotate_mid_run_are_picked_up_and_every_request_is_signed_by_a_live_one(
    monkeypatch,
):
    monkeypatch.setattr(sign, "READ_KEYS_EVERY", 0.05)  # a second in the real run
    checking = CheckingServer()
    issued = itertools.count(1)

    def refresh() -> dict[str, str]:
        number = next(issued)
        key_id, secret = f"AKIDROTATING{number:04}", f"secret-{number}"
        checking.secrets[key_id] = secret
        # Within botocore's advisory window: every look at them refreshes them.
        expires = dt.datetime.now(tzlocal()) + dt.timedelta(minutes=12)
        return {
            "access_key": key_id,
            "secret_key": secret,
            "token": f"token-{number}",
            "expiry_time": expires.isoformat(),
        }

    credentials = botocore.credentials.RefreshableCredentials.create_from_metadata(
        refresh(), refresh, "assume-role"
    )
    with raw_server(checking) as server:
        route = Route("http", f"127.0.0.1:{server.port}", "/bucket/", "us-east-1")
        native = NativeObjectStore(route, SERVICE_MODEL, credentials, 4)

        async def run() -> None:
            for index in range(12):
                await native.head_object(f"k{index}")
                await asyncio.sleep(0.06)

        asyncio.run(run())

    assert checking.refused == 0
    assert len(set(checking.keys_seen)) >= 6  # rotated many times during the run
    assert checking.keys_seen == sorted(checking.keys_seen)  # never back to an older key


def test_a_key_the_server_does_not_know_is_refused_as_credentials_refused():
    checking = CheckingServer()
    with raw_server(checking) as server:
        route = Route("http", f"127.0.0.1:{server.port}", "/bucket/", "us-east-1")
        credentials = botocore.credentials.Credentials("AKIDUNKNOWN", "secret")
        native = NativeObjectStore(route, SERVICE_MODEL, credentials, 1)
        with pytest.raises(CredentialsRefused):  # read from the body: a HEAD's has none
            asyncio.run(native.get_object_acl("k"))
    assert checking.refused == 1  # not retried


def test_a_session_token_from_the_environment_reaches_every_request(
    run_cli, moto_s3, moto_client, moto_bucket
):
    s3, bucket = moto_client, moto_bucket
    prefix = "app/build/job/3.1/"
    for index in range(5):
        s3.put_object(Bucket=bucket, Key=f"{prefix}f{index}", Body=b"x")
    token = "FwoGZXIvYXdzEJr//////////wEaDH0test+session/token=="

    with FaultProxy(moto_s3.endpoint_url, [], record=True).running() as proxy:
        result = run_cli(
            moto_s3,
            *("annotate", bucket, prefix, "--label", "3.1", "--no-progress"),
            *("--endpoint-url", proxy.url),
            env={"AWS_SESSION_TOKEN": token},
        )

    assert result.returncode == 0, result.stderr
    native: list[Any] = [
        r for r in proxy.requests if r.headers.get("user-agent", "").startswith("gos3matic/")
    ]
    assert {r.operation for r in native} >= {"HeadObject", "CopyObject"}
    assert all(r.headers.get("x-amz-security-token") == token for r in proxy.requests)
    for index in range(5):
        assert s3.head_object(Bucket=bucket, Key=f"{prefix}f{index}")["Metadata"]
