"""`gos3matic status BUCKET PIPELINE/STAGE/JOB`: what the GoCD poller sees; reads only."""

from __future__ import annotations

import argparse
import datetime as dt
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gos3matic.commands import options
from gos3matic.commands.runtime import Connection, End, Run
from gos3matic.core.contract import LABEL_KEY
from gos3matic.core.poller import PollerView, normalize_package, poller_view
from gos3matic.exitcodes import ExitCode, epilog
from gos3matic.markers import read_folders
from gos3matic.report import table_text

NAME = "status"
MARKER_READS = 16  # markers read at once: one HEAD per revision folder
SHOWN = 10  # names per row of the status table; --json has them all


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        NAME,
        help="what GoCD's poller sees in a package, whether its poll fails and why",
        description=textwrap.fill(
            "Compute what GoCD's s3material poller reports for s3://BUCKET/"
            "PIPELINE/STAGE/JOB/ (the latest complete revision, its label, user, traceback URL "
            "and timestamp), whether its poll throws and why (a folder without a marker, a "
            "complete folder it cannot parse, no complete revision), what each poll costs, and "
            "what it does not tell: incomplete revisions, three-part names the fetch task cannot "
            "find. Reads only."
        ),
        epilog=epilog(NAME),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    options.add_target(parser, "package")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print only the revision GoCD's poll returns (nothing when none) and the problems; "
        "the exit code says the rest",
    )
    options.add_connection_options(parser)


@dataclass(frozen=True)
class StatusRequest:
    bucket: str
    package: str
    connection: Connection
    endpoint: str


def request(args: argparse.Namespace, env: Mapping[str, str]) -> StatusRequest:
    bucket = options.validate_bucket(args.bucket)
    package = normalize_package(args.package)
    connection, (_, endpoint) = options.connection_from(args, env)
    return StatusRequest(bucket, package, connection, endpoint)


def exit_code(view: PollerView) -> ExitCode:
    return ExitCode.FAILED if view.poll_fails else ExitCode.OK


def status_table(request: StatusRequest, view: PollerView) -> list[tuple[str, str]]:
    latest = view.latest
    rows = [
        ("package", f"s3://{request.bucket}/{request.package}"),
        ("endpoint", request.endpoint),
        ("GoCD sees", gocd_sees(view)),
    ]
    if latest is not None:
        rows += [
            ("label", latest.label or f"unavailable (no {LABEL_KEY} on the marker)"),
            ("user", latest.user or "none"),
            ("traceback url", latest.traceback_url or "none"),
            ("timestamp", timestamp(latest.timestamp) or "unknown"),
        ]
    incomplete = [f"{f.name} ({f.why_incomplete})" for f in view.incomplete]
    for name, listed in (
        ("complete", list(view.complete)),
        ("incomplete", incomplete),
        ("no marker", list(view.no_marker)),
        ("unparseable", list(view.unparseable)),
        ("three-part", list(view.three_part)),
    ):
        if listed or name not in ("three-part", "no marker"):
            rows.append((name, _count_and_names(listed)))
    rows.append(("poll", f"FAILS: {view.poll_error}" if view.poll_error else "succeeds"))
    rows.append(("poll cost", view.poll_cost()))
    return rows


def gocd_sees(view: PollerView) -> str:
    latest = view.latest
    if view.poll_fails:
        after = f"; {latest.name} once repaired" if latest else ""
        return f"nothing: every poll fails{after}"
    return latest.name if latest else "nothing (no complete revision)"


def _count_and_names(names: list[str]) -> str:
    if not names:
        return "0"
    shown = ", ".join(names[:SHOWN])
    more = f", ... {len(names) - SHOWN} more (see --json)" if len(names) > SHOWN else ""
    return f"{len(names)}: {shown}{more}"


def status_document(request: StatusRequest, view: PollerView) -> dict[str, Any]:
    latest = view.latest
    document = {
        "bucket": request.bucket,
        "package": request.package,
        "revision": latest.name if latest else None,
        "label": latest.label if latest else None,
        "user": latest.user if latest else None,
        "traceback_url": latest.traceback_url if latest else None,
        "timestamp": timestamp(latest.timestamp) if latest else None,
        "complete": list(view.complete),
        "incomplete": [f.name for f in view.incomplete],
        "incomplete_reasons": {f.name: f.why_incomplete for f in view.incomplete},
        "unparseable": list(view.unparseable),
        "three_part": list(view.three_part),
        "no_marker": list(view.no_marker),
        "poll_fails": view.poll_fails,
        "poll_error": view.poll_error,
        "poll_cost": {"lists": view.lists, "heads": view.heads},
        "healthy": view.healthy,
        "problems": view.problems(),
        "warnings": view.warnings(),
        "notes": view.notes(),
    }
    return document


def run(run: Run) -> End:
    checked = request(run.args, run.env)
    store = run.open_store(checked.connection, checked.bucket, MARKER_READS, checked.package)
    view = poller_view(checked.package, read_folders(store, checked.package))
    output = run.output
    if view.poll_error:
        output.warning(f"gos3matic: PROBLEM: {view.poll_error}")
    for problem in view.problems():
        output.warning(f"gos3matic: PROBLEM: {problem}")
    if not run.quiet:
        for warning in view.warnings():
            output.warning(f"gos3matic: warning: {warning}")
        for note in view.notes():
            output.warning(f"gos3matic: note: {note}")
    if run.json:
        table = None  # the document says it all
    elif run.quiet:  # a script's `$(gos3matic status -q …)`: the revision, or nothing
        table = view.latest.name if view.latest and not view.poll_fails else None
    else:
        table = table_text(status_table(checked, view))
    return End(exit_code(view), status_document(checked, view), table)


def timestamp(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
