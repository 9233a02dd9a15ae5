"""What GoCD's s3material poller makes of a package: its folders, their markers, the latest.

Pure: no S3 calls. The commands list the revision folders and read every folder's marker; this
module replays the poll exactly as the plugin's Java does it (docs/gocd-contract.md, "One poll,
step by step") and says what it reports, or why it throws.
"""

from __future__ import annotations

import datetime as dt
import enum
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from gos3matic.core.contract import (
    COMPLETED_KEY,
    JAVA_INT_MAX,
    JAVA_INT_MIN,
    LABEL_KEY,
    TRACEBACK_KEY,
    USER_KEY,
    is_revision_name,
    normalize_prefix,
    parse_revision,
)
from gos3matic.errors import InputError

PAGE_SIZE = 1000  # common prefixes per listing page, as S3 answers the poller's ListObjects
BASE_REVISION = "0.0.0"  # Revision.base(): what the poll falls back to with no complete folder
MANY_FOLDERS = 1000  # above this, a poll's sequential HEADs are worth a warning

Version = tuple[int, int, int]


# -- the poller's parse, as Java does it ----------------------------------------------------------


def java_split(text: str, separator: str) -> list[str]:
    """Java's `String.split` on a one-character literal: trailing empty strings are dropped."""
    if separator not in text:
        return [text]  # no match: Java returns the string itself, even ""
    parts = text.split(separator)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def java_integer(text: str) -> int | None:
    """`Integer.valueOf(text)`, or None where it throws NumberFormatException.

    A leading sign and leading zeros are accepted; every other character must be a decimal digit
    to `Character.digit(char, 10)`, which also takes other scripts' digits but, reading UTF-16
    units, none outside the Basic Multilingual Plane; the value must fit in a Java int.
    """
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits:
        return None
    value = 0
    for char in digits:
        if ord(char) > 0xFFFF or not char.isdecimal():
            return None
        value = value * 10 + unicodedata.decimal(char)
    if text[0] == "-":
        value = -value
    return value if JAVA_INT_MIN <= value <= JAVA_INT_MAX else None


def poller_revision(name: str) -> Version | None:
    """`new Revision(name)`: (major, minor, patch), or None where the constructor throws.

    `42.1.` parses (the split drops the trailing empty piece), `42.1.3.x` is (42, 1, 0) because the
    patch is read only when there are exactly three pieces, `42.1.x` throws.
    """
    parts = java_split(name, ".")
    if len(parts) < 2:
        return None
    major, minor = java_integer(parts[0]), java_integer(parts[1])
    patch = java_integer(parts[2]) if len(parts) == 3 else 0
    if major is None or minor is None or patch is None:
        return None
    return major, minor, patch


# -- the package and its revision folders ---------------------------------------------------------


def normalize_package(path: str) -> str:
    """`<pipeline>/<stage>/<job>/`, the prefix the poller lists; exactly three segments."""
    package = normalize_prefix(path)
    segments = package.rstrip("/").split("/")
    if len(segments) != 3:
        raise InputError(
            f"invalid package {path!r}: give PIPELINE/STAGE/JOB, the three names of the GoCD "
            f"package material (got {len(segments)} segment{'s' if len(segments) != 1 else ''})"
        )
    if is_revision_name(segments[-1]):
        parent = "/".join(segments[:-1])
        raise InputError(
            f"invalid package {path!r}: its last segment {segments[-1]!r} is a revision folder, "
            f"not a job; backfill takes PIPELINE/STAGE/JOB, e.g. the one holding {parent}/"
            f"<N>.<M>, or annotate that one revision: 'gos3matic annotate BUCKET {path.strip('/')}'"
        )
    return package


def folder_name(common_prefix: str, package: str) -> str:
    """The revision name of a common prefix: `app/build/package/42.1/` -> `42.1`."""
    return common_prefix[len(package) :].rstrip("/")


@dataclass(frozen=True)
class Marker:
    """What a HEAD on a folder's own key answered: its user metadata and Last-Modified."""

    metadata: Mapping[str, str]
    last_modified: dt.datetime | None = None

    @property
    def completed(self) -> bool:
        return COMPLETED_KEY in self.metadata


@dataclass(frozen=True)
class Folder:
    """One candidate revision: a common prefix under the package, and its marker if any."""

    name: str
    marker: Marker | None = None

    @property
    def version(self) -> Version | None:
        """What the poller's parse makes of the name; None where it throws."""
        return poller_revision(self.name)

    @property
    def complete(self) -> bool:
        return self.marker is not None and self.marker.completed

    @property
    def why_incomplete(self) -> str:
        if self.marker is None:
            return "no marker"
        return f"marker without '{COMPLETED_KEY}'"


