"""`gos3matic mark BUCKET PATH`: check the objects, then write the marker alone (after shards)."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gos3matic import workflow
from gos3matic.commands import annotate, options
from gos3matic.commands.runtime import Connection, End, Run
from gos3matic.core.contract import LABEL_KEY, marker_key
from gos3matic.core.outcome import Outcome, Plan, Tally
from gos3matic.exitcodes import epilog
from gos3matic.report import (
    MARKER_SENTENCES,
    failure_lines,
    failures_document,
    warn_about_path,
)

NAME = "mark"
MARK_NOTE = """\
By default every object under PATH is read first (one HEAD each) and the marker is withheld if
any lacks the label: a marker promises GoCD that the whole revision is annotated. --no-check
trusts the shards instead, e.g. when GoCD only runs this job after every instance passed and
the prefix is too large to read again.

"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        NAME,
        help="write and verify the marker alone, after sharded annotate runs",
        description=textwrap.fill(
            "Check that every object under s3://BUCKET/PATH/ carries the label, then "
            "write the marker PATH/ and read it back: the job GoCD runs once every 'annotate "
            "--shard' instance passed."
        ),
        epilog=MARK_NOTE + epilog(NAME),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    options.add_target(parser)
    options.add_annotation_options(parser)
    run_group = options.add_run_options(parser)
    run_group.add_argument(
        "--no-check",
        action="store_true",
        help="do not read the objects first; trust that every shard passed",
    )
    run_group.add_argument(
        "--allow-empty", action="store_true", help="write the marker even when PATH holds no object"
    )
    options.add_revision_guard(parser)
    options.add_lease_option(parser)
    options.add_output_options(parser)
    options.add_connection_options(parser)


@dataclass(frozen=True)
class MarkRequest:
    plan: Plan
    work: workflow.Work  # CHECK, or TRUST under --no-check
    connection: Connection
    table: list[options.Row]


def request(args: argparse.Namespace, env: Mapping[str, str]) -> MarkRequest:
    bucket = options.validate_bucket(args.bucket)
    prefix = options.revision_prefix(args, NAME)
    annotation, annotation_rows = options.annotation_from(args, env)
    workers = options.workers_from(args)
    connection, endpoint_row = options.connection_from(args, env)
    plan = options.plan_for(
        bucket, prefix, annotation, workers, dry_run=args.dry_run, allow_empty=args.allow_empty
    )
    # What every object of one revision shares: user and traceback URL differ between the
    # instances of a fan-out (and on a re-run), the label and custom keys do not.
    shared = {LABEL_KEY: annotation.label, **dict(annotation.custom)}
    work = workflow.Work.TRUST if args.no_check else workflow.Work.CHECK
    check_row = (
        "not checked (--no-check): trusting that every shard passed"
        if args.no_check
        else f"each must carry {', '.join(f'{k}={v}' for k, v in shared.items())} first"
    )
    table = [
        ("bucket", bucket),
        ("prefix", prefix),
        ("marker", prefix),
        ("objects", check_row),
        endpoint_row,
        *annotation_rows,
        ("max in flight", str(workers)),
    ]
    if args.dry_run:
        table.append(("mode", "dry run: nothing will be written"))
    return MarkRequest(plan, work, connection, table)


def check_counts(tally: Tally) -> str:
    """mark's words for its check, in its progress display and its summary alike."""
    return (
        f"annotated {tally.skipped}, not annotated {tally.would_annotate}, "
        f"could not be read {tally.failed}"
    )


def mark_summary(request: MarkRequest, outcome: Outcome, failures: bool = True) -> str:
    tally = outcome.tally
    if request.work is workflow.Work.TRUST:
        objects = "not checked (--no-check)"
    else:
        objects = f"{tally.listed} checked: {check_counts(tally)}"
    lines = [
        f"  objects         {objects}",
        f"  elapsed         {outcome.elapsed:.1f} s",
        f"  marker          {marker_sentence(outcome)}",
    ]
    if failures:
        lines += failure_lines(tally, "  ")
    return "\n".join(lines)


def marker_sentence(outcome: Outcome) -> str:
    if outcome.tally.would_annotate:
        return (
            f"not written: {outcome.tally.would_annotate} object(s) lack the annotation; "
            "'gos3matic annotate' on this PATH (no --shard) annotates them and writes it"
        )
    return MARKER_SENTENCES[outcome.marker]


def run(run: Run) -> End:
    checked = request(run.args, run.env)
    plan = checked.plan
    warn_about_path(plan.prefix, run.output)
    run.table(checked.table)
    stop = run.stop
    store = run.open_store(checked.connection, plan.bucket, plan.workers, plan.marker_key)
    annotate.refuse_unsafe_path(store.bucket, plan.prefix, NAME)

    claim = workflow.claim(store.bucket, plan, run.output.error, run.args.take_over, run.env)
    revision = workflow.Revision(plan, checked.work, claim)
    workflow.run([revision], store, stop, run.watch("checking", check_counts))
    outcome = revision.outcome
    assert outcome is not None  # the first revision always runs
    tally = outcome.tally
    checks = checked.work is workflow.Work.CHECK
    if run.quiet:
        checked_count = f"{tally.listed} checked: " if checks else ""
        summary = (
            f"s3://{plan.bucket}/{plan.prefix}: {checked_count}{check_counts(tally)}; "
            f"marker {marker_sentence(outcome)} ({outcome.elapsed:.1f} s)"
        )
    else:
        summary = mark_summary(checked, outcome, failures=not run.json)
    document = {
        "bucket": plan.bucket,
        "prefix": plan.prefix,
        "marker_key": marker_key(plan.prefix),
        "dry_run": plan.dry_run,
        "checked": checks,
        "listed": tally.listed,
        "annotated": tally.skipped,
        "not_annotated": tally.would_annotate,
        "failed": tally.failed,
        "marker_state": outcome.marker.value,
        "marker_written": outcome.marker_written,
        "marker_verified": outcome.marker_verified,
        "interrupted": outcome.interrupted,
        "failures": failures_document(tally),
    }
    return End(workflow.exit_code([revision.result]), document, summary)
