"""S3's size rules, pure: sizes as users write them, the part limits, one object's part plan.

The part plan is the rule s3transfer's managed copy applies (its ChunksizeAdjuster: the part size
asked for, kept within 5 MiB-5 GiB, doubled until the object fits in 10,000 parts); a unit test
holds the two side by side. See docs/s3-notes.md, "Sizes".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import quote, urlencode

from gos3matic.errors import InputError

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB

MIN_PART = 5 * MiB  # every part but the last
MAX_PART = 5 * GiB
MAX_PARTS = 10_000
MAX_OBJECT = 5 * TiB
SINGLE_COPY_LIMIT = 5 * GiB  # the largest object one CopyObject copies

DEFAULT_THRESHOLD = SINGLE_COPY_LIMIT
DEFAULT_PART_SIZE = 16 * MiB  # raised per object, doubling, until it fits in MAX_PARTS parts

_UNITS = {"": 1, "b": 1, "kib": KiB, "mib": MiB, "gib": GiB, "tib": TiB}
_AMBIGUOUS = frozenset({"k", "kb", "m", "mb", "g", "gb", "t", "tb"})
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*")


def parse_size(text: str, option: str) -> int:
    """'8MiB' -> 8388608. Bytes, or KiB/MiB/GiB/TiB (powers of 1024); KB/MB/GB are refused."""
    match = _SIZE.fullmatch(text)
    if not match:
        raise InputError(f"invalid {option} {text!r}: expected bytes or a size like 64MiB")
    number, unit = match.groups()
    if unit.lower() in _AMBIGUOUS:
        raise InputError(
            f"invalid {option} {text!r}: {unit} is ambiguous (powers of 1000 or of 1024?); "
            f"write {number}{unit[0].upper()}iB for powers of 1024, or a byte count"
        )
    if unit.lower() not in _UNITS:
        raise InputError(f"invalid {option} {text!r}: unknown unit {unit!r}; use KiB, MiB or GiB")
    try:
        size = Decimal(number) * _UNITS[unit.lower()]
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimal numbers
        raise InputError(f"invalid {option} {text!r}") from None
    if size > MAX_OBJECT:  # and no int of 5000 digits, which Python refuses to convert
        raise InputError(f"invalid {option} {text[:40]!r}: over {human_size(MAX_OBJECT)}")
    if size != size.to_integral_value():
        raise InputError(f"invalid {option} {text!r}: not a whole number of bytes")
    return int(size)


def human_size(size: int) -> str:
    """The largest binary unit that writes the size exactly: 5 GiB, 8 MiB, 1536 KiB, 7 B."""
    for unit, factor in (("TiB", TiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"


def validate_part_size(size: int) -> int:
    if size < MIN_PART:
        raise InputError(
            f"--part-size {human_size(size)} is below S3's smallest part, {human_size(MIN_PART)}"
        )
    if size > MAX_PART:
        raise InputError(
            f"--part-size {human_size(size)} is above S3's largest part, {human_size(MAX_PART)}"
        )
    return size


def validate_threshold(size: int) -> int:
    if size > SINGLE_COPY_LIMIT:
        raise InputError(
            f"--multipart-threshold {human_size(size)} is above "
            f"{human_size(SINGLE_COPY_LIMIT)}, the largest object one CopyObject can copy"
        )
    if size < MIN_PART:
        raise InputError(
            f"--multipart-threshold {human_size(size)} is below {human_size(MIN_PART)}, "
            "the smallest part: every multipart copy would be one part, three requests for one"
        )
    return size


def threshold_option(text: str | None) -> int:
    """--multipart-threshold as given, checked; the single-copy limit when not given."""
    if text is None:
        return DEFAULT_THRESHOLD
    return validate_threshold(parse_size(text, "--multipart-threshold"))


def part_size_option(text: str | None) -> int | None:
    """--part-size as given, checked; None (the default, raised per object) when not given."""
    if text is None:
        return None
    return validate_part_size(parse_size(text, "--part-size"))


@dataclass(frozen=True)
class PartPlan:
    """How one object is cut: `parts` ranges of `part_size` bytes, the last one shorter."""

    object_size: int
    part_size: int

    @property
    def parts(self) -> int:
        return max(1, -(-self.object_size // self.part_size))


@dataclass(frozen=True)
class CopiedInParts(PartPlan):
    """A multipart copy done: its plan, and the new VersionId in a versioned bucket."""

    version_id: str | None = None


def part_plan(object_size: int, part_size: int | None = None) -> PartPlan:
    """The part size s3transfer will use for this object: the one asked for (or the default),
    doubled until the object fits in 10,000 parts, kept within 5 MiB-5 GiB."""
    size = DEFAULT_PART_SIZE if part_size is None else part_size
    while -(-object_size // size) > MAX_PARTS:  # doubled first, then clamped, as s3transfer does
        size *= 2
    return PartPlan(object_size, min(max(size, MIN_PART), MAX_PART))


def tagging_header(tag_set: list[Mapping[str, str]]) -> str:
    """GetObjectTagging's TagSet as the url-encoded `Tagging` a create request carries."""
    return urlencode([(tag["Key"], tag["Value"]) for tag in tag_set], quote_via=quote)
