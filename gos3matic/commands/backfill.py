"""`gos3matic backfill BUCKET PIPELINE/STAGE/JOB`: annotate and mark every incomplete revision."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gos3matic import workflow
from gos3matic.commands import options
from gos3matic.commands.runtime import Connection, End, RevisionWatch, Run
from gos3matic.core.backfill import (
    LabelSource,
    backfill_label,
    parse_label_map,
    revision_environment,
)
from gos3matic.core.contract import (
    gocd_traceback_url,
    parse_revision,
    traceback_url_from_env,
)
from gos3matic.core.metadata import encode_annotation
from gos3matic.core.outcome import Outcome, Plan, Tally
from gos3matic.core.poller import Folder, PollerView, normalize_package, poller_view
from gos3matic.core.shards import Shard
from gos3matic.errors import InputError, RequestFailed
from gos3matic.exitcodes import ExitCode, epilog
from gos3matic.markers import PendingMarker, read_folders, write_pending
from gos3matic.output import Output
from gos3matic.progress import RunProgress
from gos3matic.report import (
    failure_lines,
    summary_line,
    tally_document,
)
from gos3matic.store.protocols import Bucket

NAME = "backfill"
SHOWN = 10  # folder names in one line of the summary
BACKFILL_NOTE = """\
First every folder without a marker gets a pending one (no 'completed'), so that no folder
makes GoCD's poll of the package fail, however the run ends. Then revisions are completed in
ascending order and the run stops at the first one that fails: the poller only ever moves
forward, so completing a later revision first would hide the failed one for good. A re-run
resumes: complete revisions and annotated objects are skipped.

On more than one machine: 'backfill --shard K/N' in a job with N run instances annotates its
share of every incomplete revision, and 'backfill --mark-only' in the next stage checks and
completes them.

"""


class Mode:
    COMPLETE = "complete"  # annotate each revision, then its marker
    SHARD = "shard"  # annotate one share of every revision's objects; no complete marker
    MARK_ONLY = "mark-only"  # check each revision as `mark` does, then its marker


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        NAME,
        help="annotate and mark every incomplete revision of a package",
        description=textwrap.fill(
            "Give every folder under s3://BUCKET/PIPELINE/STAGE/JOB/ without a marker a pending "
            "one, then annotate every incomplete revision folder (its objects, then its marker), "
            "labelled with its pipeline counter (42.1 -> 42) or from --label-map. Complete "
            "revisions and folder names the poller cannot parse are never completed."
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
    run_group = options.add_run_options(parser)
    run_group.add_argument(
        "--shard",
        metavar="K/N",
        help="annotate only shard K of N of the objects of every incomplete revision and write "
        "no complete marker; 'backfill --mark-only' completes them once all N passed (default: "
        "$GO_JOB_RUN_INDEX/$GO_JOB_RUN_COUNT when both are set; 1/1 is everything)",
    )
    run_group.add_argument(
        "--mark-only",
        action="store_true",
        help="annotate nothing: check that every object of each incomplete revision carries "
        "its label, as 'mark' does, and complete the revisions in ascending order, stopping at "
        "the first that is not fully annotated",
    )
    options.add_large_object_options(parser)
    options.add_output_options(parser)
    options.add_connection_options(parser)
    parser.set_defaults(label=None)


@dataclass(frozen=True)
class BackfillRequest:
    bucket: str
    package: str
    label_map: Mapping[str, str]
    connection: Connection
    table: list[options.Row]
    revision_plan: Callable[[str], tuple[Plan, str, LabelSource]]
    mode: str = Mode.COMPLETE
    shard: Shard | None = None


def read_label_map(path: str | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read --label-map {path}: {error}") from None
    return parse_label_map(text, path)


def mode_from(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[str, Shard | None, str]:
    """--mark-only, else --shard K/N or GoCD's run instance, else the whole job on one machine."""
    if args.mark_only:
        if args.shard is not None:
            raise InputError("--mark-only and --shard exclude each other: mark in the next stage")
        return (
            Mode.MARK_ONLY,
            None,
            (
                "mark only: check every incomplete revision is fully annotated, then complete "
                "them in ascending order"
            ),
        )
    shard, shard_row = options.shard_from(args, env)
    if shard is not None:
        return (
            Mode.SHARD,
            shard,
            (
                f"shard {shard_row}; annotate that share of every incomplete revision, no complete "
                "marker ('backfill --mark-only' writes them)"
            ),
        )
    return Mode.COMPLETE, None, "annotate, then complete, each incomplete revision in order"


