"""Backfill's pure half: each old revision's label, and the GO_* environment its upstream job had.

A revision folder records only its name (`42.1`); the label comes from a label map or from the
pipeline counter, and the traceback URL from the names in the package path.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from gos3matic.core.contract import parse_revision, validate_label
from gos3matic.errors import InputError


class LabelSource(enum.Enum):
    COUNTER = "pipeline counter"
    LABEL_MAP = "label map"


def parse_label_map(text: str, source: str) -> dict[str, str]:
    """`<revision>=<label>` lines, e.g. `42.1=2.1.3.42`; blank lines and `#` comments allowed.

    Every bad line is reported, with its number, before anything is written.
    """
    labels: dict[str, str] = {}
    first_line: dict[str, int] = {}
    errors = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        revision, sep, label = (part.strip() for part in line.partition("="))
        where = f"{source}:{number}"
        if not sep:
            errors.append(f"{where}: expected <revision>=<label> (e.g. 42.1=2.1.3.42), got {raw!r}")
        elif parse_revision(revision) is None:
            errors.append(f"{where}: {revision!r} is not a revision folder name like 42.1")
        elif revision in first_line:
            errors.append(f"{where}: {revision} is already mapped on line {first_line[revision]}")
        else:
            try:
                labels[revision] = validate_label(label)
                first_line[revision] = number
            except InputError as error:
                errors.append(f"{where}: {error}")
    if errors:
        raise InputError("invalid label map:\n  " + "\n  ".join(errors))
    return labels


def backfill_label(name: str, label_map: Mapping[str, str]) -> tuple[str, LabelSource]:
    """A revision's label: from the map, else its pipeline counter (`42.1` -> `42`)."""
    if name in label_map:
        return label_map[name], LabelSource.LABEL_MAP
    version = parse_revision(name)
    if version is None:
        raise InputError(f"{name!r} is not a revision folder name")
    return str(version[0]), LabelSource.COUNTER


def revision_environment(
    env: Mapping[str, str], package: str, name: str, label: str
) -> dict[str, str]:
    """The GO_* variables the upstream job had when it produced revision NAME of PACKAGE.

    The server URL and the trigger user stay as given: the folder does not record them.
    """
    version = parse_revision(name)
    if version is None:
        raise InputError(f"{name!r} is not a revision folder name")
    pipeline, stage, job = package.rstrip("/").split("/")
    return {
        **env,
        "GO_PIPELINE_NAME": pipeline,
        "GO_PIPELINE_COUNTER": str(version[0]),
        "GO_STAGE_NAME": stage,
        "GO_STAGE_COUNTER": str(version[1]),
        "GO_JOB_NAME": job,
        "GO_PIPELINE_LABEL": label,
    }
