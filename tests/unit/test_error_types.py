"""S3 error answers are classified once, by S3Error.of: the class says what an answer means."""

from __future__ import annotations

import pytest

from gos3matic import errors
from gos3matic.errors import S3Error
from gos3matic.store.retry import is_throttling, is_transient


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("NoSuchKey", 404, errors.NotFound),
        ("", 404, errors.NotFound),  # a HEAD's answer: no body, only the status
        ("404", 404, errors.NotFound),  # botocore names a body-less answer by its status
        ("NoSuchBucket", 404, errors.NoSuchBucket),
        ("", 412, errors.PreconditionFailed),
        ("PreconditionFailed", 412, errors.PreconditionFailed),
        ("ConditionalRequestConflict", 409, errors.PreconditionFailed),
        ("AccessDenied", 403, errors.AccessDenied),
        ("", 403, errors.AccessDenied),
        ("SignatureDoesNotMatch", 403, errors.CredentialsRefused),
        ("ExpiredToken", 400, errors.CredentialsRefused),
        ("InvalidObjectState", 403, errors.ArchivedObject),
        ("ObjectNotInActiveTierError", 403, errors.ArchivedObject),
        ("NotImplemented", 501, errors.NotSupported),
        ("MethodNotAllowed", 405, errors.NotSupported),
        ("SlowDown", 503, errors.Throttled),
        ("", 503, errors.Throttled),
        ("TooManyRequests", 429, errors.Throttled),
        ("InternalError", 500, errors.ServerError),
        ("", 502, errors.ServerError),
        ("InvalidArgument", 400, S3Error),
    ],
)
def test_an_answer_is_classified_by_its_code_then_its_status(
    code: str, status: int, kind: type[S3Error]
) -> None:
    error = S3Error.of(code, "why", status, "HeadObject")
    assert type(error) is kind
    assert error.status == status
    assert error.operation == "HeadObject"
    named = code or str(status)
    assert error.code == {
        "404": "NotFound",
        "412": "PreconditionFailed",
        "403": "AccessDenied",
    }.get(named, named)


def test_a_code_wins_over_its_status() -> None:
    # S3 throttles with 503 SlowDown, but a 503 that names another cause is still that cause
    assert type(S3Error.of("InternalError", "", 503)) is errors.ServerError
    assert type(S3Error.of("NoSuchKey", "", 500)) is errors.NotFound


def test_retry_and_throttling_follow_the_classes() -> None:
    assert is_transient(S3Error.of("SlowDown", "", 503))
    assert is_transient(S3Error.of("InternalError", "", 500))
    assert is_transient(S3Error.of("", "", 504))
    assert not is_transient(S3Error.of("NoSuchKey", "", 404))
    assert not is_transient(S3Error.of("AccessDenied", "", 403))
    assert not is_transient(S3Error.of("ExpiredToken", "", 400))
    assert is_throttling(S3Error.of("SlowDown", "", 503))
    assert is_throttling(S3Error.of("ServiceUnavailable", "", 503))  # as S3 uses it
    assert not is_throttling(S3Error.of("InternalError", "", 500))


def test_credentials_refused_says_why() -> None:
    error = S3Error.of("InvalidAccessKeyId", "", 403)
    assert isinstance(error, errors.CredentialsRefused)
    assert error.reason == "the store knows no such access key ID"


def test_no_error_code_is_compared_outside_the_store() -> None:
    """Every other module tests the class, never the code string."""
    import pathlib
    import re

    root = pathlib.Path(errors.__file__).parent
    pattern = re.compile(r"\.code\s*(==|!=|in\b|not in\b)")
    offenders = [
        f"{path.relative_to(root)}:{number}"
        for path in root.rglob("*.py")
        if path.parts[len(root.parts)] != "store" and path.name != "errors.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line) and "exc.code" not in line
    ]
    assert offenders == []
