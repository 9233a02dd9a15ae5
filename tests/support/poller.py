"""GoCD's s3material poll, written again from the plugin's Java for the tests: never our code.

A line-by-line port, through the test's own boto3 client, of:

- `S3ArtifactStore.getLatest`, `latestOf`, `latestOfInternal`, `mostRecentRevision` and
  `isComplete` (indix/gocd-s3-artifacts, utils/src/main/java/com/indix/gocd/utils/store/
  S3ArtifactStore.java:134-198): ListObjects with delimiter '/', page after page; HEAD every
  common prefix of a page with no catch around it; parse the complete ones; keep the maximum;
  HEAD the winner's marker;
- `Revision` (utils/src/main/java/com/indix/gocd/models/Revision.java): `split("\\\\.")`,
  `Integer.valueOf` of the parts, the patch only with exactly three parts, `compareTo`;
- `java.lang.String.split` (one literal character) and `java.lang.Integer.parseInt(s, 10)` as the
  JDK implements them, on UTF-16 code units;
- the AWS SDK v1's `listNextBatchOfObjects`, which asks for the page after NextMarker, or after
  the last key or common prefix when S3 sends no NextMarker.

It raises PollThrows wherever the Java throws, which is where GoCD's poll fails.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

INT_MIN = -2147483648
INT_MAX = 2147483647


class NumberFormatException(Exception):
    pass


class ArrayIndexOutOfBoundsException(Exception):
    pass


class PollThrows(Exception):
    """The poll failed. `where`: "head" (a folder's marker), "parse" (a complete folder's name),
    or "latest" (the HEAD of the winner's marker, 0.0.0 when no folder is complete)."""

    def __init__(self, where: str, key: str, why: str) -> None:
        super().__init__(f"{where} {key}: {why}")
        self.where = where
        self.key = key
        self.why = why


@dataclass(frozen=True)
class Polled:
    """RevisionStatus, as the plugin hands it to GoCD."""

    revision: str
    timestamp: Any
    user: str | None
    traceback_url: str | None
    label: str  # "" when the marker has no go_pipeline_label
    heads: int  # requests this poll sent
    lists: int


# -- java.lang ------------------------------------------------------------------------------------


def utf16_units(text: str) -> list[int]:
    raw = text.encode("utf-16-le", "surrogatepass")
    return [int.from_bytes(raw[i : i + 2], "little") for i in range(0, len(raw), 2)]


def character_digit(unit: int) -> int:
    """Character.digit(char, 10): a decimal digit of any script, as one UTF-16 unit; else -1."""
    if 0xD800 <= unit <= 0xDFFF:
        return -1  # half of a surrogate pair is not a digit
    return unicodedata.decimal(chr(unit), -1)


def parse_int(s: str) -> int:
    """Integer.parseInt(s, 10), JDK 8: accumulates negatively so that MIN_VALUE fits."""
    units = utf16_units(s)
    length = len(units)
    if length == 0:
        raise NumberFormatException(f'For input string: "{s}"')
    negative = False
    i = 0
    limit = -INT_MAX
    first = units[0]
    if first < ord("0"):
        if first == ord("-"):
            negative = True
            limit = INT_MIN
        elif first != ord("+"):
            raise NumberFormatException(f'For input string: "{s}"')
        if length == 1:
            raise NumberFormatException(f'For input string: "{s}"')
        i += 1
    multmin = -(-limit // 10)  # limit / 10 in Java: int division truncates toward zero
    result = 0
    while i < length:
        digit = character_digit(units[i])
        i += 1
        if digit < 0 or result < multmin:
            raise NumberFormatException(f'For input string: "{s}"')
        result *= 10
        if result < limit + digit:
            raise NumberFormatException(f'For input string: "{s}"')
        result -= digit
    return result if negative else -result


def split(s: str, ch: str) -> list[str]:
    """String.split(regex) on its fast path for one literal character, limit 0."""
    found: list[str] = []
    off = 0
    nxt = s.find(ch, off)
    while nxt != -1:
        found.append(s[off:nxt])
        off = nxt + 1
        nxt = s.find(ch, off)
    if off == 0:
        return [s]  # no match: the string itself
    found.append(s[off:])
    size = len(found)
    while size > 0 and found[size - 1] == "":
        size -= 1
    return found[:size]


def index(parts: list[str], i: int) -> str:
    if i >= len(parts):
        raise ArrayIndexOutOfBoundsException(str(i))
    return parts[i]


# -- com.indix.gocd.models.Revision ---------------------------------------------------------------


class Revision:
    def __init__(self, revision: str) -> None:
        self.revision = revision
        parts = split(revision, ".")
        self.major = parse_int(index(parts, 0))
        self.minor = parse_int(index(parts, 1))
        self.patch = parse_int(parts[2]) if len(parts) == 3 else 0

    def compare_to(self, that: Revision) -> int:
        for mine, theirs in (
            (self.major, that.major),
            (self.minor, that.minor),
            (self.patch, that.patch),
        ):
            if mine != theirs:
                return -1 if mine < theirs else 1
        return 0


def collections_max(revisions: list[Revision]) -> Revision:
    """Collections.max: the first of equal elements wins."""
    candidate = revisions[0]
    for nxt in revisions[1:]:
        if nxt.compare_to(candidate) > 0:
            candidate = nxt
    return candidate


# -- com.indix.gocd.utils.store.S3ArtifactStore ---------------------------------------------------


class Poller:
    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.heads = 0
        self.lists = 0

    def get_object_metadata(self, key: str) -> dict[str, Any]:
        self.heads += 1
        try:
            return dict(self.s3.head_object(Bucket=self.bucket, Key=key))
        except botocore.exceptions.ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            raise AmazonS3Exception(key, status) from None

    def list_objects(self, prefix: str, marker: str | None = None) -> dict[str, Any]:
        self.lists += 1
        params = {"Bucket": self.bucket, "Prefix": prefix, "Delimiter": "/"}
        if marker is not None:
            params["Marker"] = marker
        return dict(self.s3.list_objects(**params))

    def list_next_batch(self, listing: dict[str, Any], prefix: str) -> dict[str, Any]:
        marker = listing.get("NextMarker")
        if not marker:
            last = [entry["Key"] for entry in listing.get("Contents", [])]
            last += [entry["Prefix"] for entry in listing.get("CommonPrefixes", [])]
            marker = max(last)
        return self.list_objects(prefix, marker)

    def is_complete(self, prefix: str) -> bool:
        return "completed" in self.get_object_metadata(prefix).get("Metadata", {})

    def most_recent_revision(self, listing: dict[str, Any]) -> Revision:
        common = [entry["Prefix"] for entry in listing.get("CommonPrefixes", [])]
        prefixes = [prefix for prefix in common if self.is_complete(prefix)]
        revisions = []
        for prefix in prefixes:
            parts = split(prefix, "/")
            revisions.append(Revision(parts[len(parts) - 1]))
        if revisions:
            return collections_max(revisions)
        return Revision("0.0.0")

    def latest_of(self, listing: dict[str, Any], prefix: str) -> Revision:
        latest_so_far = self.most_recent_revision(listing)
        while listing.get("IsTruncated"):
            listing = self.list_next_batch(listing, prefix)
            most_recent = self.most_recent_revision(listing)
            if latest_so_far.compare_to(most_recent) > 0:
                most_recent = latest_so_far
            latest_so_far = most_recent
        return latest_so_far

    def get_latest(self, pipeline: str, stage: str, job: str) -> Polled:
        prefix = f"{pipeline}/{stage}/{job}/"
        listing = self.list_objects(prefix)
        try:
            recent = self.latest_of(listing, prefix)
        except AmazonS3Exception as error:
            raise PollThrows("head", error.key, f"HEAD answered {error.status}") from None
        except (NumberFormatException, ArrayIndexOutOfBoundsException) as error:
            raise PollThrows("parse", prefix, f"{type(error).__name__}: {error}") from None
        key = f"{prefix}{recent.revision}/"
        try:
            metadata = self.get_object_metadata(key)
        except AmazonS3Exception as error:
            raise PollThrows("latest", key, f"HEAD answered {error.status}") from None
        user = metadata.get("Metadata", {})
        return Polled(
            revision=recent.revision,
            timestamp=metadata.get("LastModified"),
            user=user.get("user"),
            traceback_url=user.get("traceback_url"),
            label=user.get("go_pipeline_label", ""),
            heads=self.heads,
            lists=self.lists,
        )


class AmazonS3Exception(Exception):
    def __init__(self, key: str, status: int | None) -> None:
        super().__init__(f"{status} on {key}")
        self.key = key
        self.status = status


def poll(s3: Any, bucket: str, package: str) -> Polled:
    """One `latest-revision` request of GoCD for PACKAGE (`pipeline/stage/job`), or PollThrows."""
    pipeline, stage, job = package.strip("/").split("/")
    return Poller(s3, bucket).get_latest(pipeline, stage, job)


def poll_result(s3: Any, bucket: str, package: str) -> Polled | PollThrows:
    """`poll`, with the failure returned instead of raised, for tests that compare both."""
    try:
        return poll(s3, bucket, package)
    except PollThrows as thrown:
        return thrown
