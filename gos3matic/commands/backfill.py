"""`gos3matic backfill BUCKET PIPELINE/STAGE/JOB`: annotate and mark every incomplete revision."""

from __future__ import annotations

import argparse
import os
import textwrap
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gos3matic.commands import options
from gos3matic.commands.runtime import (
    Connection,
    install_stop_signals,
    open_store,
    output_for,
    run_engine,
)
from gos3matic.core.backfill import (
    LabelSource,
    backfill_label,
    parse_label_map,
    revision_environment,
)
from gos3matic.core.contract import traceback_url_from_env
from gos3matic.core.metadata import encode_annotation
from gos3matic.core.outcome import MarkerState, Outcome, Plan, Tally
from gos3matic.core.poller import Folder, PollerView, normalize_package
from gos3matic.engine import read_package
from gos3matic.errors import InputError
from gos3matic.exitcodes import ExitCode, epilog
from gos3matic.report import (
    failure_lines,
    summary_line,
    table_text,
    tally_document,
)

NAME = "backfill"
SHOWN = 10  # folder names in one line of the summary
BACKFILL_NOTE = """\
Revisions run in ascending order and the run stops at the first one that fails: the poller
only ever moves forward, so completing a later revision first would hide the failed one for
good. A re-run resumes: complete revisions and annotated objects are skipped.

"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        NAME,
        help="annotate and mark every incomplete revision of a package",
        description=textwrap.fill(
            "Annotate every incomplete revision folder under s3://BUCKET/PIPELINE/"
            "STAGE/JOB/ (its objects, then its marker), labelled with its pipeline counter (42.1 "
            "-> 42) or from --label-map. Complete revisions and folder names the poller cannot "
            "parse are left alone."
        ),
        epilog=BACKFILL_NOTE + epilog(NAME),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    options.add_target(parser, "package")
    parser.add_argument(
        "--label-map",
        metavar="FILE",
        help="lines <revision>=<label>, e.g. 42.1=2.1.3.42; '#' comments; revisions not in it "
        "are labelled with their pipeline counter",
    )
    options.add_annotation_options(parser, label=False)
    options.add_run_options(parser)
    options.add_large_object_options(parser)
    options.add_output_options(parser)
    options.add_connection_options(parser)
    parser.set_defaults(handler=run, label=None)


@dataclass(frozen=True)
class BackfillRequest:
    bucket: str
    package: str
    label_map: Mapping[str, str]
    connection: Connection
    table: list[options.Row]
    revision_plan: Callable[[str], tuple[Plan, str, LabelSource]]


def read_label_map(path: str | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read --label-map {path}: {error}") from None
    return parse_label_map(text, path)


def request(args: argparse.Namespace, env: Mapping[str, str]) -> BackfillRequest:
    """Every input checked before any client exists, the label map to its last line."""
    bucket = options.validate_bucket(args.bucket)
    package = normalize_package(args.package)
    label_map = read_label_map(args.label_map)
    workers = options.workers_from(args)
    multipart_threshold, part_size, multipart_row = options.multipart_from(args)
    connection, endpoint_row = options.connection_from(args, env)

    def revision_plan(name: str) -> tuple[Plan, str, LabelSource]:
        """The plan annotate would make in the upstream job that produced revision NAME."""
        label, source = backfill_label(name, label_map)
        revision_env = revision_environment(env, package, name, label)
        annotation, _ = options.annotation_from(args, revision_env)
        plan = options.plan_for(
            bucket,
            f"{package}{name}/",
            annotation,
            workers,
            dry_run=args.dry_run,
            multipart_threshold=multipart_threshold,
            part_size=part_size,
        )
        return plan, label, source

    probe, probe_rows = options.annotation_from(
        args, revision_environment(env, package, "1.1", "1")
    )
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
        ("max in flight", str(workers)),
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

    def exit_code(self) -> ExitCode:
        results = {run.result for run in self.runs}
        if "interrupted" in results:
            return ExitCode.INTERRUPTED
        if "failed" in results:
            return ExitCode.FAILED
        if "marker-not-kept" in results:
            return ExitCode.MARKER_NOT_KEPT
        return ExitCode.OK


RESULT_SENTENCES = {
    "completed": "complete: objects annotated, marker written and read back",
    "would-complete": "would be completed (dry run)",
    "empty": "left incomplete: no object under it, only a marker without 'completed'",
    "failed": "FAILED: marker withheld; the run stopped here",
    "marker-not-kept": "FAILED: the store did not keep the marker's metadata; the run stopped",
    "interrupted": "interrupted: marker withheld",
    "not-started": "not started (an earlier revision stopped the run)",
}


def backfill_summary(backfill: Backfill, quiet: bool = False, failures: bool = True) -> str:
    """One line per revision (all -q prints), the failed keys, then the folders left alone."""
    lines = [] if quiet else ["backfill:"]
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
        if failures:
            lines += failure_lines(tally, "    ")
    view = backfill.view
    if not backfill.runs:
        lines.append("  nothing to backfill: no incomplete revision")
    if quiet:
        return "\n".join(lines)
    lines.append(f"  complete        {len(view.complete)}  (left alone)")
    if view.unparseable:
        lines.append(
            f"  unparseable     {len(view.unparseable)}  (not touched: "
            f"{', '.join(view.unparseable[:SHOWN])}; they still break polling)"
        )
    return "\n".join(lines)


def backfill_document(
    request: BackfillRequest, backfill: Backfill, dry_run: bool, code: int
) -> dict[str, Any]:
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
                **tally_document(tally),
                "marker_state": run.outcome.marker.value if run.outcome else None,
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
    return document


def run(args: argparse.Namespace) -> int:
    checked = request(args, os.environ)
    output = output_for(args)
    output.note(table_text(checked.table))
    stop = threading.Event()
    install_stop_signals(stop, output)
    store = open_store(checked.connection, checked.bucket, args.workers, checked.package)
    view = read_package(store, checked.package)
    # Every plan before any write: a label that cannot be stored refuses the whole run.
    backfill = Backfill(
        view, [RevisionRun(f, *checked.revision_plan(f.name)) for f in view.incomplete]
    )

    if view.unparseable:
        output.warning(
            f"gos3matic: WARNING: not touching folder name(s) the poller cannot parse: "
            f"{', '.join(view.unparseable)}; they break polling for the whole package "
            "until they are moved or deleted"
        )
    three_part = [run.folder.name for run in backfill.runs if run.folder.name in view.three_part]
    if three_part:
        output.warning(
            f"gos3matic: warning: completing three-part folder(s) {', '.join(three_part)}: "
            "the poller will report them, the fetch task will not find them"
        )
    unused = sorted(set(checked.label_map) - {run.folder.name for run in backfill.runs})
    if unused:
        output.line(f"gos3matic: note: --label-map revisions not backfilled: {', '.join(unused)}")
    output.note(
        "\n".join(
            [f"{len(backfill.runs)} incomplete revision(s), in ascending order:"]
            + [
                f"  {run.folder.name}  label {run.label}  ({run.source.value}; "
                f"was: {run.folder.why_incomplete})"
                for run in backfill.runs
            ]
        )
    )

    for run in backfill.runs:
        if stop.is_set():
            break
        output.note(f"-- {run.folder.name} (label {run.label})")
        run.outcome = run_engine(args, output, run.plan, store, stop, what=run.folder.name)
        output.note(summary_line(run.folder.name, run.outcome, run.plan.dry_run))
        if run.stops_the_run:
            break

    code = backfill.exit_code()
    if stop.is_set() and code == ExitCode.OK:
        code = ExitCode.INTERRUPTED
    output.line(backfill_summary(backfill, quiet=args.quiet, failures=not args.json))
    if args.json:
        output.document(backfill_document(checked, backfill, args.dry_run, code))
    return code
