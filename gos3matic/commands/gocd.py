"""The GoCD commands around annotate: `status`, `backfill` and `mark`.

Each one: arguments -> a validated request (no S3 call; a refusal writes nothing) -> reads and
writes through s3.py and the engine -> a report and one of cli.py's exit codes. What the poller
makes of a package is decided in gocd.py, which is pure.

Exit codes, beyond annotate's (0 done, 2 bad input, 3 environment, 4 marker not kept,
130 interrupted):
  status    0 GoCD sees a complete revision and can parse every folder; 1 it cannot: a folder
            name it cannot parse, or no complete revision at all.
  backfill  0 every incomplete revision is now complete (or there was none); 1 a revision
            failed, and the run stopped there (a re-run resumes).
  mark      0 the marker is written and read back; 1 objects without the annotation, a failed
            check, or nothing under PATH.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import textwrap
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from gos3matic.cli import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_MARKER_NOT_KEPT,
    EXIT_OK,
    add_annotation_options,
    add_connection_options,
    add_large_object_options,
    add_output_options,
    add_run_options,
    annotation_from,
    connection_from,
    install_stop_signals,
    multipart_from,
    open_bucket,
    progress_for,
    validate_bucket,
    workers_from,
)
from gos3matic.core.contract import LABEL_KEY, marker_key, normalize_prefix, traceback_url_from_env
from gos3matic.core.metadata import encode_annotation
from gos3matic.core.poller import (
    Folder,
    LabelSource,
    Marker,
    PollerView,
    backfill_label,
    folder_name,
    normalize_package,
    parse_label_map,
    poller_view,
    revision_environment,
)
from gos3matic.engine import (
    MarkerState,
    Outcome,
    Plan,
    Tally,
    annotate_prefix,
    finish_marker,
)
from gos3matic.errors import EnvironmentProblem, InputError, NetworkError, S3Error
from gos3matic.report import (
    FAILURES_SHOWN,
    MARKER_SENTENCES,
    parameter_table,
    summary_text,
    warn_about_path,
)
from gos3matic.store.boto import Boto3Bucket, Connection

MARKER_READS = 16  # markers read at once by status: one HEAD per revision folder
SHOWN = 10  # names per row of the status table; --json has them all

STATUS_EPILOG = """\
exit codes:
  0  GoCD sees a complete revision, and can parse every folder name
  1  GoCD triggers nothing from this package: a folder name the poller cannot parse (every
     poll fails), or no complete revision at all
  2  bad input    3  credentials, endpoint or bucket unusable
"""
BACKFILL_EPILOG = """\
Revisions run in ascending order and the run stops at the first one that fails: the poller
only ever moves forward, so completing a later revision first would hide the failed one for
good. A re-run resumes: complete revisions and annotated objects are skipped.

exit codes:
  0  every incomplete revision is now complete (or there was none)
  1  a revision failed; the run stopped there
  2  bad input, e.g. a bad line in --label-map (nothing is written)
  3  credentials, endpoint or bucket unusable    4  the store did not keep a marker's metadata
  130 interrupted
"""
MARK_EPILOG = """\
By default every object under PATH is read first (one HEAD each) and the marker is withheld if
any lacks the label: a marker promises GoCD that the whole revision is annotated. --no-check
trusts the shards instead, e.g. when GoCD only runs this job after every instance passed and
the prefix is too large to read again.

exit codes:
  0  the marker is written and read back (or was already there)
  1  objects without the annotation, a failed read, or nothing under PATH
  2  bad input    3  credentials, endpoint or bucket unusable
  4  the store did not keep the marker's metadata    130 interrupted
