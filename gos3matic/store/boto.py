"""The boto3 store: client construction, error translation, and every request of protocols.py.

`Boto3Bucket` implements both `Bucket` and `ObjectStore`; when the native store reaches the
bucket (store/native.py), it takes over the `ObjectStore` half, the hot path.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

import boto3
import botocore.exceptions as bce
import botocore.session
import botocore.utils
from botocore.config import Config
from dateutil.tz import tzutc

from gos3matic.errors import (
    AccessDenied,
    CredentialsRefused,
    EnvironmentProblem,
    InputError,
    NetworkError,
    NotFound,
    S3Error,
)
from gos3matic.store.flow import FlowControl
from gos3matic.store.protocols import (
    Connection,
    LargeCopier,
    Listed,
    copy_owner_params,
    owner_params,
)
from gos3matic.store.retry import RequestLog, with_retries, with_retries_async
from gos3matic.store.translate import operation_name, translated

T = TypeVar("T")


# botocore's names for where credentials were found (Credentials.method).
CREDENTIAL_SOURCES = {
    "env": "the environment ($AWS_ACCESS_KEY_ID, $AWS_SECRET_ACCESS_KEY)",
    "explicit": "the command's own settings",
    "shared-credentials-file": "the shared credentials file (~/.aws/credentials or "
    "$AWS_SHARED_CREDENTIALS_FILE)",
    "config-file": "the AWS config file (~/.aws/config or $AWS_CONFIG_FILE)",
    "custom-process": "a credential_process of the AWS config",
    "assume-role": "an assumed role of the AWS config",
    "assume-role-with-web-identity": "a web identity token ($AWS_WEB_IDENTITY_TOKEN_FILE)",
    "sso": "AWS SSO (the AWS config's sso_* settings)",
    "container-role": "the container's role (ECS/EKS)",
    "iam-role": "the instance's role (EC2 instance metadata)",
}


def credential_source(client: Any) -> str:
    """Where the client's credentials came from, in words; never the credentials."""
    try:
        method = client._get_credentials().method
    except Exception:  # a botocore without the method, or no credentials at all
        return "an unknown source"
    return CREDENTIAL_SOURCES.get(method, f"botocore's {method!r} provider")


def parse_timestamp(value: Any) -> datetime:
    """botocore's timestamp parser, without dateutil for the two forms S3 sends.

    A listing has one timestamp per key: dateutil made its pages 2-3x slower to parse.
    """
    if isinstance(value, str):
        iso = _ISO8601_UTC.fullmatch(value)
        if iso:
            year, month, day, hour, minute, second = map(int, iso.groups()[:6])
            micro = int((iso[7] or "0").ljust(6, "0"))
            try:
                return datetime(year, month, day, hour, minute, second, micro, tzinfo=tzutc())
            except ValueError:
                pass  # botocore's own message for an impossible date
        if value.endswith(" GMT"):  # RFC 1123: HEAD's Last-Modified and Expires
            try:
                return email.utils.parsedate_to_datetime(value).replace(tzinfo=tzutc())
            except (TypeError, ValueError):
                pass
    parsed: datetime = botocore.utils.parse_timestamp(value)
    return parsed


_ISO8601_UTC = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?Z")


