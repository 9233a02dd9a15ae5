"""The option groups commands share, and their validators: arguments -> checked values.

No S3 call here: a refusal raises InputError (exit 2) before any client exists, so it writes
nothing. Each validator also returns its row of the parameter table, saying where a value came
from.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from typing import Any

from gos3matic.core import ci
from gos3matic.core.contract import (
    TRACEBACK_ENV,
    Annotation,
    is_revision_name,
    last_segment,
    normalize_prefix,
    parse_custom_key,
    validate_label,
    validate_url,
)
from gos3matic.core.metadata import encode_annotation
from gos3matic.core.outcome import Plan
from gos3matic.core.shards import RUN_COUNT_ENV, RUN_INDEX_ENV, Shard, parse_shard, shard_from_env
from gos3matic.core.sizes import (
    DEFAULT_PART_SIZE,
    MAX_PARTS,
    human_size,
    part_size_option,
    threshold_option,
)
from gos3matic.errors import InputError
from gos3matic.store.flow import DEFAULT_CEILING
from gos3matic.store.protocols import Connection

# The ceiling of requests in flight; the flow control grows towards it while answers come back
# clean and paces itself on SlowDown. Its home is store/flow.py; measured in benchmarks/.
DEFAULT_MAX_IN_FLIGHT = DEFAULT_CEILING
MAX_IN_FLIGHT = 4096
# What any S3 has ever accepted: 3 to 255 characters (63 today; uppercase and '_' only in legacy
# us-east-1 buckets, which still exist), a letter or digit at each end.
_BUCKET = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{1,253})[A-Za-z0-9]")

Row = tuple[str, str]


# -- option groups --------------------------------------------------------------------------------


def add_target(parser: argparse.ArgumentParser, what: str = "path") -> None:
    """BUCKET and PATH (or PIPELINE/STAGE/JOB), the two positional arguments of every command;
    or the two as one s3://BUCKET/PATH (resolve_target splits it)."""
    parser.add_argument("bucket", metavar="BUCKET", help="a bucket name, or s3://BUCKET/PATH alone")
    if what == "path":
        parser.add_argument("path", metavar="PATH", nargs="?", help="e.g. app/build/package/42.1")
    else:
        parser.add_argument(
            "package", metavar="PIPELINE/STAGE/JOB", nargs="?", help="e.g. app/build/package"
        )


def resolve_target(args: argparse.Namespace) -> None:
    """`s3://BUCKET/PATH` as one argument becomes BUCKET and PATH; a missing PATH is refused."""
    name = "path" if hasattr(args, "path") else "package" if hasattr(args, "package") else None
    if name is None:
        return
    metavar = "PATH" if name == "path" else "PIPELINE/STAGE/JOB"
    rest = getattr(args, name)
    if args.bucket[:5].lower() == "s3://":
        if rest is not None:
            raise InputError(
                f"invalid bucket {args.bucket!r} followed by {rest!r}: give either "
                f"s3://BUCKET/{metavar} alone or BUCKET {metavar}"
            )
        bucket, _, rest = args.bucket[len("s3://") :].partition("/")  # S3:// as well
        if not bucket or not rest:
            raise InputError(f"invalid {args.bucket!r}: expected s3://BUCKET/{metavar}")
        args.bucket = bucket
        setattr(args, name, rest)
    elif rest is None:
        raise InputError(f"the following arguments are required: {metavar}")


NOT_A_REVISION_HELP = (
    "PATH is not a GoCD revision folder and that is on purpose: skip the refusal of a PATH whose "
    "last segment is not <N>.<M>. Dangerous: a folder GoCD cannot parse, once complete, makes "
    "every poll of its package fail; so annotate stamps the objects only, and writes a marker "
    "only with --marker as well. A PATH holding revision folders is refused all the same"
)


def add_revision_guard(parser: argparse.ArgumentParser, marker_option: bool = False) -> None:
    """--not-a-revision (and, for annotate, --marker): the one way past revision_prefix."""
    guard = parser.add_argument_group("paths outside GoCD")
    guard.add_argument("--not-a-revision", action="store_true", help=NOT_A_REVISION_HELP)
    if marker_option:
        guard.add_argument(
            "--marker",
            action="store_true",
            help="with --not-a-revision: write the marker too (it is never written otherwise)",
        )


def add_lease_option(parser: argparse.ArgumentParser) -> None:
    """--take-over: the folder's lease from another run at once, not only once it is stale."""
    parser.add_argument_group("other runs").add_argument(
        "--take-over",
        action="store_true",
        help="take the folder's lease (its pending marker, naming the run at work on it) from "
        "another run at once, when that run is known to be gone; by default a run refuses "
        "another's lease until it has not been renewed for 3 minutes",
    )


