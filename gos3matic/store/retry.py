"""The one place that decides which S3 failures are worth another attempt, and how long to wait.

botocore's own retries are switched off (see s3.py) so that this policy is not multiplied by them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from gos3matic.errors import NetworkError, S3Error

T = TypeVar("T")

ATTEMPTS = 8  # the first try and 7 retries
FIRST_WAIT = 0.1  # seconds, doubled each retry, with up to 1 s of jitter added
LONGEST_WAIT = 10.0
JITTER = 1.0  # seconds of random wait added to each backoff, so workers do not retry in step

TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequests",
        "RequestTimeout",
        "InternalError",
        "ServiceUnavailable",
        "BadGateway",
        "GatewayTimeout",
    }
)
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


def is_transient(error: BaseException) -> bool:
    """Throttling, server errors and requests without an answer. A host name that does not
    resolve or a failed TLS handshake is errors.EndpointUnreachable, never retried; nor are
    refused credentials (SignatureDoesNotMatch, InvalidAccessKeyId, ExpiredToken)."""
    if isinstance(error, NetworkError):
        return True
    return isinstance(error, S3Error) and (
        error.code in TRANSIENT_CODES or error.status in TRANSIENT_STATUSES
    )


@functools.cache
def s3_policy(attempts: int = ATTEMPTS) -> Retrying:
    # Built once and shared by every worker: tenacity keeps each call's state thread-local.
    return Retrying(
        retry=retry_if_exception(is_transient),
        wait=wait_exponential(multiplier=FIRST_WAIT, max=LONGEST_WAIT) + wait_random(0, JITTER),
        stop=stop_after_attempt(attempts),
        reraise=True,
    )


def with_retries(call: Callable[[], T], attempts: int = ATTEMPTS) -> T:
    """Run one S3 request under the policy; the last error is raised as it was."""
    return s3_policy(attempts)(call)