@dataclass(frozen=True)
class Revision:
    """What the poller reports for the latest complete revision."""

    name: str
    label: str | None  # None: GoCD shows "Original revision number: unavailable"
    user: str | None
    traceback_url: str | None
    timestamp: dt.datetime | None


# -- the poll -------------------------------------------------------------------------------------


class Cause(enum.Enum):
    """Why a poll throws, in the order the poller meets them on a page."""

    NO_MARKER = "no-marker"  # the HEAD of a folder's marker answers 404
    UNPARSEABLE = "unparseable"  # `new Revision(name)` of a complete folder throws
    NO_COMPLETE = "no-complete"  # the fallback 0.0.0 has no marker either


@dataclass(frozen=True)
class PollFailure:
    cause: Cause
    folder: str | None  # None for NO_COMPLETE

    def sentence(self, package: str, folders: int) -> str:
        if self.cause is Cause.NO_MARKER:
            return (
                f"the poll throws at its HEAD of {package}{self.folder}/: that folder has no "
                "marker object (404)"
            )
        if self.cause is Cause.UNPARSEABLE:
            return (
                f"the poll throws parsing the complete folder {self.folder!r}: it is not "
                "<N>.<M> to Java's Integer.valueOf"
            )
        if folders == 0:
            return (
                f"the poll throws at its HEAD of {package}{BASE_REVISION}/: there is no folder "
                f"under {package} at all (a typo in PIPELINE/STAGE/JOB?)"
            )
        return (
            f"the poll throws at its HEAD of {package}{BASE_REVISION}/: no folder is complete, "
            f"so the poller falls back to revision {BASE_REVISION}, which has no marker"
        )


@dataclass(frozen=True)
class Poll:
    """One poll replayed: the folder it reports, and every reason it throws (first one first).

    `reported` is what the poll reports once the failures are gone, i.e. after `repair`: the
    failing folders are pending then, and a pending folder is skipped.
    """

    reported: Folder | None
    failures: tuple[PollFailure, ...]
    lists: int
    heads: int


def _pages(folders: Sequence[Folder]) -> list[Sequence[Folder]]:
    return [folders[i : i + PAGE_SIZE] for i in range(0, len(folders), PAGE_SIZE)] or [[]]


def poll(folders: Sequence[Folder]) -> Poll:
    """S3ArtifactStore.getLatest over FOLDERS in listing order, failures recorded, not raised.

    Page by page: HEAD every folder (a missing marker throws) and keep the complete ones, then
    parse those (an unparseable name throws), take the page's maximum (the first of equals, as
    Collections.max) or 0.0.0, and keep the running maximum unless the page's is not smaller (a
    later page wins ties). Last, HEAD the winner's marker: for 0.0.0 that is a folder literally
    named 0.0.0, and without one the poll throws.

    Pages are cut every PAGE_SIZE folders; S3's pages also count objects lying directly under
    the package, which only moves ties and the 0.0.0 fallback between pages, never whether a
    folder without a marker or an unparseable complete one makes the poll throw.
    """
    failures: list[PollFailure] = []
    winner: tuple[Version, Folder | None] = ((0, 0, 0), None)
    for index, page in enumerate(_pages(folders)):
        failures += [PollFailure(Cause.NO_MARKER, f.name) for f in page if f.marker is None]
        best: tuple[Version, Folder | None] = ((0, 0, 0), None)
        for folder in page:
            if not folder.complete:
                continue
            version = folder.version
            if version is None:
                failures.append(PollFailure(Cause.UNPARSEABLE, folder.name))
            elif best[1] is None or version > best[0]:
                best = (version, folder)
        if index == 0 or not winner[0] > best[0]:
            winner = best
    reported = winner[1]
    if reported is None:
        reported = next((f for f in folders if f.name == BASE_REVISION and f.marker), None)
        if reported is None:
            failures.append(PollFailure(Cause.NO_COMPLETE, None))
    return Poll(reported, tuple(failures), lists=len(_pages(folders)), heads=len(folders) + 1)


