"""SigV4 for the hot path: the signature botocore's S3SigV4Auth computes, at a tenth of its cost.

Every request of the hot path has an empty body and is signed in its headers, so the canonical
request is short: method, the path exactly as sent (S3 does not normalise it), the sorted query,
the sorted lower-cased headers with their whitespace collapsed, and the SHA-256 of the empty
body. The signing key is derived once per day, region and secret. tests/unit/test_sign.py checks
every signature against botocore's own signer for the same request and timestamp.

The keys come from botocore's credential chain as boto3 resolved it (environment, profiles, SSO,
assumed roles, instance and container roles). Keys that expire are botocore's
RefreshableCredentials: they are read through `get_frozen_credentials` at most once a second, which
refreshes them before they expire, as boto3 would for its own requests.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
ALGORITHM = "AWS4-HMAC-SHA256"
READ_KEYS_EVERY = 1.0  # seconds between two looks at the credentials (refreshable ones refresh)
# Headers botocore never signs (auth.SIGNED_HEADERS_BLACKLIST), and Content-Length, which a
# request without a body may carry or not.
UNSIGNED = frozenset(
    {
        "baggage",
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "traceparent",
        "tracestate",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "x-amzn-trace-id",
        "content-length",
    }
)


class Keys:
    """The current access key, secret and token of a botocore credentials object."""

    def __init__(self, credentials: Any) -> None:
        self.credentials = credentials
        self._read_at = -READ_KEYS_EVERY
        self.access_key = self.secret_key = ""
        self.token: str | None = None

    def current(self) -> Keys:
        now = time.monotonic()
        if now - self._read_at >= READ_KEYS_EVERY:
            frozen = self.credentials.get_frozen_credentials()
            self.access_key, self.secret_key, self.token = (
                frozen.access_key,
                frozen.secret_key,
                frozen.token or None,
            )
            self._read_at = now
        return self


class Signer:
    """Signs requests for one region and service with SigV4 in the Authorization header."""

    def __init__(self, keys: Keys, region: str, service: str = "s3") -> None:
        self.keys = keys
        self.region = region
        self.service = service
        self._key_for: tuple[str, str] = ("", "")  # (day, secret) of the cached signing key
        self._key = b""
        self._stamp_second = -1
        self._stamp = ""

    def timestamp(self) -> str:
        """Now, as SigV4 writes it (20261203T101500Z): formatted once a second."""
        second = int(time.time())
        if second != self._stamp_second:
            self._stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
            self._stamp_second = second
        return self._stamp

    def signing_key(self, day: str, secret: str) -> bytes:
        if self._key_for != (day, secret):
            key = _hmac(("AWS4" + secret).encode(), day)
            for part in (self.region, self.service, "aws4_request"):
                key = _hmac(key, part)
            self._key, self._key_for = key, (day, secret)
        return self._key

    def sign(
        self,
        method: str,
        path: str,
        query: str,
        headers: list[tuple[str, str]],
        stamp: str,
        keys: Keys,
        payload: str = EMPTY_SHA256,
    ) -> str:
        """The Authorization header of this request.

        path: as sent, percent-encoded; query: as sent, without '?'; headers: every header the
        request carries (names in any case), including host, x-amz-date and x-amz-content-sha256.
        """
        signed: dict[str, str] = {}
        for name, value in headers:
            lower = name.lower()
            if lower in UNSIGNED:
                continue
            value = " ".join(value.split())
            signed[lower] = f"{signed[lower]},{value}" if lower in signed else value
        names = sorted(signed)
        signed_names = ";".join(names)
        canonical = "\n".join(
            (
                method,
                path,
                canonical_query(query),
                "".join(f"{name}:{signed[name]}\n" for name in names),
                signed_names,
                payload,
            )
        )
        day = stamp[:8]
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        to_sign = f"{ALGORITHM}\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.digest(self.signing_key(day, keys.secret_key), to_sign.encode(), "sha256")
        return (
            f"{ALGORITHM} Credential={keys.access_key}/{scope}, "
            f"SignedHeaders={signed_names}, Signature={signature.hex()}"
        )


def canonical_query(query: str) -> str:
    """The query as SigV4 wants it: its pairs sorted, 'acl' as 'acl='; already percent-encoded."""
    if not query:
        return ""
    pairs = []
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        pairs.append((name, value))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.digest(key, message.encode(), "sha256")
