"""`gos3matic annotate BUCKET PATH`: stamp every object under PATH, then write the marker last."""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gos3matic import workflow
from gos3matic.commands import options
from gos3matic.commands.runtime import Connection, End, Run
from gos3matic.core.outcome import Plan
from gos3matic.errors import (
    EnvironmentProblem,
    InputError,
    NetworkError,
    RequestFailed,
    S3Error,
    cannot_list,
)
from gos3matic.exitcodes import epilog
from gos3matic.markers import refuse_revisions_below
from gos3matic.report import (
    outcome_document,
    summary_line,
    summary_text,
    warn_about_path,
)
from gos3matic.store.protocols import Bucket

NAME = "annotate"


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        NAME,
        help="stamp every object under PATH with GoCD metadata, then write the marker",
        description="Stamp every object under s3://BUCKET/PATH/ with GoCD metadata, keeping "
        "everything else about it, then write and verify the marker PATH/.",
        epilog=epilog(NAME),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    options.add_target(parser)
    options.add_annotation_options(parser)
    run_group = options.add_run_options(parser)
    run_group.add_argument("--no-marker", action="store_true", help="annotate the objects only")
    run_group.add_argument(
        "--allow-empty", action="store_true", help="write the marker even when PATH holds no object"
    )
    run_group.add_argument(
        "--shard",
        metavar="K/N",
        help="annotate only shard K of N of the keys (a stable hash of each key) and never "
        "write the marker; 'gos3matic mark' writes it once all N passed (default: "
        "$GO_JOB_RUN_INDEX/$GO_JOB_RUN_COUNT when both are set; 1/1 is the whole prefix)",
    )
    options.add_revision_guard(parser, marker_option=True)
    options.add_lease_option(parser)
    options.add_large_object_options(parser)
    options.add_output_options(parser)
    options.add_connection_options(parser)


@dataclass(frozen=True)
class AnnotateRequest:
    plan: Plan
    connection: Connection
    table: list[options.Row]


def request(args: argparse.Namespace, env: Mapping[str, str]) -> AnnotateRequest:
    """Every input checked, before any client exists: a refusal here writes nothing."""
    bucket = options.validate_bucket(args.bucket)
    prefix = options.revision_prefix(args, NAME)
    annotation, annotation_rows = options.annotation_from(args, env)
    multipart_threshold, part_size, multipart_row = options.multipart_from(args)
    workers = options.workers_from(args)
    connection, endpoint_row = options.connection_from(args, env)
    shard, shard_row = options.shard_from(args, env)

    plan = options.plan_for(
        bucket,
        prefix,
        annotation,
        workers,
        dry_run=args.dry_run,
        write_marker=not args.no_marker and (args.marker or not args.not_a_revision),
        allow_empty=args.allow_empty,
        multipart_threshold=multipart_threshold,
        part_size=part_size,
        shard=shard,
    )
    if shard is not None:
        marker_row = f"{prefix} (not by a shard: 'gos3matic mark' writes it after all {shard[1]})"
    elif args.no_marker:
        marker_row = "none (--no-marker)"
    elif args.not_a_revision and not args.marker:
        marker_row = "none (--not-a-revision without --marker)"
    else:
        marker_row = f"{prefix} (written last)"
    table = [
        ("bucket", bucket),
        ("prefix", prefix),
        ("marker", marker_row),
        endpoint_row,
        *annotation_rows,
        ("max in flight", str(workers)),
        multipart_row,
        ("shard", shard_row),
    ]
    if args.dry_run:
        table.append(("mode", "dry run: nothing will be written"))
    return AnnotateRequest(plan, connection, table)


def run(run: Run) -> End:
    checked = request(run.args, run.env)
    plan, output = checked.plan, run.output
    warn_about_path(plan.prefix, output)
    run.table(checked.table)
    stop = run.stop
    store = run.open_store(checked.connection, plan.bucket, plan.workers, plan.marker_key)
    refuse_unsafe_path(store.bucket, plan.prefix)
    claim = workflow.claim(store.bucket, plan, output.error, run.args.take_over, run.env)
    taken = getattr(claim, "taken_from", None)
    if taken is not None:
        output.warning(
            "gos3matic: warning: took the lease over: "
            + taken.sentence(plan.marker_key, plan.bucket)
        )
    if claim.pending is not None and claim.pending.written:
        output.note(claim.pending.sentence(plan.bucket))
    revision = workflow.Revision(plan, workflow.Work.ANNOTATE, claim)
    workflow.run([revision], store, stop, run.watch())
    outcome = revision.outcome
    assert outcome is not None  # the first revision always runs
    if run.quiet:
        summary = summary_line(f"s3://{plan.bucket}/{plan.prefix}", outcome, plan.dry_run)
    else:  # under --json the failed keys are on stderr already
        summary = summary_text(outcome, plan.dry_run, failures=not run.json)
    document = {
        "bucket": plan.bucket,
        "prefix": plan.prefix,
        "marker_key": plan.marker_key,
        "dry_run": plan.dry_run,
        **outcome_document(outcome),
        "pending_marker": claim.pending.state.value if claim.pending else None,
    }
    return End(workflow.exit_code([revision.result]), document, summary)


def refuse_unsafe_path(bucket: Bucket, prefix: str, command: str = NAME) -> None:
    """Exit 2 before any write when PATH is not one revision's folder: a prefix holding revision
    folders (a package, or above one) or an object's own key. Either would be relabelled
    wholesale and get a marker GoCD misreads."""
    refuse_revisions_below(bucket, prefix, command)
    key = prefix.rstrip("/")
    if _is_object(bucket, key) and not _holds_anything(bucket, prefix):
        parent = key.rpartition("/")[0]
        instead = f"name the folder that holds it, {parent}" if parent else "name a folder"
        raise InputError(
            f"refusing {key}: it is an object, not a folder, and nothing is under {prefix}; "
            f"a marker would be written at {prefix}. To annotate that object's revision, "
            f"{instead}"
        )


def _is_object(bucket: Bucket, key: str) -> bool:
    try:
        bucket.head_object(key)
    except S3Error:
        return False  # NotFound, or a HEAD we may not make: the listing will tell
    except NetworkError as error:
        raise EnvironmentProblem(f"cannot read s3://{bucket.name}/{key}: {error}") from None
    return True


def _holds_anything(bucket: Bucket, prefix: str) -> bool:
    try:
        return any(True for _ in itertools.islice(bucket.list_objects(prefix), 1))
    except RequestFailed as error:
        raise cannot_list(bucket.name, prefix, error) from None
