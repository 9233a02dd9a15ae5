"""Arguments -> a validated plan -> the engine -> a report and an exit code.

Exit codes (an interface: GoCD jobs branch on them):
  0 done; 1 objects failed or nothing to annotate; 2 bad input; 3 environment (credentials,
  endpoint, bucket); 4 the store did not keep the marker's metadata; 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TextIO
from urllib.parse import urlparse

import botocore.utils

from gos3matic import __version__
from gos3matic.core.contract import (
    TRACEBACK_ENV,
    Annotation,
    normalize_prefix,
    parse_custom_key,
    traceback_url_from_env,
    validate_label,
)
from gos3matic.core.metadata import encode_annotation
from gos3matic.core.poller import (
    RUN_COUNT_ENV,
    RUN_INDEX_ENV,
    Shard,
    parse_shard,
    shard_from_env,
)
from gos3matic.engine import MarkerState, Outcome, Plan, annotate_prefix
from gos3matic.errors import EnvironmentProblem, InputError
from gos3matic.report import (
    BarProgress,
    LineProgress,
    NoProgress,
    error_line,
    parameter_table,
    summary_json,
    summary_text,
    warn_about_path,
)
from gos3matic.store.boto import Boto3Bucket, Connection, make_client
from gos3matic.store.crt import open_object_store
from gos3matic.store.multipart import (
    DEFAULT_PART_SIZE,
    MAX_PARTS,
    PART_CONCURRENCY,
    human_size,
    part_size_option,
    threshold_option,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_ENVIRONMENT = 3
EXIT_MARKER_NOT_KEPT = 4
EXIT_INTERRUPTED = 130

# Measured (benchmarks/bench.py, awscrt, 2,000 objects, local SeaweedFS): 64 beat 16 and 32 by
# 1.2-1.4x and tied 128; against real S3, where each request waits ~10-50 ms, more also helps.
DEFAULT_WORKERS = 64
MAX_WORKERS = 256
_BUCKET = re.compile(r"[A-Za-z0-9._-]{1,255}")  # botocore's own rule; S3-compatible stores vary


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        error_line(f"{message} (see '{self.prog} --help')")
        sys.exit(EXIT_BAD_INPUT)


def add_annotation_options(parser: argparse.ArgumentParser, label: bool = True) -> None:
    """What is stamped on the objects and the marker, with the GO_* defaults the contract names."""
    group = parser.add_argument_group("annotation")
    if label:
        group.add_argument("--label", help="pipeline label (default: $GO_PIPELINE_LABEL)")
    group.add_argument("--username", help="who triggered the run (default: $GO_TRIGGER_USER)")
    group.add_argument(
        "--traceback-url",
        help="link to the upstream run (default: built from $GO_SERVER_DASHBOARD_URL and the "
        "other GO_* variables, when all are set)",
    )
    group.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help="custom metadata, repeatable; a bare NAME means NAME=NAME",
    )


def add_run_options(parser: argparse.ArgumentParser) -> Any:
    """--dry-run and --workers; returns the group, for a command's own run options."""
    run = parser.add_argument_group("run")
    run.add_argument(
        "--dry-run", action="store_true", help="list and print the writes; write nothing"
    )
    run.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        help=f"objects handled at once (default {DEFAULT_WORKERS}, at most {MAX_WORKERS})",
    )
    return run


def add_large_object_options(parser: argparse.ArgumentParser) -> None:
    large = parser.add_argument_group(
        "large objects",
        "SIZE is a byte count or a number with KiB, MiB or GiB (powers of 1024); "
        "KB, MB and GB are refused as ambiguous",
    )
    large.add_argument(
        "--multipart-threshold",
        metavar="SIZE",
        help="objects larger than this are copied in parts (default 5GiB, the most one copy "
        "request can copy; at least 5MiB)",
    )
    large.add_argument(
        "--part-size",
        metavar="SIZE",
        help=f"part size of a multipart copy, 5MiB to 5GiB (default {human_size(DEFAULT_PART_SIZE)}"
        f"); doubled for an object that would need more than {MAX_PARTS:,} parts",
    )