def request(args: argparse.Namespace, env: Mapping[str, str]) -> BackfillRequest:
    """Every input checked before any client exists, the label map to its last line."""
    bucket = options.validate_bucket(args.bucket)
    package = normalize_package(args.package)
    label_map = read_label_map(args.label_map)
    workers = options.workers_from(args)
    multipart_threshold, part_size, multipart_row = options.multipart_from(args)
    connection, endpoint_row = options.connection_from(args, env)
    mode, shard, mode_row = mode_from(args, env)

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
            shard=shard,
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
        example = gocd_traceback_url(server, pipeline, "<N>", stage, "<M>", job)
        traceback_row = f"{example} for revision <N>.<M>  ($GO_SERVER_DASHBOARD_URL)"
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
        ("work", mode_row),
    ]
    if args.dry_run:
        table.append(("mode", "dry run: nothing will be written"))
    return BackfillRequest(
        bucket, package, label_map, connection, table, revision_plan, mode, shard
    )


@dataclass
class RevisionRun:
    """One incomplete revision of a backfill: its folder and label, and its way through the
    workflow (its plan, its claim, then its outcome)."""

    folder: Folder
    label: str
    source: LabelSource
    revision: workflow.Revision

    @property
    def plan(self) -> Plan:
        return self.revision.plan

    @property
    def outcome(self) -> Outcome | None:
        return self.revision.outcome

    @property
    def checked(self) -> bool:  # --mark-only: the objects were only read
        return self.revision.checked

    @property
    def result(self) -> str:
        return self.revision.result.value


def revision_run(
    folder: Folder, plan: Plan, label: str, source: LabelSource, mode: str
) -> RevisionRun:
    work = workflow.Work.CHECK if mode == Mode.MARK_ONLY else workflow.Work.ANNOTATE
    return RevisionRun(folder, label, source, workflow.Revision(plan, work))


@dataclass(frozen=True)
class PendingWrite:
    """A folder that had no marker, and the pending marker backfill gave it (or failed to)."""

    folder: str
    marker: PendingMarker | None
    error: str | None = None

    @property
    def result(self) -> str:
        return self.marker.state.value if self.marker else "failed"


@dataclass
class Backfill:
    view: PollerView
    mode: str = Mode.COMPLETE
    runs: list[RevisionRun] = field(default_factory=list)
    pending: list[PendingWrite] = field(default_factory=list)

    @property
    def pending_failed(self) -> list[PendingWrite]:
        return [write for write in self.pending if write.marker is None]

    def exit_code(self) -> ExitCode:
        code = workflow.exit_code([run.revision.result for run in self.runs], empty_fails=False)
        if code is ExitCode.OK and (self.view.folders == 0 or self.pending_failed):
            return ExitCode.FAILED
        return code


RESULT_SENTENCES = {
    "completed": "complete: objects annotated, marker written and read back",
    "would-complete": "would be completed (dry run)",
    "empty": "left pending: no object under it, only a marker without 'completed'",
    "failed": "FAILED: marker withheld, the folder stays pending; the run stopped here",
    "marker-not-kept": "FAILED: the store did not keep the marker's metadata; the run stopped",
    "interrupted": "interrupted: marker withheld, the folder stays pending",
    "not-started": "not started (an earlier revision stopped the run); pending",
    "share-annotated": "this shard's share annotated; 'backfill --mark-only' completes it",
    "not-annotated": "NOT COMPLETED: objects lack the annotation (named above); the run "
    "stopped here",
}


# -- the two phases -------------------------------------------------------------------------------