def revision_prefix(args: argparse.Namespace, command: str) -> str:
    """PATH as a listing prefix, refused (exit 2, before any client) unless its last segment is
    a revision folder <N>.<M>: anything else would complete a folder GoCD cannot parse, or
    touch more than one revision. --not-a-revision lets a non-GoCD folder through on purpose.
    What only a listing can tell (revision folders below PATH) is markers.refuse_revisions_below.
    """
    prefix = normalize_prefix(args.path)
    if getattr(args, "not_a_revision", False):
        return prefix
    if getattr(args, "marker", False):
        raise InputError("--marker is only for --not-a-revision: a revision folder gets its marker")
    name = last_segment(prefix)
    if is_revision_name(name):
        return prefix
    path = prefix.rstrip("/")
    segments = path.split("/")
    if len(segments) == 3:
        instead = (
            f"it looks like a package: 'gos3matic backfill {args.bucket} {path}' completes its "
            f"revisions, or name one: 'gos3matic {command} {args.bucket} {path}/<N>.<M>'"
        )
    elif len(segments) > 1 and is_revision_name(segments[-2]):  # a file or folder in a revision
        parent = "/".join(segments[:-1])
        instead = f"name the revision folder: 'gos3matic {command} {args.bucket} {parent}'"
    elif len(segments) > 3:
        parent = "/".join(segments[:-1])
        instead = f"name the revision folder: 'gos3matic {command} {args.bucket} {parent}/<N>.<M>'"
    else:
        instead = f"name one revision: 'gos3matic {command} {args.bucket} {path}/.../<N>.<M>'"
    raise InputError(
        f"refusing {prefix}: its last segment {name!r} is not a revision <N>.<M> (once complete, "
        f"a folder GoCD cannot parse fails every poll of its package, and a prefix above one "
        f"touches every revision); {instead}; --not-a-revision if it is not GoCD's on purpose"
    )


def add_annotation_options(parser: argparse.ArgumentParser, label: bool = True) -> None:
    """What is stamped on the objects and the marker, with the GO_* defaults the contract names."""
    group = parser.add_argument_group("annotation")
    if label:
        group.add_argument(
            "--label",
            help="pipeline label (default: $GO_PIPELINE_LABEL, else the build number of the CI "
            "this runs in: Jenkins, GitHub Actions, GitLab CI, Drone, CircleCI, Buildkite, "
            "Azure Pipelines)",
        )
    group.add_argument(
        "--username",
        help="who triggered the run (default: $GO_TRIGGER_USER, else the CI's user)",
    )
    group.add_argument(
        "--traceback-url",
        help="link to the upstream run (default: built from $GO_SERVER_DASHBOARD_URL and the "
        "other GO_* variables, when all are set; else the CI's page of this build)",
    )
    group.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help="custom metadata, repeatable; a bare NAME means NAME=NAME",
    )


def add_run_options(parser: argparse.ArgumentParser) -> Any:
    """--dry-run and --max-in-flight; returns the group, for a command's own run options."""
    run = parser.add_argument_group("run")
    run.add_argument(
        "--dry-run", action="store_true", help="list and print the writes; write nothing"
    )
    run.add_argument(
        "--max-in-flight",
        "--workers",
        dest="workers",
        metavar="N",
        type=int,
        default=DEFAULT_MAX_IN_FLIGHT,
        help=f"the most requests in flight at once (default {DEFAULT_MAX_IN_FLIGHT}, 1 to "
        f"{MAX_IN_FLIGHT}); the run starts lower, grows towards it while S3 answers cleanly and "
        "slows down when S3 answers SlowDown. --workers is the older name",
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
        "-q",
        "--quiet",
        action="store_true",
        help="no parameter table, no progress, no 'would ...' lines: the summary in one line "
        "(one per revision in backfill); failures still on stderr",
    )
    output.add_argument(
        "--json",
        action="store_true",
        help="one JSON object on stdout on every exit, errors included; human text goes to stderr",
    )
    output.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress display (a status line on a terminal, a line every 5 s elsewhere)",
    )
    output.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="one line per request on stderr: operation, key, status, attempt, milliseconds "
        "(never a credential)",
    )
    output.add_argument(
        "--log", metavar="FILE", help="the same lines, appended to FILE instead of stderr"
    )


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


# -- validators -----------------------------------------------------------------------------------


def validate_bucket(bucket: str) -> str:
    if bucket[:5].lower() == "s3://":
        raise InputError(f"invalid bucket {bucket!r}: give the bucket name alone, without s3://")
    if not _BUCKET.fullmatch(bucket):
        raise InputError(
            f"invalid bucket name {bucket!r}: 3 to 255 letters, digits, '.', '-' or '_', "
            "starting and ending with a letter or digit"
        )
    return bucket


