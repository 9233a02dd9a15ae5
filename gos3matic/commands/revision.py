"""`gos3matic revision`: the `<N>.<M>` revision folder name for the CI this job runs in."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gos3matic.commands.runtime import emit
from gos3matic.core import ci
from gos3matic.exitcodes import ExitCode, epilog
from gos3matic.report import to_json

NAME = "revision"


def add_parser(commands: Any) -> None:
    sources = "\n".join(
        f"  {system.name + ':':<17} {system.revision.describe()}" for system in ci.SYSTEMS
    )
    parser = commands.add_parser(
        NAME,
        help="print the <N>.<M> revision folder name for the CI this runs in",
        description=textwrap.fill(
            "Print the <N>.<M> folder name of this CI run, so that one line names the revision "
            "in every CI: gos3matic annotate my-artifacts "
            '"myapp/build/package/$(gos3matic revision)". Reads only the environment; '
            "exit 2, naming the variables looked for, when no CI is detected."
        )
        + "\n\nwhere <N>.<M> comes from:\n"
        + sources,
        epilog=epilog(NAME),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="one JSON object: the revision, the CI detected and the variables used",
    )
    parser.set_defaults(handler=run)


@dataclass(frozen=True)
class RevisionRequest:
    found: ci.Found


def request(args: argparse.Namespace, env: Mapping[str, str]) -> RevisionRequest:
    """The revision of this run, checked: InputError when no CI gives one the poller parses."""
    return RevisionRequest(ci.revision(env))


def revision_document(found: ci.Found) -> dict[str, Any]:
    return {
        "revision": found.value,
        "ci": found.ci.name,
        "ci_key": found.ci.key,
        "source": found.source,
        "variables": dict(found.variables),
    }


def run(args: argparse.Namespace) -> int:
    found = request(args, os.environ).found
    emit(to_json(revision_document(found)) if args.json else found.value, sys.stdout)
    return ExitCode.OK