def make_client(connection: Connection, max_connections: int) -> Any:
    try:
        core = botocore.session.get_session()
        core.get_component("response_parser_factory").set_parser_defaults(
            timestamp_parser=parse_timestamp
        )
        session = boto3.session.Session(profile_name=connection.profile, botocore_session=core)
    except bce.ProfileNotFound as error:
        raise EnvironmentProblem(str(error)) from None
    config = Config(
        retries={"total_max_attempts": 1},  # retry.py alone decides retries
        max_pool_connections=max_connections,
        connect_timeout=10,
        read_timeout=120,
        # S3-compatible stores rarely resolve virtual-hosted bucket names.
        s3={"addressing_style": "path"} if _custom_endpoint(connection) else None,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    try:
        client = session.client(
            "s3",
            endpoint_url=connection.endpoint_url,
            region_name=connection.region,
            config=config,
        )
    except ValueError as error:  # botocore's InvalidEndpoint and bad region names
        raise InputError(str(error)) from None
    except bce.BotoCoreError as error:
        raise EnvironmentProblem(str(error)) from None
    client.meta.events.register("before-sign.s3.CopyObject", add_object_lock_md5)
    return client


# The MD5 of an empty request body: a copy sends none.
EMPTY_BODY_MD5 = "1B2M2Y8AsgTpgAmY2PQWTQ=="
OBJECT_LOCK_HEADERS = (
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold",
)


def add_object_lock_md5(request: Any, **_: Any) -> None:
    """S3 refuses a write that sets Object Lock parameters without an integrity header."""
    if "Content-MD5" not in request.headers and any(
        name in request.headers for name in OBJECT_LOCK_HEADERS
    ):
        request.headers["Content-MD5"] = EMPTY_BODY_MD5


def _custom_endpoint(connection: Connection) -> bool:
    return bool(
        connection.endpoint_url
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
    )


class Boto3Bucket:
    """Every request GoS3-matic makes to one bucket, through boto3."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        expected_owner: str | None = None,
        log: RequestLog | None = None,
    ) -> None:
        self.client = client
        self.log = log or RequestLog()  # the run's: each request told there (-v, --log)
        self.name = bucket
        self.expected_owner = expected_owner
        self._acls: bool | None = None
        self._acls_lock = threading.Lock()
        self._owner = owner_params(expected_owner)
        self._copy_owner = copy_owner_params(expected_owner)

    @property
    def endpoint_url(self) -> str:
        return str(self.client.meta.endpoint_url)

    def _call(self, operation: Callable[..., T], **params: Any) -> T:
        what = (operation_name(operation), str(params.get("Key", params.get("Prefix", ""))))
        return with_retries(lambda: _raw(operation, params), what=what, log=self.log)

    # -- one object, as plain calls (the engine's awaited hot path is ThreadedObjectStore) --

    def head_object(self, key: str) -> Mapping[str, Any]:
        response: Mapping[str, Any] = self._call(
            self.client.head_object, Bucket=self.name, Key=key, **self._owner
        )
        return response

    def get_object_acl(self, key: str) -> Mapping[str, Any]:
        response: Mapping[str, Any] = self._call(
            self.client.get_object_acl, Bucket=self.name, Key=key, **self._owner
        )
        return response

    def copy_object(self, params: Mapping[str, Any]) -> str | None:
        response = self._call(self.client.copy_object, **params, **self._copy_owner)
        return response.get("VersionId")

    # -- bucket-level requests --

    def check_access(self) -> None:
        """Fail before any write when the bucket is missing or not ours to touch."""
        try:
            self._call(self.client.head_bucket, Bucket=self.name, **self._owner)
        except NotFound:
            raise EnvironmentProblem(f"bucket {self.name!r} does not exist") from None
        except AccessDenied:
            raise self._refusal() from None
        except S3Error as error:
            raise EnvironmentProblem(f"bucket {self.name!r}: {error}") from None
        except NetworkError as error:
            raise EnvironmentProblem(f"cannot reach S3 at {self.endpoint_url}: {error}") from None

    def _refusal(self) -> EnvironmentProblem:
        """Why a HEAD was refused: a HEAD answer has no body, a listing's error names the cause."""
        source = credential_source(self.client)
        try:
            self._call(self.client.list_objects_v2, Bucket=self.name, MaxKeys=0, **self._owner)
        except CredentialsRefused as error:
            return EnvironmentProblem(
                f"{self.endpoint_url} refused the credentials ({error.code}: {error.reason}); "
                f"they came from {source}"
            )
        except (S3Error, NetworkError, EnvironmentProblem):
            pass
        return EnvironmentProblem(
            f"access denied to bucket {self.name!r} for the credentials from {source} "
            "(or the bucket belongs to another account)"
        )

    def acls_enabled(self) -> bool:
        """False when Object Ownership is BucketOwnerEnforced: no object can carry grants.

        Asked once per bucket: a run asks before its first copy, open_store at start-up."""
        with self._acls_lock:
            if self._acls is None:
                self._acls = self._read_acls_enabled()
            return self._acls

    def _read_acls_enabled(self) -> bool:
        try:
            response = self._call(
                self.client.get_bucket_ownership_controls, Bucket=self.name, **self._owner
            )
        except S3Error:
            return True  # no ownership controls (ACLs on) or a store that cannot say: keep grants
        rules = response.get("OwnershipControls", {}).get("Rules", [])
        return not any(rule.get("ObjectOwnership") == "BucketOwnerEnforced" for rule in rules)

    def list_objects(self, prefix: str) -> Iterator[Listed]:
        """Every object under the prefix, one page at a time: memory does not grow with them."""
        # Paginated by hand: a retried page must resume at its token, never end the listing.
        params: dict[str, Any] = {"Bucket": self.name, "Prefix": prefix, **self._owner}
        while True:
            page = self._call(self.client.list_objects_v2, **params)
            for entry in page.get("Contents", []):
                yield Listed(entry["Key"], int(entry.get("Size", 0)), entry.get("ETag", ""))
            if not page.get("IsTruncated"):
                return
            params["ContinuationToken"] = page["NextContinuationToken"]

    def list_folders(self, prefix: str) -> Iterator[str]:
        """The common prefixes one level under PREFIX (Delimiter '/'), as the GoCD poller lists."""
        params: dict[str, Any] = {
            "Bucket": self.name,
            "Prefix": prefix,
            "Delimiter": "/",
            **self._owner,
        }
        while True:
            page = self._call(self.client.list_objects_v2, **params)
            for entry in page.get("CommonPrefixes", []):
                yield entry["Prefix"]
            if not page.get("IsTruncated"):
                return
            params["ContinuationToken"] = page["NextContinuationToken"]

    def put_marker(
        self,
        key: str,
        metadata: Mapping[str, str],
        if_none_match: bool = False,
        if_match: str | None = None,
        body: bytes = b"",
    ) -> str | None:
        """The marker's new VersionId in a versioned bucket, else None.

        if_none_match: only when no object has the key (S3's `If-None-Match: *`); if_match: only
        when its ETag is this one (`If-Match`); S3 answers PreconditionFailed otherwise. Some
        S3-compatible stores ignore the headers: re-read.
        """
        condition: dict[str, str] = {"IfNoneMatch": "*"} if if_none_match else {}
        if if_match is not None:
            condition["IfMatch"] = if_match
        response = self._call(
            self.client.put_object,
            Bucket=self.name,
            Key=key,
            Body=body,
            Metadata=dict(metadata),
            **condition,
            **self._owner,
        )
        return response.get("VersionId")

    def large_copier(
        self, stop: threading.Event, threshold: int, part_size: int | None, acls_enabled: bool
    ) -> LargeCopier:
        from gos3matic.store.multipart import MultipartCopier  # s3transfer: only when copying

        return MultipartCopier(
            self.client,
            stop,
            threshold=threshold,
            part_size=part_size,
            expected_owner=self.expected_owner,
            acls_enabled=acls_enabled,
            log=self.log,
        )

    def head_metadata(self, key: str) -> dict[str, str] | None:
        """The user metadata of a key, or None when there is no such object."""
        try:
            head = self.head_object(key)
        except NotFound:
            return None
        return dict(head.get("Metadata") or {})


def _raw(operation: Callable[..., T], params: Mapping[str, Any]) -> T:
    with translated():
        return operation(**params)


BOTO3_THREADS = 128  # botocore spends ~1.8 ms of CPU a request: more threads only contend


class ThreadedObjectStore:
    """The `ObjectStore` through boto3, for when the native client cannot reach the bucket: each
    attempt runs in a pool thread, the retry policy and the flow control on the engine's loop."""

    def __init__(self, bucket: Boto3Bucket, flow: FlowControl, threads: int) -> None:
        self.bucket = bucket
        self.flow = flow
        self._pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="boto3")
        self._owner = owner_params(bucket.expected_owner)
        self._copy_owner = copy_owner_params(bucket.expected_owner)

    async def _send(self, operation: Callable[..., T], params: Mapping[str, Any]) -> T:
        loop = asyncio.get_running_loop()

        async def attempt() -> T:
            return await loop.run_in_executor(self._pool, _raw, operation, params)

        what = (operation_name(operation), str(params.get("Key", "")))
        return await with_retries_async(attempt, self.flow, what=what, log=self.bucket.log)

    async def head_object(self, key: str) -> Mapping[str, Any]:
        client = self.bucket.client
        params = {"Bucket": self.bucket.name, "Key": key, **self._owner}
        response: Mapping[str, Any] = await self._send(client.head_object, params)
        return response

    async def get_object_acl(self, key: str) -> Mapping[str, Any]:
        client = self.bucket.client
        params = {"Bucket": self.bucket.name, "Key": key, **self._owner}
        response: Mapping[str, Any] = await self._send(client.get_object_acl, params)
        return response

    async def copy_object(self, params: Mapping[str, Any]) -> str | None:
        response = await self._send(self.bucket.client.copy_object, {**params, **self._copy_owner})
        version_id: str | None = response.get("VersionId")
        return version_id