"""


def add_parsers(commands: Any) -> None:
    """status, backfill and mark, sharing annotate's option definitions."""
    raw = argparse.RawDescriptionHelpFormatter
    status = commands.add_parser(
        "status",
        help="what GoCD's poller sees in a package, and what it does not tell",
        description=textwrap.fill(
            "Compute what GoCD's s3material poller reports for s3://BUCKET/"
            "PIPELINE/STAGE/JOB/ (the latest complete revision, its label, user, traceback URL "
            "and timestamp) and what it does not: incomplete revisions, folder names it cannot "
            "parse, three-part names the fetch task cannot find. Reads only."
        ),
        epilog=STATUS_EPILOG,
        formatter_class=raw,
    )
    status.add_argument("bucket", metavar="BUCKET")
    status.add_argument("package", metavar="PIPELINE/STAGE/JOB", help="e.g. app/build/package")
    status.add_argument("--json", action="store_true", help="one JSON object on stdout")
    add_connection_options(status)
    status.set_defaults(handler=run_status)

    backfill = commands.add_parser(
        "backfill",
        help="annotate and mark every incomplete revision of a package",
        description=textwrap.fill(
            "Annotate every incomplete revision folder under s3://BUCKET/PIPELINE/"
            "STAGE/JOB/ (its objects, then its marker), labelled with its pipeline counter (42.1 "
            "-> 42) or from --label-map. Complete revisions and folder names the poller cannot "
            "parse are left alone."
        ),
        epilog=BACKFILL_EPILOG,
        formatter_class=raw,
    )
    backfill.add_argument("bucket", metavar="BUCKET")
    backfill.add_argument("package", metavar="PIPELINE/STAGE/JOB", help="e.g. app/build/package")
    backfill.add_argument(
        "--label-map",
        metavar="FILE",
        help="lines <revision>=<label>, e.g. 42.1=2.1.3.42; '#' comments; revisions not in it "
        "are labelled with their pipeline counter",
    )
    add_annotation_options(backfill, label=False)
    add_run_options(backfill)
    add_large_object_options(backfill)
    add_output_options(backfill)
    add_connection_options(backfill)
    backfill.set_defaults(handler=run_backfill, label=None)

    mark = commands.add_parser(
        "mark",
        help="write and verify the marker alone, after sharded annotate runs",
        description=textwrap.fill(
            "Check that every object under s3://BUCKET/PATH/ carries the label, then "
            "write the marker PATH/ and read it back: the job GoCD runs once every 'annotate "
            "--shard' instance passed."
        ),
        epilog=MARK_EPILOG,
        formatter_class=raw,
    )
    mark.add_argument("bucket", metavar="BUCKET")
    mark.add_argument("path", metavar="PATH", help="e.g. app/build/package/42.1")
    add_annotation_options(mark)
    run = add_run_options(mark)
    run.add_argument(
        "--no-check",
        action="store_true",
        help="do not read the objects first; trust that every shard passed",
    )
    run.add_argument(
        "--allow-empty", action="store_true", help="write the marker even when PATH holds no object"
    )
    add_output_options(mark)
    add_connection_options(mark)
    mark.set_defaults(handler=run_mark)


# -- shared I/O -----------------------------------------------------------------------------------


def read_marker(bucket: Boto3Bucket, key: str) -> Marker | None:
    """HEAD on a folder's own key, as the poller issues it; None when there is no such object."""
    try:
        head = bucket.head_object(key)
    except S3Error as error:
        if error.code in ("NotFound", "NoSuchKey"):
            return None
        raise EnvironmentProblem(f"cannot read the marker {key}: {error}") from None
    except NetworkError as error:
        raise EnvironmentProblem(f"cannot read the marker {key}: {error}") from None
    return Marker(dict(head.get("Metadata") or {}), head.get("LastModified"))


def read_view(bucket: Boto3Bucket, package: str) -> PollerView:
    """List the package's folders and read the marker of each one the poller can parse."""
    try:
        names = [folder_name(prefix, package) for prefix in bucket.list_folders(package)]
    except (S3Error, NetworkError) as error:
        raise EnvironmentProblem(f"cannot list s3://{bucket.bucket}/{package}: {error}") from None
    folders = [Folder(name) for name in names]
    parseable = [f for f in folders if f.version is not None]
    with ThreadPoolExecutor(MARKER_READS, thread_name_prefix="marker") as pool:
        markers = pool.map(lambda f: read_marker(bucket, f"{package}{f.name}/"), parseable)
        read = {f.name: Folder(f.name, m) for f, m in zip(parseable, markers, strict=True)}
    return poller_view(package, (read.get(f.name, f) for f in folders))