def add_output_options(parser: argparse.ArgumentParser) -> None:
    output = parser.add_argument_group("output")
    output.add_argument(
        "-q", "--quiet", action="store_true", help="no parameter table and no progress"
    )
    output.add_argument(
        "--json",
        action="store_true",
        help="one JSON object on stdout at the end; human text goes to stderr",
    )
    output.add_argument("--no-progress", action="store_true", help="no progress bar or lines")


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    connection = parser.add_argument_group("connection")
    connection.add_argument(
        "--endpoint-url",
        help="S3-compatible endpoint (default: AWS, or $AWS_ENDPOINT_URL_S3 / $AWS_ENDPOINT_URL)",
    )
    connection.add_argument("--region", help="AWS region (default: boto3's resolution)")
    connection.add_argument("--profile", help="AWS profile (default: $AWS_PROFILE)")
    connection.add_argument(
        "--expected-bucket-owner",
        metavar="ACCOUNT",
        help="refuse to touch the bucket unless this account owns it",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gos3matic",
        description="Annotate an S3 prefix so GoCD's s3material poller sees it as a revision.",
    )
    parser.add_argument("--version", action="version", version=f"gos3matic {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    annotate = commands.add_parser(
        "annotate",
        help="stamp every object under PATH with GoCD metadata, then write the marker",
        description="Stamp every object under s3://BUCKET/PATH/ with GoCD metadata, keeping "
        "everything else about it, then write and verify the marker PATH/.",
    )
    annotate.add_argument("bucket", metavar="BUCKET")
    annotate.add_argument("path", metavar="PATH", help="e.g. app/build/package/42.1")
    add_annotation_options(annotate)
    run = add_run_options(annotate)
    run.add_argument("--no-marker", action="store_true", help="annotate the objects only")
    run.add_argument(
        "--allow-empty", action="store_true", help="write the marker even when PATH holds no object"
    )
    run.add_argument(
        "--shard",
        metavar="K/N",
        help="annotate only shard K of N of the keys (a stable hash of each key) and never "
        "write the marker; 'gos3matic mark' writes it once all N passed (default: "
        "$GO_JOB_RUN_INDEX/$GO_JOB_RUN_COUNT when both are set; 1/1 is the whole prefix)",
    )
    add_large_object_options(annotate)
    add_output_options(annotate)
    add_connection_options(annotate)
    annotate.set_defaults(handler=run_annotate)

    from gos3matic.commands import gocd as gocd_commands  # they build on the options above

    gocd_commands.add_parsers(commands)
    return parser


@dataclass(frozen=True)
class AnnotateRequest:
    plan: Plan
    connection: Connection
    table: list[tuple[str, str]]


def _flag_or_env(
    value: str | None, env: Mapping[str, str], name: str, flag: str
) -> tuple[str | None, str]:
    if value is not None:
        if not value:
            raise InputError(f"{flag} is empty")
        return value, flag
    from_env = env.get(name) or None
    return from_env, f"${name}" if from_env else "not set"


def validate_bucket(bucket: str) -> str:
    if bucket.startswith("s3://"):
        raise InputError(f"invalid bucket {bucket!r}: give the bucket name alone, without s3://")
    if not _BUCKET.fullmatch(bucket):
        raise InputError(
            f"invalid bucket name {bucket!r}: use letters, digits, '.', '-' and '_' only"
        )
    return bucket


def _validate_url(url: str, what: str) -> str:
    try:
        parsed = urlparse(url)
        parsed.port  # noqa: B018  # a port out of range or not a number raises, as a bracket does
    except ValueError:
        parsed = urlparse("")
    if "@" in parsed.netloc:  # user:password@host, not echoed: a secret
        raise InputError(f"invalid {what}: it carries a user name or password; leave them out")
    if parsed.scheme not in ("http", "https") or not parsed.netloc or not url.isprintable():
        raise InputError(f"invalid {what} {url!r}: expected an http:// or https:// URL")
    return url


