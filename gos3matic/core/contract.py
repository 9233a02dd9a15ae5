"""The GoCD side: what the indix.s3material poller reads, and the GO_* environment defaults.

Pure: no S3 calls. docs/gocd-contract.md gives the facts this module encodes, with their sources.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlparse

from gos3matic.errors import InputError

COMPLETED_KEY = "completed"
LABEL_KEY = "go_pipeline_label"
USER_KEY = "user"
TRACEBACK_KEY = "traceback_url"
RESERVED_KEYS = frozenset({COMPLETED_KEY, LABEL_KEY, USER_KEY, TRACEBACK_KEY})

TRACEBACK_ENV = (
    "GO_SERVER_DASHBOARD_URL",
    "GO_PIPELINE_NAME",
    "GO_PIPELINE_COUNTER",
    "GO_STAGE_NAME",
    "GO_STAGE_COUNTER",
    "GO_JOB_NAME",
)

_LABEL = re.compile(r"[A-Za-z0-9._-]{1,255}")
_CUSTOM_KEY = re.compile(r"[a-z0-9_-]+")
_REVISION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
_TWO_PART = re.compile(r"\d+\.\d+")
KEY_LIMIT = 1024  # bytes of UTF-8 in an S3 key: a longer prefix holds no object
# The poller parses each part of a revision name with Java's Integer.valueOf.
JAVA_INT_MIN, JAVA_INT_MAX = -(2**31), 2**31 - 1


@dataclass(frozen=True)
class Annotation:
    """What GoS3-matic stamps on every object; the marker gets it plus `completed`."""

    label: str
    user: str | None = None
    traceback_url: str | None = None
    custom: tuple[tuple[str, str], ...] = field(default=())

    def items(self) -> dict[str, str]:
        """The annotation as user metadata, unencoded, in a stable order."""
        entries = {LABEL_KEY: self.label}
        if self.user:
            entries[USER_KEY] = self.user
        if self.traceback_url:
            entries[TRACEBACK_KEY] = self.traceback_url
        entries.update(self.custom)
        return entries

    def marker_items(self) -> dict[str, str]:
        # The publisher writes key = value; the poller only checks the key's presence.
        return {**self.items(), COMPLETED_KEY: COMPLETED_KEY}


def validate_label(label: str) -> str:
    if not _LABEL.fullmatch(label):
        raise InputError(
            f"invalid label {label!r}: use 1 to 255 letters, digits, '.', '-' or '_' (e.g. 42)"
        )
    return label


def validate_url(url: str, what: str) -> str:
    """An http(s) URL with a host, printable, without credentials (which would be echoed)."""
    try:
        parsed = urlparse(url)
        parsed.port  # noqa: B018  # a port out of range or not a number raises, as a bracket does
    except ValueError:
        parsed = urlparse("")
    if "@" in parsed.netloc:  # user:password@host, not echoed: a secret
        raise InputError(f"invalid {what}: it carries a user name or password; leave them out")
    if parsed.scheme not in ("http", "https") or not parsed.netloc or not url.isprintable():
        raise InputError(f"invalid {what} {url!r}: expected an http:// or https:// URL")
    return url


def parse_custom_key(spec: str) -> tuple[str, str]:
    """`NAME=VALUE` or a bare `NAME`, meaning NAME=NAME (as the contract's completed=completed)."""
    name, sep, value = spec.partition("=")
    if not sep:
        value = name
    if not name:
        raise InputError(f"invalid --key {spec!r}: the name before '=' is empty")
    if name != name.lower() and _CUSTOM_KEY.fullmatch(name.lower()):
        raise InputError(
            f"invalid --key name {name!r}: S3 lowercases metadata keys, write {name.lower()!r}"
        )
    if not _CUSTOM_KEY.fullmatch(name):
        raise InputError(
            f"invalid --key name {name!r}: use lowercase letters, digits, '-' and '_' only"
        )
    if name in RESERVED_KEYS:
        raise InputError(
            f"invalid --key name {name!r}: it is one of GoCD's own keys, set by "
            "--label, --username, --traceback-url or the marker"
        )
    return name, value


def normalize_prefix(path: str) -> str:
    """The listing prefix for PATH: no leading '/', exactly one trailing '/'."""
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):
        raise InputError(f"invalid path {path!r}: it contains control characters")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes in argv, surrogate-escaped
        raise InputError(f"invalid path {path!r}: it is not valid UTF-8") from None
    if path.startswith("s3://"):
        raise InputError(f"invalid path {path!r}: give the key prefix without s3://BUCKET/")
    prefix = path.lstrip("/").rstrip("/")
    if not prefix:
        raise InputError(
            "refusing an empty path: annotating a whole bucket is never a GoCD revision; "
            "give <pipeline>/<stage>/<job>/<N>.<M>"
        )
    if "//" in prefix:
        raise InputError(f"invalid path {path!r}: it contains an empty segment ('//')")
    if any(segment in (".", "..") for segment in prefix.split("/")):
        raise InputError(f"invalid path {path!r}: '.' and '..' are not folders in S3")
    size = len(prefix.encode("utf-8")) + 1
    if size > KEY_LIMIT:
        raise InputError(f"invalid path: {size} bytes as a prefix; S3 keys are at most {KEY_LIMIT}")
    return prefix + "/"


def marker_key(prefix: str) -> str:
    """The marker is a zero-byte object whose key is the prefix itself, trailing slash included."""
    return prefix


def gocd_traceback_url(
    server: str, pipeline: str, pipeline_counter: str, stage: str, stage_counter: str, job: str
) -> str:
    """The job run's page on the GoCD server, as the GoCD S3 publisher writes it: the one home of
    its shape (core/ci.py's GoCD template and backfill's table row are built from it)."""
    return (
        f"{server.rstrip('/')}/go/tab/build/detail/"
        f"{pipeline}/{pipeline_counter}/{stage}/{stage_counter}/{job}"
    )


def traceback_url_from_env(env: Mapping[str, str]) -> str | None:
    """The URL the upstream publisher would write, when GoCD gave every variable it needs."""
    values = [env.get(name, "") for name in TRACEBACK_ENV]
    if not all(values):
        return None
    return gocd_traceback_url(*values)


def parse_revision(name: str) -> tuple[int, int, int] | None:
    """A revision folder name as the poller parses it: major.minor[.patch] of integers."""
    match = _REVISION.fullmatch(name)
    if not match:
        return None
    major, minor, patch = (int(part or 0) for part in match.groups())
    if max(major, minor, patch) > JAVA_INT_MAX:
        return None  # Integer.valueOf throws: a timestamp-like 20240101120000.1 breaks the poll
    return major, minor, patch


def is_revision_name(name: str) -> bool:
    """The one test of a revision folder's name, for every command that writes: `<N>.<M>`, two
    integers the poller parses (Java's int range) and the fetch task splits into pipeline and
    stage counters. `latest`, `42`, `42.1.3` and `20240101120000.1` are not."""
    return _TWO_PART.fullmatch(name) is not None and parse_revision(name) is not None


def last_segment(prefix: str) -> str:
    return prefix.rstrip("/").rpartition("/")[2]


def looks_like_revision_path(prefix: str) -> bool:
    """True when the prefix is <pipeline>/<stage>/<job>/<N>.<M>/ as the poller and fetch expect."""
    segments = prefix.rstrip("/").split("/")
    return len(segments) >= 4 and is_revision_name(segments[-1])