def annotation_from(
    args: argparse.Namespace, env: Mapping[str, str]
) -> tuple[Annotation, list[Row]]:
    """--label, --username, --traceback-url, --key; unset ones from the CI the job runs in.

    GoCD's GO_* variables first, then the other CI detected (core.ci, which checks each value
    and names its variable when the contract cannot take it). Returns the annotation and its
    rows of the parameter table, each saying where it came from.
    """
    given = {
        "label": _explicit(args.label, "--label"),
        "user": _explicit(args.username, "--username"),
        "traceback_url": _explicit(args.traceback_url, "--traceback-url"),
    }
    if given["label"] is not None:
        validate_label(given["label"])
    if given["traceback_url"] is not None:
        validate_url(given["traceback_url"], "traceback URL")
    found = ci.defaults(env, [name for name, value in given.items() if value is None])
    flags = {"label": "--label", "user": "--username", "traceback_url": "--traceback-url"}
    value: dict[str, str | None] = {}
    source: dict[str, str] = {}
    for name, flag in flags.items():
        default = found.get(name)
        if given[name] is not None:
            value[name], source[name] = given[name], flag
        elif default is not None:
            value[name], source[name] = default.value, default.source
        else:
            value[name], source[name] = None, ""
    label, user, traceback_url = value["label"], value["user"], value["traceback_url"]
    if label is None:
        if found.ci is None and not ci.GOCD.detected(env):
            raise InputError(
                "no label: pass --label, or run inside a CI job (no $GO_PIPELINE_LABEL, and no "
                f"CI detected: looked for {ci.detection_hint()})"
            )
        raise InputError(f"no label: pass --label ({found.missing('label')})")
    pairs = [parse_custom_key(spec) for spec in args.key]
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise InputError(f"--key {key} given more than once: pass each key once")
        seen.add(key)
    custom = tuple(pairs)
    unset = [f"${name}" for name in TRACEBACK_ENV if not env.get(name)]
    missing_url = "GO_* variables" if len(unset) == len(TRACEBACK_ENV) else ", ".join(unset)
    if found.ci is not None:
        missing_url += f"; no {found.ci.traceback_url.describe()} ({found.ci.name})"
    rows = [
        ("label", f"{label}  ({source['label']})"),
        ("user", f"{user}  ({source['user']})" if user else f"not set ({found.missing('user')})"),
        (
            "traceback url",
            f"{traceback_url}  ({source['traceback_url']})"
            if traceback_url
            else f"not set (no {missing_url})",
        ),
        ("custom keys", ", ".join(f"{k}={v}" for k, v in custom) or "none"),
    ]
    if found.ci is not None or found.ignored:
        used = found.ci or ci.GOCD
        ci_row = f"{used.name} ({used.detection()})"
        if found.ignored:
            ci_row += "; not read: " + ", ".join(system.name for system in found.ignored)
        rows.append(("ci", ci_row))
    return Annotation(label, user, traceback_url, custom), rows


def _explicit(value: str | None, flag: str) -> str | None:
    if value is not None and not value:
        raise InputError(f"{flag} is empty")
    return value


def workers_from(args: argparse.Namespace) -> int:
    """--max-in-flight (or its older name --workers), checked."""
    if not 1 <= args.workers <= MAX_IN_FLIGHT:
        raise InputError(
            f"--max-in-flight must be between 1 and {MAX_IN_FLIGHT}, not {args.workers}"
        )
    return int(args.workers)


def multipart_from(args: argparse.Namespace) -> tuple[int, int | None, Row]:
    """--multipart-threshold and --part-size, and their row of the parameter table."""
    multipart_threshold = threshold_option(args.multipart_threshold)
    part_size = part_size_option(args.part_size)
    row = (
        "multipart",
        f"objects over {human_size(multipart_threshold)}, in parts of "
        f"{human_size(part_size or DEFAULT_PART_SIZE)} (doubled if {MAX_PARTS:,} are too few)",
    )
    return multipart_threshold, part_size, row


def connection_from(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[Connection, Row]:
    """The connection options, and the endpoint's row of the parameter table."""
    endpoint_url = args.endpoint_url
    if endpoint_url is not None:
        validate_url(endpoint_url, "--endpoint-url")
    owner = args.expected_bucket_owner
    if owner is not None and not re.fullmatch(r"[0-9]{12}", owner):  # \d would take any digits
        raise InputError(f"invalid --expected-bucket-owner {owner!r}: an AWS account is 12 digits")
    for flag, value in (("--region", args.region), ("--profile", args.profile)):
        if value is not None and not value:
            raise InputError(f"{flag} is empty")
    if args.region:
        import botocore.utils  # not for parsing alone: botocore takes a tenth of a second

        try:
            botocore.utils.validate_region_name(args.region)
        except ValueError:
            raise InputError(f"invalid --region {args.region!r}: e.g. us-east-1") from None
    return Connection(endpoint_url, args.region, args.profile, owner), (
        "endpoint",
        endpoint_row(endpoint_url, env),
    )


def endpoint_row(endpoint_url: str | None, env: Mapping[str, str]) -> str:
    """The endpoint and where it came from, as botocore resolves it."""
    if endpoint_url:
        return f"{endpoint_url}  (--endpoint-url)"
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        if env.get(name):
            return f"{env[name]}  (${name})"
    return "AWS  (no --endpoint-url, $AWS_ENDPOINT_URL_S3 or $AWS_ENDPOINT_URL)"


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


def plan_for(bucket: str, prefix: str, annotation: Annotation, workers: int, **run: Any) -> Plan:
    """The one way an Annotation becomes a Plan: encoded for the objects and for the marker."""
    return Plan(
        bucket=bucket,
        prefix=prefix,
        annotation=encode_annotation(annotation.items()),
        marker_metadata=encode_annotation(annotation.marker_items()),
        workers=workers,
        **run,
    )