def annotation_from(
    args: argparse.Namespace, env: Mapping[str, str]
) -> tuple[Annotation, list[tuple[str, str]]]:
    """--label, --username, --traceback-url, --key; unset ones from GoCD's GO_* variables.

    Returns the annotation and its rows of the parameter table, each saying where it came from.
    """
    label, label_from = _flag_or_env(args.label, env, "GO_PIPELINE_LABEL", "--label")
    if label is None:
        raise InputError("no label: pass --label, or run inside a GoCD job ($GO_PIPELINE_LABEL)")
    validate_label(label)
    user, user_from = _flag_or_env(args.username, env, "GO_TRIGGER_USER", "--username")
    traceback_url, url_from = _flag_or_env(args.traceback_url, {}, "", "--traceback-url")
    if traceback_url is None:
        traceback_url = traceback_url_from_env(env)
        url_from = "$GO_SERVER_DASHBOARD_URL and GO_*"
    if traceback_url is not None:
        _validate_url(traceback_url, "traceback URL")
    custom = tuple(dict(parse_custom_key(spec) for spec in args.key).items())
    unset = [f"${name}" for name in TRACEBACK_ENV if not env.get(name)]
    missing = "GO_* variables" if len(unset) == len(TRACEBACK_ENV) else ", ".join(unset)
    rows = [
        ("label", f"{label}  ({label_from})"),
        ("user", f"{user}  ({user_from})" if user else "not set (no $GO_TRIGGER_USER)"),
        (
            "traceback url",
            f"{traceback_url}  ({url_from})" if traceback_url else f"not set (no {missing})",
        ),
        ("custom keys", ", ".join(f"{k}={v}" for k, v in custom) or "none"),
    ]
    return Annotation(label, user, traceback_url, custom), rows


def workers_from(args: argparse.Namespace) -> int:
    if not 1 <= args.workers <= MAX_WORKERS:
        raise InputError(f"--workers must be between 1 and {MAX_WORKERS}, not {args.workers}")
    return int(args.workers)


def multipart_from(args: argparse.Namespace) -> tuple[int, int | None, tuple[str, str]]:
    """--multipart-threshold and --part-size, and their row of the parameter table."""
    multipart_threshold = threshold_option(args.multipart_threshold)
    part_size = part_size_option(args.part_size)
    row = (
        "multipart",
        f"objects over {human_size(multipart_threshold)}, in parts of "
        f"{human_size(part_size or DEFAULT_PART_SIZE)} (doubled if {MAX_PARTS:,} are too few)",
    )
    return multipart_threshold, part_size, row


def connection_from(
    args: argparse.Namespace, env: Mapping[str, str]
) -> tuple[Connection, tuple[str, str]]:
    """The connection options, and the endpoint's row of the parameter table."""
    endpoint_url = args.endpoint_url
    if endpoint_url is not None:
        _validate_url(endpoint_url, "--endpoint-url")
    owner = args.expected_bucket_owner
    if owner is not None and not re.fullmatch(r"[0-9]{12}", owner):  # \d would take any digits
        raise InputError(f"invalid --expected-bucket-owner {owner!r}: an AWS account is 12 digits")
    for flag, value in (("--region", args.region), ("--profile", args.profile)):
        if value is not None and not value:
            raise InputError(f"{flag} is empty")
    if args.region:
        try:
            botocore.utils.validate_region_name(args.region)
        except ValueError:
            raise InputError(f"invalid --region {args.region!r}: e.g. us-east-1") from None
    shown_endpoint = (
        endpoint_url
        or env.get("AWS_ENDPOINT_URL_S3")
        or env.get("AWS_ENDPOINT_URL")
        or "AWS default"
    )
    return Connection(endpoint_url, args.region, args.profile, owner), ("endpoint", shown_endpoint)


