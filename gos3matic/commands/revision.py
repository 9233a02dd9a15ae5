"""`gos3matic revision`: the `<N>.<M>` revision folder name for the CI this job runs in."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gos3matic.commands.runtime import End, Run
from gos3matic.core import ci
from gos3matic.exitcodes import ExitCode, epilog

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


def run(run: Run) -> End:
    found = request(run.args, run.env).found
    return End(ExitCode.OK, revision_document(found), None if run.json else found.value)