# -- the view -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PollerView:
    """The package as GoCD's poller sees it, and what the poller does not tell."""

    package: str
    latest: Revision | None  # what the poll reports; when it throws, what it would once repaired
    complete: tuple[str, ...]
    incomplete: tuple[Folder, ...]
    unparseable: tuple[str, ...]
    three_part: tuple[str, ...]
    same_version: tuple[tuple[str, ...], ...]  # names the poller cannot tell apart
    no_marker: tuple[str, ...] = ()  # in listing order, the order the poller HEADs them
    unparseable_complete: tuple[str, ...] = ()
    unparseable_pending: tuple[str, ...] = ()
    unusual: tuple[str, ...] = ()  # parsed by the poller, but not <N>.<M>[.<P>] as written
    folders: int = 0
    failures: tuple[PollFailure, ...] = ()
    lists: int = 1
    heads: int = 1

    @property
    def poll_fails(self) -> bool:
        return bool(self.failures)

    @property
    def poll_error(self) -> str | None:
        """The sentence naming why the real poll throws: the first failure it meets."""
        if not self.failures:
            return None
        return self.failures[0].sentence(self.package, self.folders)

    @property
    def healthy(self) -> bool:
        return not self.poll_fails

    def problems(self) -> list[str]:
        """Every reason GoCD's poll of this package throws, so that it triggers nothing."""
        found = []
        if self.no_marker:
            found.append(
                f"{len(self.no_marker)} folder(s) without a marker object: "
                f"{_names(self.no_marker)}; the poller HEADs every folder's marker and the 404 "
                "makes it throw, so every poll of this package fails and GoCD triggers nothing "
                "from it, not even the revisions that are fine: 'gos3matic repair' writes a "
                "pending marker into each (annotate or backfill completes them)"
            )
        if self.unparseable_complete:
            found.append(
                f"{len(self.unparseable_complete)} complete folder(s) whose name the poller "
                f"cannot parse as <N>.<M>: {_names(self.unparseable_complete)}; its parse "
                "throws, so every poll of this package fails and GoCD triggers nothing from it, "
                "not even the revisions that are fine: 'gos3matic repair' takes 'completed' off "
                "their markers (or move or delete them)"
            )
        if any(f.cause is Cause.NO_COMPLETE for f in self.failures):
            if self.folders == 0:
                found.append(
                    f"nothing under {self.package} at all: GoCD has nothing to trigger and "
                    "every poll fails (is PIPELINE/STAGE/JOB spelled right?)"
                )
            else:
                found.append(
                    f"no complete revision under {self.package}: GoCD has nothing to trigger, "
                    f"and the poller's fallback {BASE_REVISION}/ has no marker, so every poll "
                    "fails (no folder has a marker with 'completed'; see 'gos3matic backfill')"
                )
        return found

    def warnings(self) -> list[str]:
        """What works today but will surprise someone (incomplete revisions are normal)."""
        found = []
        if self.latest is not None and self.latest.name in self.three_part:
            found.append(
                f"the latest revision {self.latest.name} has three parts: the poller accepts "
                "it, but the fetch task splits it into <pipeline counter>.<stage counter> and "
                "will not find it"
            )
        elif self.three_part:
            found.append(
                f"three-part folder name(s) {_names(self.three_part)}: the poller accepts them, "
                "the fetch task cannot find them"
            )
        if self.unusual:
            found.append(
                f"folder name(s) {_names(self.unusual)}: the poller parses them (Java accepts a "
                "sign, a trailing dot, extra parts), but they are not <N>.<M>; backfill leaves "
                "them alone"
            )
        for names in self.same_version:
            found.append(
                f"folders {', '.join(names)} are one and the same revision to the poller "
                "(it compares numbers): only one of them can ever be reported"
            )
        if self.folders > MANY_FOLDERS:
            found.append(
                f"each poll sends {self.heads:,} HEADs one after the other, one per folder: "
                "with this many folders every poll is slow; removing old folders (marker "
                "included) is the only way to make it cheaper"
            )
        return found

    def notes(self) -> list[str]:
        """Worth knowing, harmless as it stands."""
        found = []
        if self.unparseable_pending:
            found.append(
                f"folder name(s) the poller cannot parse: {_names(self.unparseable_pending)}; "
                "harmless while their marker lacks 'completed' (the poller parses complete "
                "folders only); never complete them"
            )
        return found

    def poll_cost(self) -> str:
        return (
            f"{self.heads:,} HEAD(s), one per folder plus the latest, sent one after the "
            f"other, and {self.lists} LIST(s)"
        )