def shard_from(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[Shard | None, str]:
    """--shard K/N, else GoCD's run instance; None (and N = 1) means the whole prefix."""
    if args.shard is not None:
        shard: Shard | None = parse_shard(args.shard)
        shard_source = "--shard"
    else:
        shard = shard_from_env(env)
        shard_source = f"${RUN_INDEX_ENV}/${RUN_COUNT_ENV}"
    if shard is None:
        return None, "none: the whole prefix"
    if shard[1] == 1:
        return None, f"1/1: the whole prefix  ({shard_source})"
    return shard, f"{shard[0]}/{shard[1]}: the keys whose hash falls to it  ({shard_source})"


def annotate_request(args: argparse.Namespace, env: Mapping[str, str]) -> AnnotateRequest:
    """Every input checked, before any client exists: a refusal here writes nothing."""
    bucket = validate_bucket(args.bucket)
    prefix = normalize_prefix(args.path)

    annotation, annotation_rows = annotation_from(args, env)
    object_metadata = encode_annotation(annotation.items())
    marker_metadata = encode_annotation(annotation.marker_items())

    multipart_threshold, part_size, multipart_row = multipart_from(args)
    workers = workers_from(args)
    connection, endpoint_row = connection_from(args, env)
    shard, shard_row = shard_from(args, env)

    plan = Plan(
        bucket=bucket,
        prefix=prefix,
        annotation=object_metadata,
        marker_metadata=marker_metadata,
        workers=workers,
        dry_run=args.dry_run,
        write_marker=not args.no_marker,
        allow_empty=args.allow_empty,
        multipart_threshold=multipart_threshold,
        part_size=part_size,
        shard=shard,
    )
    if shard is not None:
        marker_row = f"{prefix} (not by a shard: 'gos3matic mark' writes it after all {shard[1]})"
    elif args.no_marker:
        marker_row = "none (--no-marker)"
    else:
        marker_row = f"{prefix} (written last)"
    table = [
        ("bucket", bucket),
        ("prefix", prefix),
        ("marker", marker_row),
        endpoint_row,
        *annotation_rows,
        ("workers", str(workers)),
        multipart_row,
        ("shard", shard_row),
    ]
    if args.dry_run:
        table.append(("mode", "dry run: nothing will be written"))
    return AnnotateRequest(plan, connection, table)


def exit_code(outcome: Outcome) -> int:
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    if outcome.tally.failed or outcome.marker is MarkerState.EMPTY:
        return EXIT_FAILED
    if outcome.marker is MarkerState.NOT_KEPT:
        return EXIT_MARKER_NOT_KEPT
    return EXIT_OK


def install_stop_signals(stop: threading.Event) -> None:
    """First SIGINT/SIGTERM: start nothing new, let in-flight copies end. Second: leave now."""

    def handle(signum: int, _frame: Any) -> None:
        if stop.is_set():
            os._exit(EXIT_INTERRUPTED)
        stop.set()
        print(
            f"\n{signal.Signals(signum).name}: starting no new objects, finishing in-flight "
            "copies and aborting copies in parts; no marker (again to quit at once)",
            file=sys.stderr,
            flush=True,
        )

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def progress_for(args: argparse.Namespace) -> NoProgress | BarProgress | LineProgress:
    if args.quiet or args.no_progress:
        return NoProgress()
    if sys.stderr.isatty():
        return BarProgress(sys.stderr)
    return LineProgress(sys.stderr)


def open_bucket(connection: Connection, bucket: str, workers: int) -> Boto3Bucket:
    """A client sized for `workers` objects and their part copies, on a bucket known reachable."""
    client = make_client(connection, max_connections=workers + 4 + PART_CONCURRENCY)
    opened = Boto3Bucket(client, bucket, connection.expected_bucket_owner)
    opened.check_access()
    return opened


def run_annotate(args: argparse.Namespace) -> int:
    request = annotate_request(args, os.environ)
    plan = request.plan
    info: TextIO = sys.stderr if args.json else sys.stdout
    warn_about_path(plan.prefix)
    if not args.quiet:
        parameter_table(request.table, info)

    stop = threading.Event()
    install_stop_signals(stop)
    bucket = open_bucket(request.connection, plan.bucket, plan.workers)
    # Per-object requests through awscrt when it reaches the bucket as boto3 does (crt.py).
    objects = open_object_store(bucket, request.connection, plan.marker_key, plan.workers)

    progress = progress_for(args)

    def announce(line: str) -> None:
        print(line, file=info, flush=True)

    try:
        outcome = annotate_prefix(plan, bucket, objects, progress, stop, announce)
    finally:
        progress.close()
    code = exit_code(outcome)
    print(summary_text(outcome, plan.dry_run), file=info, flush=True)
    if args.json:
        context = {
            "bucket": plan.bucket,
            "prefix": plan.prefix,
            "marker_key": plan.marker_key,
            "dry_run": plan.dry_run,
        }
        print(summary_json(outcome, context, code), flush=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except InputError as error:
        error_line(str(error))
        return EXIT_BAD_INPUT
    except EnvironmentProblem as error:
        error_line(str(error))
        return EXIT_ENVIRONMENT
    except KeyboardInterrupt:
        error_line("interrupted")
        return EXIT_INTERRUPTED
    except Exception as error:  # the last line of defence: one line, never a traceback
        if os.environ.get("GOS3MATIC_DEBUG"):
            traceback.print_exc()
        error_line(f"unexpected {type(error).__name__}: {error} (GOS3MATIC_DEBUG=1 shows more)")
        return EXIT_FAILED