def write_pending_markers(
    bucket: Bucket,
    package: str,
    view_folders: Sequence[Folder],
    runs: Sequence[RevisionRun],
    dry_run: bool,
) -> list[PendingWrite]:
    """Phase one: a pending marker in every folder without one, before any revision is touched.

    A revision to complete gets its annotation (minus `completed`), any other folder an empty
    pending marker. Never over a marker that appeared meanwhile (If-None-Match).
    """
    plans = {run.folder.name: run.plan for run in runs}
    written = []
    for folder in view_folders:
        if folder.marker is not None:
            continue
        plan = plans.get(folder.name)
        metadata = plan.marker_metadata if plan is not None else {}
        key = f"{package}{folder.name}/"
        try:
            written.append(PendingWrite(folder.name, write_pending(bucket, key, metadata, dry_run)))
        except RequestFailed as error:
            written.append(PendingWrite(folder.name, None, f"{key}: {error}"))
    return written


# -- the report -----------------------------------------------------------------------------------


def backfill_summary(backfill: Backfill, quiet: bool = False, failures: bool = True) -> str:
    """One line per revision (all -q prints), the failed keys, then the folders left alone."""
    lines = [] if quiet else ["backfill:"]
    for write in [] if quiet else backfill.pending:  # -q: the revisions alone (--json has them)
        state = write.marker.state.sentence if write.marker else f"FAILED: {write.error}"
        lines.append(f"  {write.folder}  had no marker: pending marker {state}")
    for run in backfill.runs:
        tally = run.outcome.tally if run.outcome else Tally()
        if run.checked:
            counts = (
                f"checked {tally.listed}: {tally.skipped} annotated, {tally.would_annotate} "
                f"not annotated, {tally.failed} unreadable"
            )
        else:
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
    if view.folders == 0:
        lines.append(f"  nothing under {view.package} at all: is PIPELINE/STAGE/JOB spelled right?")
    elif not backfill.runs:
        lines.append("  nothing to backfill: no incomplete revision")
    if quiet:
        return "\n".join(lines)
    lines.append(f"  complete        {len(view.complete)}  (left alone)")
    if view.unparseable:
        lines.append(
            f"  unparseable     {len(view.unparseable)}  (never completed: "
            f"{', '.join(view.unparseable[:SHOWN])})"
        )
    return "\n".join(lines)


