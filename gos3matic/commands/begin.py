"""`gos3matic begin BUCKET PATH`: the pending marker before an upload, so GoCD keeps polling."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gos3matic.commands import options
from gos3matic.commands.runtime import Connection, End, Run
from gos3matic.core.outcome import Plan
from gos3matic.errors import RequestFailed
from gos3matic.exitcodes import ExitCode, epilog
from gos3matic.markers import (
    PendingMarker,
    PendingState,
    pending_metadata,
    refuse_revisions_below,
    write_pending,
)
from gos3matic.report import warn_about_path

NAME = "begin"
BEGIN_NOTE = """\
GoCD's poller HEADs the marker of every folder of a package at every poll, and a folder without
one (a revision still uploading) makes the whole poll fail. A marker without 'completed' is
skipped instead: run 'begin' before the upload and 'annotate' after it, and the package polls
cleanly throughout. 'begin' never takes 'completed' away and never overwrites a marker.

"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        NAME,
        help="write the pending marker before an upload, so GoCD keeps polling the package",
        description=textwrap.fill(
            "Write the marker PATH/ with the annotation's metadata but without 'completed', and "
            "read it back: GoCD's poller skips the folder until 'gos3matic annotate' completes "
            "it. A marker already there, complete or not, is left as it is."
        ),
        epilog=BEGIN_NOTE + epilog(NAME),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    options.add_target(parser)
    options.add_annotation_options(parser)
    run_group = parser.add_argument_group("run")
    run_group.add_argument(
        "--dry-run", action="store_true", help="read the marker and print the write; write nothing"
    )
    options.add_revision_guard(parser)
    options.add_output_options(parser)
    options.add_connection_options(parser)


@dataclass(frozen=True)
class BeginRequest:
    plan: Plan
    connection: Connection
    table: list[options.Row]


def request(args: argparse.Namespace, env: Mapping[str, str]) -> BeginRequest:
    """Every input checked before any client exists, with annotate's rules and GO_* defaults."""
    bucket = options.validate_bucket(args.bucket)
    prefix = options.revision_prefix(args, NAME)
    annotation, annotation_rows = options.annotation_from(args, env)
    connection, endpoint_row = options.connection_from(args, env)
    plan = options.plan_for(bucket, prefix, annotation, 1, dry_run=args.dry_run)
    table = [
        ("bucket", bucket),
        ("prefix", prefix),
        ("marker", f"{prefix} (pending: without 'completed')"),
        endpoint_row,
        *annotation_rows,
    ]
    if args.dry_run:
        table.append(("mode", "dry run: nothing will be written"))
    return BeginRequest(plan, connection, table)


def exit_code(pending: PendingMarker | None) -> ExitCode:
    if pending is None or pending.state is PendingState.MISSING:
        return ExitCode.FAILED
    if pending.state is PendingState.NOT_KEPT:
        return ExitCode.MARKER_NOT_KEPT
    return ExitCode.OK


def run(run: Run) -> End:
    checked = request(run.args, run.env)
    plan = checked.plan
    warn_about_path(plan.prefix, run.output)
    run.table(checked.table)
    store = run.open_store(checked.connection, plan.bucket, 1, plan.marker_key)
    refuse_revisions_below(store.bucket, plan.prefix, NAME)

    pending: PendingMarker | None = None
    failure = None
    try:
        pending = write_pending(store.bucket, plan.marker_key, plan.marker_metadata, plan.dry_run)
    except RequestFailed as error:
        failure = f"cannot write the pending marker s3://{plan.bucket}/{plan.marker_key}: {error}"
        run.output.error(failure)
    lines = []
    if pending is not None:
        lines.append(pending.sentence(plan.bucket))
        if pending.state is PendingState.ALREADY_COMPLETE:
            lines.append("  'completed' is never taken away: GoCD keeps this revision")
        elif pending.state is PendingState.NOT_KEPT:
            lines.append(
                "  GoCD's poll skips this folder, but the complete marker will not be kept "
                "either: GoCD will not see this revision on this store"
            )
    document = {
        "bucket": plan.bucket,
        "prefix": plan.prefix,
        "marker_key": plan.marker_key,
        "dry_run": plan.dry_run,
        "marker_state": pending.state.value if pending else "failed",
        "marker_written": bool(pending and pending.written),
        "marker_metadata": dict(pending.metadata)
        if pending
        else pending_metadata(plan.marker_metadata),
        "pollable": bool(pending and pending.pollable),
        "error": failure,
    }
    return End(exit_code(pending), document, "\n".join(lines) if lines else None)
