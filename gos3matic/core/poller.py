"""What GoCD's s3material poller makes of a package: its folders, their markers, the latest.

Pure: no S3 calls. The commands list the revision folders and read their markers; this module
decides what the poller reports and where its poll fails (docs/gocd-contract.md, "The poll").
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gos3matic.core.contract import (
    COMPLETED_KEY,
    LABEL_KEY,
    TRACEBACK_KEY,
    USER_KEY,
    normalize_prefix,
    parse_revision,
)
from gos3matic.errors import InputError

_TWO_PART = re.compile(r"\d+\.\d+")


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
    def version(self) -> tuple[int, int, int] | None:
        return parse_revision(self.name)

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


@dataclass(frozen=True)
class PollerView:
    """The package as GoCD's poller sees it, and what the poller does not tell."""

    package: str
    latest: Revision | None
    complete: tuple[str, ...]
    incomplete: tuple[Folder, ...]
    unparseable: tuple[str, ...]
    three_part: tuple[str, ...]
    same_version: tuple[tuple[str, ...], ...]  # names the poller cannot tell apart

    @property
    def healthy(self) -> bool:
        return not self.problems()

    def problems(self) -> list[str]:
        """Why GoCD will not trigger from this package as it stands."""
        found = []
        if self.unparseable:
            found.append(
                f"{len(self.unparseable)} folder name(s) the poller cannot parse as "
                f"<N>.<M>: {_names(self.unparseable)}; its parse throws, so every poll of this "
                "package fails and GoCD triggers nothing from it, not even the revisions that "
                "are fine: move or delete them"
            )
        if self.latest is None:
            found.append(
                f"no complete revision under {self.package}: GoCD has nothing to trigger "
                "(no folder has a marker with 'completed'; see 'gos3matic backfill')"
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
        for names in self.same_version:
            found.append(
                f"folders {', '.join(names)} are one and the same revision to the poller "
                "(it compares numbers): only one of them can ever be reported"
            )
        return found


def _names(names: Iterable[str], shown: int = 10) -> str:
    listed = list(names)
    more = f" and {len(listed) - shown} more" if len(listed) > shown else ""
    return ", ".join(listed[:shown]) + more


def _version_order(folder: Folder) -> tuple[tuple[int, int, int], str]:
    return folder.version or (0, 0, 0), folder.name


def poller_view(package: str, folders: Iterable[Folder]) -> PollerView:
    """What the poller reports for these folders (given in listing order), and what it hides."""
    listed = list(folders)
    parseable = [f for f in listed if f.version is not None]
    complete = [f for f in parseable if f.complete]

    latest: Folder | None = None
    for folder in complete:  # like Collections.max: the first of equal versions wins
        if latest is None or _version_order(folder)[0] > _version_order(latest)[0]:
            latest = folder

    by_version: dict[tuple[int, int, int], list[str]] = {}
    for folder in parseable:
        by_version.setdefault(folder.version or (0, 0, 0), []).append(folder.name)

    return PollerView(
        package=package,
        latest=_revision(latest) if latest is not None else None,
        complete=tuple(f.name for f in sorted(complete, key=_version_order)),
        incomplete=tuple(f for f in sorted(parseable, key=_version_order) if not f.complete),
        unparseable=tuple(sorted(f.name for f in listed if f.version is None)),
        three_part=tuple(
            f.name for f in sorted(parseable, key=_version_order) if f.name.count(".") == 2
        ),
        same_version=tuple(tuple(names) for names in by_version.values() if len(names) > 1),
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


def path_warning(prefix: str) -> tuple[str, bool] | None:
    """What is wrong with annotating PREFIX as a GoCD revision, and whether it breaks polling."""
    segments = prefix.rstrip("/").split("/")
    name = segments[-1]
    if len(segments) == 4 and parse_revision(name) is None:
        package = "/".join(segments[:3]) + "/"
        return (
            f"{name!r} is a folder name GoCD's poller cannot parse as <N>.<M>: once it is under "
            f"{package}, every poll of that package fails and GoCD stops triggering from it, "
            "even for the revisions that are fine. Use <pipeline counter>.<stage counter>, "
            "e.g. 42.1",
            True,
        )
    if len(segments) == 4 and not _TWO_PART.fullmatch(name):
        return (
            f"{name!r} has three parts: the poller accepts it, but the fetch task splits a "
            "revision into <pipeline counter>.<stage counter> and will not find it",
            False,
        )
    if len(segments) != 4:
        return (
            f"{prefix!r} is not <pipeline>/<stage>/<job>/<N>.<M>/; GoCD's poller and fetch "
            "task expect that layout",
            False,
        )
    return None
