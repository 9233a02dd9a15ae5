"""Exit codes: an interface, because GoCD jobs and scripts branch on them. One enum, one text.

Every command's help screen and the README's table are built from or checked against `MEANINGS`.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    FAILED = 1
    BAD_INPUT = 2
    ENVIRONMENT = 3
    MARKER_NOT_KEPT = 4
    INTERRUPTED = 130


PATH_REFUSED = (
    "bad input, or a PATH that is a package root (use backfill) or an object: nothing was written"
)
# What 0 and 1 mean differ by command; 2, 3, 4 and 130 mean the same everywhere but where a
# command says more.
MEANINGS: dict[str, dict[ExitCode, str]] = {
    "begin": {
        ExitCode.OK: "the pending marker is written and read back, or a marker (complete or "
        "pending) was already there and is left as it is",
        ExitCode.FAILED: "the pending marker could not be written",
    },
    "annotate": {
        ExitCode.OK: "every object annotated (or already was) and the marker written and read "
        "back; with --dry-run, no object would fail",
        ExitCode.FAILED: "objects failed, or would fail under --dry-run (named on stderr and in "
        "--json), or nothing under PATH; no complete marker (a pending one keeps the package "
        "pollable)",
        ExitCode.BAD_INPUT: PATH_REFUSED,
    },
    "status": {
        ExitCode.OK: "GoCD's poll succeeds and reports a complete revision",
        ExitCode.FAILED: "GoCD's poll fails, so it triggers nothing from this package: a folder "
        "without a marker, a complete folder it cannot parse, no complete revision, or nothing "
        "under the package at all",
    },
    "repair": {
        ExitCode.OK: "GoCD's poll of the package succeeds now (with --dry-run: would, after the "
        "writes listed)",
        ExitCode.FAILED: "it still fails (no complete revision yet, say), or a write failed; "
        "stderr says why",
    },
    "backfill": {
        ExitCode.OK: "every folder has a marker and every incomplete revision is now complete "
        "(or there was none); --shard: its share of every incomplete revision annotated",
        ExitCode.FAILED: "a revision failed (the run stopped there, every folder left "
        "pollable; a re-run resumes), --mark-only found a revision not fully annotated, or "
        "nothing is under the package",
    },
    "mark": {
        ExitCode.OK: "the marker is written and read back (or was already there)",
        ExitCode.FAILED: "objects without the annotation, a failed read, or nothing under PATH",
        ExitCode.BAD_INPUT: PATH_REFUSED,
    },
    "revision": {
        ExitCode.OK: "the revision printed",
    },
}
COMMON = {
    ExitCode.BAD_INPUT: "bad input: nothing was written",
    ExitCode.ENVIRONMENT: "credentials refused, endpoint unreachable, bucket missing or not "
    "yours: nothing was written",
    ExitCode.MARKER_NOT_KEPT: "the store did not keep the marker's metadata",
    ExitCode.INTERRUPTED: "interrupted (SIGINT/SIGTERM); no complete marker",
}
# Commands that never write a marker or run long enough to be interrupted.
NOT_APPLICABLE: dict[str, frozenset[ExitCode]] = {
    "status": frozenset({ExitCode.MARKER_NOT_KEPT, ExitCode.INTERRUPTED}),
    "begin": frozenset({ExitCode.INTERRUPTED}),
    # a pending marker needs no metadata to keep a folder pollable: what repair writes has none
    "repair": frozenset({ExitCode.MARKER_NOT_KEPT, ExitCode.INTERRUPTED}),
    # Reads the environment only: no CI detected, or a value the poller cannot parse, is exit 2.
    "revision": frozenset({ExitCode.ENVIRONMENT, ExitCode.MARKER_NOT_KEPT, ExitCode.INTERRUPTED}),
}


def meanings(command: str) -> dict[ExitCode, str]:
    """Every exit code COMMAND can end with, and what it means there."""
    skipped = NOT_APPLICABLE.get(command, frozenset())
    both = {**COMMON, **MEANINGS[command]}
    return {code: text for code, text in sorted(both.items()) if code not in skipped}


JSON_NOTE = (
    "With --json, every exit prints one JSON object on stdout with exit_code, and error when the "
    "run ended in one."
)


def epilog(command: str) -> str:
    """The 'exit codes:' block of COMMAND's --help."""
    lines = ["exit codes:"]
    for code, text in meanings(command).items():
        lines.append(f"  {int(code):<3} {text}")
    return "\n".join(lines) + "\n\n" + JSON_NOTE + "\n"