def backfill_document(
    request: BackfillRequest, backfill: Backfill, dry_run: bool
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
    shard = request.shard
    document = {
        "bucket": request.bucket,
        "package": request.package,
        "dry_run": dry_run,
        "mode": backfill.mode,
        "shard": f"{shard[0]}/{shard[1]}" if shard else None,
        "no_marker": list(backfill.view.no_marker),
        "pending_markers": [
            {"folder": write.folder, "result": write.result, "error": write.error}
            for write in backfill.pending
        ],
        "revisions": revisions,
        "complete": list(backfill.view.complete),
        "unparseable": list(backfill.view.unparseable),
    }
    return document


def warn_about_folders(view: PollerView, runs: Sequence[RevisionRun], output: Output) -> None:
    if view.unparseable_complete:
        output.warning(
            f"gos3matic: WARNING: complete folder(s) the poller cannot parse: "
            f"{', '.join(view.unparseable_complete)}; they still make every poll of the package "
            "fail: 'gos3matic repair' takes 'completed' off their markers"
        )
    others = [name for name in view.unparseable if name not in view.unparseable_complete]
    if others:
        output.warning(
            f"gos3matic: note: not completing folder name(s) the poller cannot parse: "
            f"{', '.join(others)}; their pending marker keeps them harmless"
        )
    if view.unusual:
        output.warning(
            f"gos3matic: note: not completing folder name(s) that are not <N>.<M>: "
            f"{', '.join(view.unusual)}; annotate them by hand if they are revisions"
        )
    three_part = [run.folder.name for run in runs if run.folder.name in view.three_part]
    if three_part:
        output.warning(
            f"gos3matic: warning: completing three-part folder(s) {', '.join(three_part)}: "
            "the poller will report them, the fetch task will not find them"
        )


def run(run: Run) -> End:
    args, output = run.args, run.output
    checked = request(args, run.env)
    run.table(checked.table)
    stop = run.stop
    store = run.open_store(checked.connection, checked.bucket, args.workers, checked.package)
    folders = read_folders(store, checked.package)
    view = poller_view(checked.package, folders)
    # Every plan before any write: a label that cannot be stored refuses the whole run.
    targets = [f for f in view.incomplete if parse_revision(f.name) is not None]
    backfill = Backfill(
        view,
        checked.mode,
        [revision_run(f, *checked.revision_plan(f.name), checked.mode) for f in targets],
    )
    if view.folders == 0:
        output.error(
            f"nothing under s3://{checked.bucket}/{checked.package} at all: no folder, so "
            "nothing to backfill (is PIPELINE/STAGE/JOB spelled right?)"
        )

    warn_about_folders(view, backfill.runs, output)
    unused = sorted(set(checked.label_map) - {target.folder.name for target in backfill.runs})
    if unused:
        output.line(f"gos3matic: note: --label-map revisions not backfilled: {', '.join(unused)}")

    backfill.pending = write_pending_markers(
        store.bucket, checked.package, folders, backfill.runs, args.dry_run
    )
    pending_by_folder = {write.folder: write for write in backfill.pending}
    for write in backfill.pending:
        if write.marker is None:
            output.error(f"cannot write a pending marker: {write.error}")
        else:
            output.note(write.marker.sentence(checked.bucket))
    output.note(
        "\n".join(
            [f"{len(backfill.runs)} incomplete revision(s), in ascending order:"]
            + [
                f"  {target.folder.name}  label {target.label}  ({target.source.value}; "
                f"was: {target.folder.why_incomplete})"
                for target in backfill.runs
            ]
        )
    )

    for target in backfill.runs:  # phase one was each revision's claim
        taken = pending_by_folder.get(target.folder.name)
        target.revision.claim = workflow.PendingClaim(taken.marker if taken else None)
    if not backfill.pending_failed:  # else markers cannot be written: completing would fail too
        revisions = [target.revision for target in backfill.runs]
        watch = BackfillWatch(run, checked, backfill.runs)
        workflow.run(revisions, store, stop, watch, ORDERS[checked.mode])

    code = backfill.exit_code()
    if stop.is_set() and code == ExitCode.OK:
        code = ExitCode.INTERRUPTED
    summary = backfill_summary(backfill, quiet=args.quiet, failures=not args.json)
    return End(code, backfill_document(checked, backfill, args.dry_run), summary)


ORDERS = {
    # Markers strictly ascending, never past a revision that failed, was interrupted, lost its
    # marker's metadata or (--mark-only) is not fully annotated: the later ones are left pending,
    # `not-started`. GoCD's poller only moves forward: a later revision completed first would
    # make it skip the earlier one for good. A revision that is `empty` does not stop the run.
    Mode.COMPLETE: workflow.Order.OVERLAPPED,  # later revisions annotated while earlier finish
    Mode.MARK_ONLY: workflow.Order.ONE_BY_ONE,
    # --shard: no marker is written, so no order to keep, and a failed revision does not stop
    # the others: the mark-only stage will not pass it.
    Mode.SHARD: workflow.Order.INDEPENDENT,
}


class BackfillWatch(RevisionWatch):
    """Each revision named as it starts (one by one) and summed up in one line as it ends."""

    def __init__(self, run: Run, request: BackfillRequest, runs: Sequence[RevisionRun]) -> None:
        super().__init__(run, "backfilling")
        self.request = request
        self.runs = {run.plan.prefix: run for run in runs}

    def progress(self, revisions: Sequence[workflow.Revision]) -> RunProgress:
        if self.request.mode == Mode.COMPLETE:
            return self.run.progress(self.what)
        return self.run.progress(self._run(revisions[0]).folder.name)

    def starting(self, revision: workflow.Revision) -> None:
        run = self._run(revision)
        checking = ": checking" if run.checked else ""
        self.output.note(f"-- {run.folder.name} (label {run.label}){checking}")

    def finished(self, revision: workflow.Revision) -> None:
        run = self._run(revision)
        if run.outcome is not None and not run.checked:
            self.output.note(summary_line(run.folder.name, run.outcome, run.plan.dry_run))

    def _run(self, revision: workflow.Revision) -> RevisionRun:
        return self.runs[revision.plan.prefix]