def _timestamp(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _emit(line: str, out: TextIO) -> None:
    print(line, file=out, flush=True)


# -- status ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusRequest:
    bucket: str
    package: str
    connection: Connection
    endpoint: str


def status_request(args: argparse.Namespace, env: Mapping[str, str]) -> StatusRequest:
    bucket = validate_bucket(args.bucket)
    package = normalize_package(args.package)
    connection, (_, endpoint) = connection_from(args, env)
    return StatusRequest(bucket, package, connection, endpoint)


def status_code(view: PollerView) -> int:
    return EXIT_OK if view.healthy else EXIT_FAILED


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
            ("timestamp", _timestamp(latest.timestamp) or "unknown"),
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


def status_json(request: StatusRequest, view: PollerView, code: int) -> str:
    latest = view.latest
    document = {
        "bucket": request.bucket,
        "package": request.package,
        "revision": latest.name if latest else None,
        "label": latest.label if latest else None,
        "user": latest.user if latest else None,
        "traceback_url": latest.traceback_url if latest else None,
        "timestamp": _timestamp(latest.timestamp) if latest else None,
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
    return json.dumps(document, indent=2)


def run_status(args: argparse.Namespace) -> int:
    request = status_request(args, os.environ)
    bucket = open_bucket(request.connection, request.bucket, MARKER_READS)
    view = read_view(bucket, request.package)
    code = status_code(view)
    for problem in view.problems():
        _emit(f"gos3matic: PROBLEM: {problem}", sys.stderr)
    for warning in view.warnings():
        _emit(f"gos3matic: warning: {warning}", sys.stderr)
    if args.json:
        _emit(status_json(request, view, code), sys.stdout)
    else:
        parameter_table(status_table(request, view), sys.stdout)
    return code


# -- backfill -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackfillRequest:
    bucket: str
    package: str
    label_map: Mapping[str, str]
    connection: Connection
    table: list[tuple[str, str]]
    revision_plan: Callable[[str], tuple[Plan, str, LabelSource]]


def read_label_map(path: str | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read --label-map {path}: {error}") from None
    return parse_label_map(text, path)


def backfill_request(args: argparse.Namespace, env: Mapping[str, str]) -> BackfillRequest:
    """Every input checked before any client exists, the label map to its last line."""
    bucket = validate_bucket(args.bucket)
    package = normalize_package(args.package)
    label_map = read_label_map(args.label_map)
    workers = workers_from(args)
    multipart_threshold, part_size, multipart_row = multipart_from(args)
    connection, endpoint_row = connection_from(args, env)

    def revision_plan(name: str) -> tuple[Plan, str, LabelSource]:
        """The plan annotate would make in the upstream job that produced revision NAME."""
        label, source = backfill_label(name, label_map)
        revision_env = revision_environment(env, package, name, label)
        annotation, _ = annotation_from(args, revision_env)
        plan = Plan(
            bucket=bucket,
            prefix=f"{package}{name}/",
            annotation=encode_annotation(annotation.items()),
            marker_metadata=encode_annotation(annotation.marker_items()),
            workers=workers,
            dry_run=args.dry_run,
            multipart_threshold=multipart_threshold,
            part_size=part_size,
        )
        return plan, label, source

    probe, probe_rows = annotation_from(args, revision_environment(env, package, "1.1", "1"))
    encode_annotation(probe.items())  # user, URL and custom keys refused now, not mid-run
    rows = dict(probe_rows)
    if args.traceback_url is not None:
        traceback_row = f"{args.traceback_url}  (--traceback-url, the same for every revision)"
    elif traceback_url_from_env(revision_environment(env, package, "1.1", "1")):
        server = env["GO_SERVER_DASHBOARD_URL"].rstrip("/")
        pipeline, stage, job = package.rstrip("/").split("/")
        traceback_row = (
            f"{server}/go/tab/build/detail/{pipeline}/<N>/{stage}/<M>/{job} for revision "
            "<N>.<M>  ($GO_SERVER_DASHBOARD_URL)"
        )
    else:
        traceback_row = "not set (no --traceback-url, no $GO_SERVER_DASHBOARD_URL)"
    label_row = (
        f"from {args.label_map} ({len(label_map)} revisions), else the pipeline counter"
        if args.label_map
        else "the pipeline counter: 42.1 -> 42 (see --label-map)"
    )
    table = [
        ("bucket", bucket),
        ("package", package),
        endpoint_row,
        ("label", label_row),
        ("user", rows["user"]),
        ("traceback url", traceback_row),
        ("custom keys", rows["custom keys"]),
        ("workers", str(workers)),
        multipart_row,
    ]
    if args.dry_run:
        table.append(("mode", "dry run: nothing will be written"))
    return BackfillRequest(bucket, package, label_map, connection, table, revision_plan)


@dataclass
class RevisionRun:
    """One incomplete revision of a backfill: its plan, then what happened."""

    folder: Folder
    plan: Plan
    label: str
    source: LabelSource
    outcome: Outcome | None = None

    @property
    def result(self) -> str:
        outcome = self.outcome
        if outcome is None:
            return "not-started"
        if outcome.interrupted:
            return "interrupted"
        if outcome.tally.failed:
            return "failed"
        return {
            MarkerState.WRITTEN: "completed",
            MarkerState.ALREADY_PRESENT: "completed",
            MarkerState.NOT_KEPT: "marker-not-kept",
            MarkerState.EMPTY: "empty",
            MarkerState.DRY_RUN: "would-complete",
        }.get(outcome.marker, outcome.marker.value)

    @property
    def stops_the_run(self) -> bool:
        return self.result in ("failed", "interrupted", "marker-not-kept")


@dataclass
class Backfill:
    view: PollerView
    runs: list[RevisionRun] = field(default_factory=list)

    def exit_code(self) -> int:
        results = {run.result for run in self.runs}
        if "interrupted" in results:
            return EXIT_INTERRUPTED
        if "failed" in results:
            return EXIT_FAILED
        if "marker-not-kept" in results:
            return EXIT_MARKER_NOT_KEPT
        return EXIT_OK


RESULT_SENTENCES = {
    "completed": "complete: objects annotated, marker written and read back",
    "would-complete": "would be completed (dry run)",
    "empty": "left incomplete: no object under it, only a marker without 'completed'",
    "failed": "FAILED: marker withheld; the run stopped here",
    "marker-not-kept": "FAILED: the store did not keep the marker's metadata; the run stopped",
    "interrupted": "interrupted: marker withheld",
    "not-started": "not started (an earlier revision stopped the run)",
}


def backfill_summary(backfill: Backfill) -> str:
    lines = []
    for run in backfill.runs:
        tally = run.outcome.tally if run.outcome else Tally()
        done = tally.would_annotate if run.plan.dry_run else tally.annotated
        verb = "would annotate" if run.plan.dry_run else "annotated"
        counts = f"{verb} {done}, skipped {tally.skipped}, failed {tally.failed}"
        sentence = RESULT_SENTENCES.get(run.result, run.result)
        lines.append(
            f"  {run.folder.name}  label {run.label}  {sentence}"
            + (f"  ({counts})" if run.outcome else "")
        )
        for failure in tally.failures[:FAILURES_SHOWN]:
            lines.append(f"    FAILED {failure.key}: {failure.error}")
    view = backfill.view
    if not backfill.runs:
        lines.append("  nothing to backfill: no incomplete revision")
    lines.append(f"  complete        {len(view.complete)}  (left alone)")
    if view.unparseable:
        lines.append(
            f"  unparseable     {len(view.unparseable)}  (not touched: "
            f"{', '.join(view.unparseable[:SHOWN])}; they still break polling)"
        )
    return "\n".join(lines)


def backfill_json(request: BackfillRequest, backfill: Backfill, dry_run: bool, code: int) -> str:
    revisions = []
    for run in backfill.runs:
        tally = run.outcome.tally if run.outcome else Tally()
        revisions.append(
            {
                "revision": run.folder.name,
                "label": run.label,
                "label_source": run.source.value,
                "was": run.folder.why_incomplete,
                "result": run.result,
                "listed": tally.listed,
                "annotated": tally.annotated,
                "skipped": tally.skipped,
                "would_annotate": tally.would_annotate,
                "failed": tally.failed,
                "marker_state": run.outcome.marker.value if run.outcome else None,
                "failures": [{"key": f.key, "error": f.error} for f in tally.failures],
            }
        )
    document = {
        "bucket": request.bucket,
        "package": request.package,
        "dry_run": dry_run,
        "revisions": revisions,
        "complete": list(backfill.view.complete),
        "unparseable": list(backfill.view.unparseable),
        "exit_code": code,
    }
    return json.dumps(document, indent=2)


def run_backfill(args: argparse.Namespace) -> int:
    request = backfill_request(args, os.environ)
    info: TextIO = sys.stderr if args.json else sys.stdout
    if not args.quiet:
        parameter_table(request.table, info)
    stop = threading.Event()
    install_stop_signals(stop)
    bucket = open_bucket(request.connection, request.bucket, args.workers)
    view = read_view(bucket, request.package)
    # Every plan before any write: a label that cannot be stored refuses the whole run.
    backfill = Backfill(
        view, [RevisionRun(f, *request.revision_plan(f.name)) for f in view.incomplete]
    )

    if view.unparseable:
        _emit(
            f"gos3matic: WARNING: not touching folder name(s) the poller cannot parse: "
            f"{', '.join(view.unparseable)}; they break polling for the whole package "
            "until they are moved or deleted",
            sys.stderr,
        )
    three_part = [run.folder.name for run in backfill.runs if run.folder.name in view.three_part]
    if three_part:
        _emit(
            f"gos3matic: warning: completing three-part folder(s) {', '.join(three_part)}: "
            "the poller will report them, the fetch task will not find them",
            sys.stderr,
        )
    unused = sorted(set(request.label_map) - {run.folder.name for run in backfill.runs})
    if unused:
        _emit(f"gos3matic: note: --label-map revisions not backfilled: {', '.join(unused)}", info)
    if not args.quiet:
        _emit(f"{len(backfill.runs)} incomplete revision(s), in ascending order:", info)
        for run in backfill.runs:
            _emit(
                f"  {run.folder.name}  label {run.label}  ({run.source.value}; "
                f"was: {run.folder.why_incomplete})",
                info,
            )

    def announce(line: str) -> None:
        _emit(line, info)

    for run in backfill.runs:
        if stop.is_set():
            break
        if not args.quiet:
            _emit(f"-- {run.folder.name} (label {run.label})", info)
        progress = progress_for(args)
        try:
            run.outcome = annotate_prefix(run.plan, bucket, bucket, progress, stop, announce)
        finally:
            progress.close()
        if not args.quiet:
            _emit(summary_text(run.outcome, run.plan.dry_run), info)
        if run.stops_the_run:
            break

    code = backfill.exit_code()
    if stop.is_set() and code == EXIT_OK:
        code = EXIT_INTERRUPTED
    _emit("backfill:", info)
    _emit(backfill_summary(backfill), info)
    if args.json:
        _emit(backfill_json(request, backfill, args.dry_run, code), sys.stdout)
    return code


# -- mark -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarkRequest:
    plan: Plan
    check_plan: Plan | None  # None: --no-check
    connection: Connection
    table: list[tuple[str, str]]


def mark_request(args: argparse.Namespace, env: Mapping[str, str]) -> MarkRequest:
    bucket = validate_bucket(args.bucket)
    prefix = normalize_prefix(args.path)
    annotation, annotation_rows = annotation_from(args, env)
    workers = workers_from(args)
    connection, endpoint_row = connection_from(args, env)
    plan = Plan(
        bucket=bucket,
        prefix=prefix,
        annotation=encode_annotation(annotation.items()),
        marker_metadata=encode_annotation(annotation.marker_items()),
        workers=workers,
        dry_run=args.dry_run,
        allow_empty=args.allow_empty,
    )
    # What every object of one revision shares: user and traceback URL differ between the
    # instances of a fan-out (and on a re-run), the label and custom keys do not.
    shared = {LABEL_KEY: annotation.label, **dict(annotation.custom)}
    check_plan = (
        None
        if args.no_check
        else replace(plan, annotation=encode_annotation(shared), dry_run=True, write_marker=False)
    )
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
        ("workers", str(workers)),
    ]
    if args.dry_run:
        table.append(("mode", "dry run: nothing will be written"))
    return MarkRequest(plan, check_plan, connection, table)


def holds_objects(bucket: Boto3Bucket, plan: Plan) -> bool:
    """Whether anything but the marker is under the prefix: one listing page at most."""
    try:
        return any(listed.key != plan.marker_key for listed in bucket.list_objects(plan.prefix))
    except (S3Error, NetworkError) as error:
        raise EnvironmentProblem(f"cannot list s3://{plan.bucket}/{plan.prefix}: {error}") from None


def mark_summary(request: MarkRequest, outcome: Outcome) -> str:
    tally = outcome.tally
    if request.check_plan is None:
        objects = "not checked (--no-check)"
    else:
        objects = (
            f"{tally.listed} checked: {tally.skipped} annotated, "
            f"{tally.would_annotate} not annotated, {tally.failed} could not be read"
        )
    if tally.would_annotate:
        marker = (
            f"not written: {tally.would_annotate} object(s) lack the annotation; "
            "'gos3matic annotate' on this PATH (no --shard) annotates them and writes it"
        )
    else:
        marker = MARKER_SENTENCES[outcome.marker]
    lines = [
        f"  objects         {objects}",
        f"  elapsed         {outcome.elapsed:.1f} s",
        f"  marker          {marker}",
    ]
    for failure in tally.failures[:FAILURES_SHOWN]:
        lines.append(f"  FAILED {failure.key}: {failure.error}")
    return "\n".join(lines)


def mark_code(outcome: Outcome) -> int:
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    if outcome.tally.failed or outcome.tally.would_annotate:
        return EXIT_FAILED
    if outcome.marker is MarkerState.EMPTY:
        return EXIT_FAILED
    if outcome.marker is MarkerState.NOT_KEPT:
        return EXIT_MARKER_NOT_KEPT
    return EXIT_OK


def run_mark(args: argparse.Namespace) -> int:
    request = mark_request(args, os.environ)
    plan = request.plan
    info: TextIO = sys.stderr if args.json else sys.stdout
    warn_about_path(plan.prefix)
    if not args.quiet:
        parameter_table(request.table, info)
    stop = threading.Event()
    install_stop_signals(stop)
    bucket = open_bucket(request.connection, plan.bucket, plan.workers)

    shown = 0
    lock = threading.Lock()

    def not_annotated(line: str) -> None:
        # The check is the engine's dry run: it names each object annotate would still write.
        nonlocal shown
        with lock:
            shown += 1
            if shown <= FAILURES_SHOWN:
                _, found, url = line.partition("s3://")
                _emit(f"not annotated: {found}{url}" if found else line, info)

    if request.check_plan is not None:
        progress = progress_for(args)
        try:
            checked = annotate_prefix(
                request.check_plan, bucket, bucket, progress, stop, not_annotated
            )
        finally:
            progress.close()
        outcome = Outcome(checked.tally, MarkerState.WITHHELD, interrupted=checked.interrupted)
        outcome.elapsed = checked.elapsed
    else:
        outcome = Outcome(Tally(listed=int(holds_objects(bucket, plan))), MarkerState.WITHHELD)

    if outcome.tally.would_annotate == 0:
        finish_marker(plan, bucket, outcome, lambda line: _emit(line, info))
    code = mark_code(outcome)
    _emit(mark_summary(request, outcome), info)
    if args.json:
        tally = outcome.tally
        document = {
            "bucket": plan.bucket,
            "prefix": plan.prefix,
            "marker_key": marker_key(plan.prefix),
            "dry_run": plan.dry_run,
            "checked": request.check_plan is not None,
            "listed": tally.listed,
            "annotated": tally.skipped,
            "not_annotated": tally.would_annotate,
            "failed": tally.failed,
            "marker_state": outcome.marker.value,
            "marker_written": outcome.marker_written,
            "marker_verified": outcome.marker_verified,
            "interrupted": outcome.interrupted,
            "exit_code": code,
            "failures": [{"key": f.key, "error": f.error} for f in tally.failures],
        }
        _emit(json.dumps(document, indent=2), sys.stdout)
    return code
