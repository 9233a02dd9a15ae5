"""botocore's exceptions, translated: the S3Error, NetworkError and EnvironmentProblem every other
module of the project knows. Shared by the boto3 store and the multipart copier."""

from __future__ import annotations

import socket
import ssl
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import botocore.exceptions as bce

from gos3matic.errors import (
    EndpointUnreachable,
    EnvironmentProblem,
    NetworkError,
    S3Error,
)


def to_s3_error(error: bce.ClientError) -> S3Error:
    info = error.response.get("Error", {})
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    code = str(info.get("Code") or "")
    return S3Error.of(code, str(info.get("Message") or ""), int(status or 0), error.operation_name)


def operation_name(operation: Callable[..., Any]) -> str:
    """A boto3 client method's S3 name, for the request log: head_object -> HeadObject."""
    return "".join(part.title() for part in getattr(operation, "__name__", "").split("_"))


@contextmanager
def translated() -> Iterator[None]:
    """botocore's exceptions -> ours: S3Error, NetworkError, EnvironmentProblem."""
    try:
        yield
    except bce.ClientError as error:
        raise to_s3_error(error) from None
    except (bce.NoCredentialsError, bce.PartialCredentialsError) as error:
        raise EnvironmentProblem(
            f"no usable AWS credentials ({error}); set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an instance role"
        ) from None
    except bce.CredentialRetrievalError as error:
        raise EnvironmentProblem(f"could not load AWS credentials: {error}") from None
    except (bce.ConnectionError, bce.HTTPClientError) as error:
        unreachable = endpoint_unreachable(error)
        if unreachable is not None:
            raise unreachable from None
        raise NetworkError(str(error)) from None


def endpoint_unreachable(error: BaseException) -> EndpointUnreachable | None:
    """A failure no retry can fix: the host name does not resolve, or TLS fails (a certificate,
    https:// against an http:// server). A temporary resolver failure or a connection dropped
    during the handshake stays a NetworkError, for retry.py."""
    url = urllib.parse.urlsplit(str(getattr(error, "kwargs", {}).get("endpoint_url", "")))
    endpoint = f"{url.scheme}://{url.netloc}" if url.netloc else "the endpoint"
    for cause in _causes(error):
        if isinstance(cause, socket.gaierror) and cause.errno != socket.EAI_AGAIN:
            return EndpointUnreachable(
                f"cannot resolve the host name of {endpoint} ({cause.strerror}): check "
                "--endpoint-url, $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL or the region"
            )
        if isinstance(cause, ssl.SSLError) and not isinstance(
            cause, (ssl.SSLEOFError, ssl.SSLZeroReturnError)
        ):
            hint = (
                ": it answers in plain HTTP, use http://"
                if "WRONG_VERSION_NUMBER" in str(cause)
                else ""
            )
            reason = cause.reason or cause.strerror or type(cause).__name__
            return EndpointUnreachable(f"TLS with {endpoint} failed ({reason}){hint}")
    return None


def _causes(error: BaseException) -> Iterator[BaseException]:
    """ERROR and the exceptions it was raised from, innermost last."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


# Errors that refuse the credentials themselves, not a permission: no bucket policy can help.
