"""`gos3matic repair BUCKET PIPELINE/STAGE/JOB`: make GoCD's poll of a package stop throwing.

Only markers are written, and only two kinds of write: a pending marker where a folder has none,
and a complete marker whose folder name the poller cannot parse rewritten without `completed`.
No object is deleted or rewritten; complete, parseable revisions are never touched.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gos3matic.commands import options
from gos3matic.commands.runtime import Connection, End, Run
from gos3matic.core.poller import Folder, PollerView, normalize_package, pollable, poller_view
from gos3matic.errors import RequestFailed
from gos3matic.exitcodes import ExitCode, epilog
from gos3matic.markers import WithdrawState, read_folders, withdraw_completed, write_pending
from gos3matic.store.protocols import Bucket

NAME = "repair"
MARKER_READS = 16  # markers read at once: one HEAD per folder
REPAIR_NOTE = """\
GoCD's poll of a package throws, and triggers nothing, while any folder has no marker object or
a complete folder has a name it cannot parse. repair gives every such folder a marker without
'completed', which the poller skips. It deletes nothing, rewrites no object and leaves complete
revisions as they are; a folder it made pending is completed by annotate or backfill.

"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        NAME,
        help="make GoCD's poll of a package stop failing, without deleting anything",
        description=textwrap.fill(
            "Write a pending marker (no 'completed') into every folder of s3://BUCKET/PIPELINE/"
            "STAGE/JOB/ that has none, and rewrite without 'completed' the marker of every "
            "complete folder whose name the poller cannot parse (its other metadata kept)."
        ),
        epilog=REPAIR_NOTE + epilog(NAME),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    options.add_target(parser, "package")
    parser.add_argument(
        "--dry-run", action="store_true", help="read the package and print every write"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("-q", "--quiet", action="store_true", help="no parameter table")
    options.add_connection_options(parser)


@dataclass(frozen=True)
class RepairRequest:
    bucket: str
    package: str
    dry_run: bool
    connection: Connection
    table: list[options.Row]


def request(args: argparse.Namespace, env: Mapping[str, str]) -> RepairRequest:
    bucket = options.validate_bucket(args.bucket)
    package = normalize_package(args.package)
    connection, endpoint_row = options.connection_from(args, env)
    table = [("bucket", bucket), ("package", package), endpoint_row]
    if args.dry_run:
        table.append(("mode", "dry run: nothing will be written"))
    return RepairRequest(bucket, package, args.dry_run, connection, table)


@dataclass(frozen=True)
class MarkerWrite:
    """One write of the repair and what became of it."""

    folder: str
    key: str
    action: str  # "pending-marker" or "withdraw-completed"
    result: str  # a PendingState or WithdrawState value, or "failed"
    sentence: str
    done: bool  # the folder no longer breaks the poll (or would not, in a dry run)


def repair_folder(request: RepairRequest, bucket: Bucket, folder: Folder) -> MarkerWrite | None:
    """The one write FOLDER needs, if any; a failure is reported, not raised."""
    key = f"{request.package}{folder.name}/"
    if folder.marker is None:
        action = "pending-marker"
    elif folder.complete and folder.version is None:
        action = "withdraw-completed"
    else:
        return None
    try:
        if action == "pending-marker":
            pending = write_pending(bucket, key, {}, request.dry_run)
            done = pending.pollable or request.dry_run
            return MarkerWrite(
                folder.name,
                key,
                action,
                pending.state.value,
                pending.sentence(request.bucket),
                done,
            )
        withdrawal = withdraw_completed(bucket, key, request.dry_run)
        done = withdrawal.done or withdrawal.state is WithdrawState.WOULD_WITHDRAW
        return MarkerWrite(
            folder.name,
            key,
            action,
            withdrawal.state.value,
            withdrawal.sentence(request.bucket),
            done,
        )
    except RequestFailed as error:
        sentence = f"FAILED {action} s3://{request.bucket}/{key}: {error}"
        return MarkerWrite(folder.name, key, action, "failed", sentence, False)


def repair_document(
    request: RepairRequest, writes: list[MarkerWrite], after: PollerView
) -> dict[str, Any]:
    latest = after.latest
    return {
        "bucket": request.bucket,
        "package": request.package,
        "dry_run": request.dry_run,
        "writes": [
            {"folder": w.folder, "key": w.key, "action": w.action, "result": w.result}
            for w in writes
        ],
        "failed": sum(1 for w in writes if not w.done),
        "poll_fails": after.poll_fails,
        "poll_error": after.poll_error,
        "revision": latest.name if latest and not after.poll_fails else None,
    }


def run(run: Run) -> End:
    checked = request(run.args, run.env)
    output = run.output
    run.table(checked.table)
    store = run.open_store(checked.connection, checked.bucket, MARKER_READS, checked.package)
    folders = read_folders(store, checked.package)
    before = poller_view(checked.package, folders)

    writes = []
    for folder in folders:  # listing order: the order the poller meets them
        write = repair_folder(checked, store.bucket, folder)
        if write is not None:
            writes.append(write)
            output.line(write.sentence)

    if checked.dry_run:
        after = poller_view(checked.package, [pollable(f) for f in folders])
    elif writes:
        after = poller_view(checked.package, read_folders(store, checked.package))
    else:
        after = before
    code = ExitCode.FAILED if after.poll_fails or any(not w.done for w in writes) else ExitCode.OK

    verb = "would write" if checked.dry_run else "wrote"
    written = sum(1 for w in writes if w.done)
    summary = [f"repair: {verb} {written} marker(s); {len(writes) - written} failed"]
    if after.poll_fails:
        when = "after these writes" if checked.dry_run else "still"
        output.error(f"GoCD's poll {when} fails: {after.poll_error}")
        for problem in after.problems():
            output.warning(f"gos3matic: PROBLEM: {problem}")
    else:
        latest = after.latest.name if after.latest else "nothing"
        polls = "would poll" if checked.dry_run else "polls"
        summary.append(f"the package {polls} cleanly: GoCD sees {latest}")
    return End(code, repair_document(checked, writes, after), "\n".join(summary))
