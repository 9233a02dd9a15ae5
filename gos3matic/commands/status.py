"""`gos3matic status BUCKET PIPELINE/STAGE/JOB`: what the GoCD poller sees; reads only."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gos3matic.commands import options
from gos3matic.commands.runtime import Connection, emit, open_store
from gos3matic.core.contract import LABEL_KEY
from gos3matic.core.poller import PollerView, normalize_package
from gos3matic.engine import read_package
from gos3matic.exitcodes import ExitCode, epilog
from gos3matic.report import parameter_table, to_json

NAME = "status"
MARKER_READS = 16  # markers read at once: one HEAD per revision folder
SHOWN = 10  # names per row of the status table; --json has them all


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        NAME,
        help="what GoCD's poller sees in a package, and what it does not tell",
        description=textwrap.fill(
            "Compute what GoCD's s3material poller reports for s3://BUCKET/"
            "PIPELINE/STAGE/JOB/ (the latest complete revision, its label, user, traceback URL "
            "and timestamp) and what it does not: incomplete revisions, folder names it cannot "
            "parse, three-part names the fetch task cannot find. Reads only."
        ),
        epilog=epilog(NAME),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    options.add_target(parser, "package")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    options.add_connection_options(parser)
    parser.set_defaults(handler=run)


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
    return ExitCode.OK if view.healthy else ExitCode.FAILED


def status_table(request: StatusRequest, view: PollerView) -> list[tuple[str, str]]:
    latest = view.latest
    rows = [
        ("package", f"s3://{request.bucket}/{request.package}"),
        ("endpoint", request.endpoint),
        ("GoCD sees", latest.name if latest else "nothing (no complete revision)"),
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
        ("unparseable", list(view.unparseable)),
        ("three-part", list(view.three_part)),
    ):
        if listed or name != "three-part":
            rows.append((name, _count_and_names(listed)))
    return rows


def _count_and_names(names: list[str]) -> str:
    if not names:
        return "0"
    shown = ", ".join(names[:SHOWN])
    more = f", ... {len(names) - SHOWN} more (see --json)" if len(names) > SHOWN else ""
    return f"{len(names)}: {shown}{more}"


def status_document(request: StatusRequest, view: PollerView, code: int) -> dict[str, Any]:
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
        "healthy": view.healthy,
        "problems": view.problems(),
        "warnings": view.warnings(),
        "exit_code": code,
    }
    return document


def run(args: argparse.Namespace) -> int:
    checked = request(args, os.environ)
    store = open_store(checked.connection, checked.bucket, MARKER_READS, checked.package)
    view = read_package(store, checked.package)
    code = exit_code(view)
    for problem in view.problems():
        emit(f"gos3matic: PROBLEM: {problem}", sys.stderr)
    for warning in view.warnings():
        emit(f"gos3matic: warning: {warning}", sys.stderr)
    if args.json:
        emit(to_json(status_document(checked, view, code)), sys.stdout)
    else:
        parameter_table(status_table(checked, view), sys.stdout)
    return code


def timestamp(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
