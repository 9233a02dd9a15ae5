"""The failures a run can end with, each mapped to one exit code by the CLI.

S3's error answers are classified once, here, by the store that received them
(`S3Error.of`); nothing above the store compares an error code string:

    Exception
    ├── InputError (ValueError)          bad input, refused before any request: exit 2
    ├── EnvironmentProblem (RuntimeError) credentials, endpoint or bucket unusable: exit 3
    │   └── EndpointUnreachable           the name does not resolve, or TLS fails
    ├── LeaseHeld                         another run holds the folder: exit 1, before any copy
    └── RequestFailed                     a request that did not succeed, whatever the reason
        ├── NetworkError                  no answer: refused, reset, timed out, reply lost
        └── S3Error                       an error answer from the service
            ├── NotFound                  NoSuchKey, NotFound (a HEAD's 404)
            │   └── NoSuchBucket
            ├── PreconditionFailed        412, or 409 ConditionalRequestConflict
            ├── AccessDenied              403 AccessDenied
            ├── CredentialsRefused        SignatureDoesNotMatch, InvalidAccessKeyId, ExpiredToken…
            ├── ArchivedObject            GLACIER/DEEP_ARCHIVE not restored
            ├── NotSupported              NotImplemented, MethodNotAllowed (a store without ACLs)
            ├── Throttled                 SlowDown, 429 and kin: slow down, then retry
            └── ServerError               InternalError, 500/502/503/504: retry
"""

from __future__ import annotations

from typing import ClassVar


class InputError(ValueError):
    """Bad input: refused before any request (exit 2)."""


class EnvironmentProblem(RuntimeError):
    """Credentials, endpoint or bucket unusable before any write (exit 3)."""


class EndpointUnreachable(EnvironmentProblem):
    """The endpoint's host name does not resolve, or TLS with it fails: no retry can fix that."""


class LeaseHeld(Exception):
    """Another run holds the revision folder's lease (lease.py), or took it from this one: exit 1,
    before any copy."""


class RequestFailed(Exception):
    """A request to S3 that did not succeed: no answer, or an error answer. What callers catch
    when either ends the step the same way (a listing, a marker write)."""


class NetworkError(RequestFailed):
    """The request got no answer: connection refused or reset, timeout, reply lost."""


class S3Error(RequestFailed):
    """An error answer from the S3 service, independent of the client library that got it.

    Build one with `S3Error.of(code, ...)`, which picks the subclass the answer belongs to."""

    codes: ClassVar[frozenset[str]] = frozenset()
    statuses: ClassVar[frozenset[int]] = frozenset()  # when no code names a subclass

    def __init__(self, code: str, message: str = "", status: int = 0, operation: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.status = status
        self.operation = operation

    @staticmethod
    def of(code: str, message: str = "", status: int = 0, operation: str = "") -> S3Error:
        """The error an answer is: a body-less answer (HEAD) gets the code boto3 names its status
        by, and the code, or failing that the status, picks the class."""
        code = _STATUS_CODES.get(code, code) if code else _STATUS_CODES.get(str(status), "")
        code = code or str(status)
        kind = _BY_CODE.get(code) or _BY_STATUS.get(status, S3Error)
        return kind(code, message, status, operation)


class NotFound(S3Error):
    """No such key (NoSuchKey from a GET or copy, a bare 404 from a HEAD)."""

    codes = frozenset({"NotFound", "NoSuchKey", "NoSuchVersion"})
    statuses = frozenset({404})


class NoSuchBucket(NotFound):
    codes = frozenset({"NoSuchBucket"})
    statuses = frozenset()


class PreconditionFailed(S3Error):
    """A conditional request's condition did not hold, or lost a race with another write."""

    codes = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
    statuses = frozenset({412})


class AccessDenied(S3Error):
    codes = frozenset({"AccessDenied", "AllAccessDisabled"})
    statuses = frozenset({403})


class CredentialsRefused(S3Error):
    """The credentials themselves are refused: no bucket policy can help."""

    reasons: ClassVar[dict[str, str]] = {
        "SignatureDoesNotMatch": "the secret key does not match the access key ID",
        "InvalidAccessKeyId": "the store knows no such access key ID",
        "InvalidToken": "the session token is malformed or invalid",
        "ExpiredToken": "the session token has expired",
        "TokenRefreshRequired": "the session token must be refreshed",
    }
    codes = frozenset(reasons)

    @property
    def reason(self) -> str:
        return self.reasons.get(self.code, self.message)


class ArchivedObject(S3Error):
    """In GLACIER or DEEP_ARCHIVE and not restored: it cannot be read or copied."""

    codes = frozenset({"ObjectNotInActiveTierError", "InvalidObjectState"})


class NotSupported(S3Error):
    """The store does not implement the request (ACLs on some S3-compatible stores)."""

    codes = frozenset({"NotImplemented", "MethodNotAllowed"})
    statuses = frozenset({501})


class Throttled(S3Error):
    """S3 asks us to slow down: the flow control lowers its pace, and the request is retried."""

    codes = frozenset(
        {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests"}
    )
    statuses = frozenset({429, 503})


class ServerError(S3Error):
    """The service failed this once: retried."""

    codes = frozenset(
        {"InternalError", "ServiceUnavailable", "BadGateway", "GatewayTimeout", "RequestTimeout"}
    )
    statuses = frozenset({500, 502, 504})


# HEAD answers carry no error body, only a status: the code boto3 would name for it.
_STATUS_CODES = {
    "400": "BadRequest",
    "403": "AccessDenied",
    "404": "NotFound",
    "412": "PreconditionFailed",
}
_KINDS: tuple[type[S3Error], ...] = (
    NotFound,
    NoSuchBucket,
    PreconditionFailed,
    AccessDenied,
    CredentialsRefused,
    ArchivedObject,
    NotSupported,
    Throttled,
    ServerError,
)
_BY_CODE = {code: kind for kind in _KINDS for code in kind.codes}
_BY_STATUS = {status: kind for kind in _KINDS for status in kind.statuses}


def cannot_list(bucket: str, prefix: str, cause: object) -> EnvironmentProblem:
    """A listing that failed before anything was done: the bucket is unusable for this run."""
    return EnvironmentProblem(f"cannot list s3://{bucket}/{prefix}: {cause}")