def _names(names: Iterable[str], shown: int = 10) -> str:
    listed = list(names)
    more = f" and {len(listed) - shown} more" if len(listed) > shown else ""
    return ", ".join(listed[:shown]) + more


def _version_order(folder: Folder) -> tuple[Version, str]:
    return folder.version or (0, 0, 0), folder.name


def _listing_key(name: str) -> bytes:
    # S3 lists common prefixes by the UTF-8 bytes of `<name>/`, the order the poller HEADs them
    return (name + "/").encode("utf-8", "surrogateescape")


def poller_view(package: str, folders: Iterable[Folder]) -> PollerView:
    """What the poller reports for these folders, and what it hides."""
    listed = sorted(folders, key=lambda folder: _listing_key(folder.name))
    parseable = [f for f in listed if f.version is not None]
    complete = [f for f in parseable if f.complete]
    unparseable = [f for f in listed if f.version is None]
    replayed = poll(listed)

    by_version: dict[Version, list[str]] = {}
    for folder in parseable:
        by_version.setdefault(folder.version or (0, 0, 0), []).append(folder.name)

    return PollerView(
        package=package,
        latest=_revision(replayed.reported) if replayed.reported is not None else None,
        complete=tuple(f.name for f in sorted(complete, key=_version_order)),
        incomplete=tuple(f for f in sorted(parseable, key=_version_order) if not f.complete),
        unparseable=tuple(sorted(f.name for f in unparseable)),
        three_part=tuple(
            f.name
            for f in sorted(parseable, key=_version_order)
            if len(java_split(f.name, ".")) == 3
        ),
        same_version=tuple(tuple(names) for names in by_version.values() if len(names) > 1),
        no_marker=tuple(f.name for f in listed if f.marker is None),
        unparseable_complete=tuple(f.name for f in unparseable if f.complete),
        unparseable_pending=tuple(
            f.name for f in unparseable if f.marker is not None and not f.complete
        ),
        unusual=tuple(
            f.name for f in sorted(parseable, key=_version_order) if parse_revision(f.name) is None
        ),
        folders=len(listed),
        failures=replayed.failures,
        lists=replayed.lists,
        heads=replayed.heads,
    )


def _revision(folder: Folder) -> Revision:
    marker = folder.marker or Marker({})
    return Revision(
        name=folder.name,
        label=marker.metadata.get(LABEL_KEY) or None,
        user=marker.metadata.get(USER_KEY) or None,
        traceback_url=marker.metadata.get(TRACEBACK_KEY) or None,
        timestamp=marker.last_modified,
    )


# -- what repair changes --------------------------------------------------------------------------


def pollable(folder: Folder) -> Folder:
    """FOLDER as `repair` leaves it: a pending marker where there was none, and a complete marker
    the poller cannot parse rewritten without `completed`; anything else as it is."""
    if folder.marker is None:
        return Folder(folder.name, Marker({}))
    if folder.complete and folder.version is None:
        kept = {k: v for k, v in folder.marker.metadata.items() if k != COMPLETED_KEY}
        return Folder(folder.name, Marker(kept, folder.marker.last_modified))
    return folder


def path_warning(prefix: str) -> tuple[str, bool] | None:
    """What is wrong with annotating PREFIX as a GoCD revision, and whether it breaks polling."""
    segments = prefix.rstrip("/").split("/")
    name = segments[-1]
    if len(segments) != 4:
        return (
            f"{prefix!r} is not <pipeline>/<stage>/<job>/<N>.<M>/; GoCD's poller and fetch "
            "task expect that layout",
            False,
        )
    if poller_revision(name) is None:
        package = "/".join(segments[:3]) + "/"
        return (
            f"{name!r} is a folder name GoCD's poller cannot parse as <N>.<M>: once it is "
            f"complete under {package}, every poll of that package fails and GoCD stops "
            "triggering from it, even for the revisions that are fine. Use <pipeline "
            "counter>.<stage counter>, e.g. 42.1",
            True,
        )
    if len(java_split(name, ".")) == 3:
        return (
            f"{name!r} has three parts: the poller accepts it, but the fetch task splits a "
            "revision into <pipeline counter>.<stage counter> and will not find it",
            False,
        )
    if not is_revision_name(name):
        return (
            f"{name!r} is not <N>.<M>: the poller reads it as {_dotted(poller_revision(name))}, "
            "but the fetch task and backfill expect <pipeline counter>.<stage counter>",
            False,
        )
    return None


def _dotted(version: Version | None) -> str:
    return ".".join(str(part) for part in version or ())
