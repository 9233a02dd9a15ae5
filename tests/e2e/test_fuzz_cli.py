"""Bad input, fuzzed: whatever the arguments, the CLI never shows a traceback; input it cannot
use is exit 2 with one line on stderr, and nothing is written.

hypothesis builds command lines from known-good values, known-bad ones and arbitrary text
(undecodable bytes included, as Python hands them over: surrogate-escaped). The CLI runs
in-process (cli.main) against a moto server, with stdout and stderr as strict as a real
process's under a UTF-8 locale; the bucket is read back after every example.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from support.inprocess import run_main
from support.readback import snapshot

from gos3matic.commands.options import MAX_IN_FLIGHT
from gos3matic.devserver import LocalS3

PREFIX = "app/build/package/42.1/"
PACKAGE = "app/build/package"

# Undecodable argv bytes reach Python as lone surrogates (surrogateescape); NUL cannot be in argv.
TEXT = st.text(
    st.characters(
        codec=None,
        exclude_characters="\x00",
        exclude_categories=("Cs",),
    )
    | st.sampled_from(["\udcff", "\udc80", "\x01", "\x7f", "\n", "=", "/", ".", "-", " "]),
    max_size=40,
)


@dataclass(frozen=True)
class Choice:
    """One option's value: known good, known bad (must be refused with exit 2), or unknown."""

    args: tuple[str, ...]
    bad: bool = False
    unknown: bool = False


def option(
    flag: str | None,
    good: list[str],
    bad: list[str],
    fuzz: st.SearchStrategy[str] | None = TEXT,
    optional: bool = True,
) -> tuple[st.SearchStrategy[Choice], st.SearchStrategy[Choice]]:
    """Two ways to draw one option: as a user who gets it right (a good value, or none), and
    as a perturbation (a known-bad value, or arbitrary text)."""

    def given_(value: str, **kind: bool) -> Choice:
        return Choice((flag, value) if flag else (value,), **kind)

    right = [st.sampled_from(good).map(given_)] if good else []
    if optional and flag:
        right.append(st.just(Choice(())))
    wrong = [st.sampled_from(bad).map(lambda v: given_(v, bad=True))]
    if fuzz is not None:
        wrong.append(fuzz.map(lambda v: given_(v, unknown=True)))
    return st.one_of(*right), st.one_of(*wrong)


SIZES = st.from_regex(r"\s?-?[0-9\u0665.]{0,22}\s?(B|KiB|MiB|GiB|TiB|KB|mib|k|x)?", fullmatch=True)
OPTIONS = {
    "label": option(
        "--label",
        ["42", "1.2.3-rc_1"],
        ["", "4 2", "x" * 256, "é", "1/2"],
        optional=False,
    ),
    "username": option(
        "--username",
        ["jo@example.com", "José", "a\u2028b"],
        ["", "a\x7fb", "x" * 2100, " padded", "\udcff"],
    ),
    "traceback": option(
        "--traceback-url",
        ["https://ci.example.com/go/x"],
        ["", "not a url", "ftp://x", "http://", "http://[::1", "https://h/\x01"],
    ),
    "key": option(
        "--key",
        ["team=core", "blessed", "n-1_x=a=b"],
        ["", "=v", "Team=x", "completed", "user=x", "a b=c", "note=a\nb", "big=" + "x" * 2100],
    ),
    "key2": option("--key", ["source=jenkins"], ["go_pipeline_label=1"]),
    "workers": option(
        "--workers",
        ["1", "4", "256", str(MAX_IN_FLIGHT)],
        ["0", "-1", str(MAX_IN_FLIGHT + 1), "many", "1.5", ""],
        st.integers().map(str),
    ),
    "threshold": option(
        "--multipart-threshold",
        ["5MiB", "5242880", "1GiB", "5GiB"],
        ["1MiB", "6GiB", "5MB", "5 parsecs", "", "0.5", "-5MiB", "1.5B", "9" * 5000],
        SIZES,
    ),
    "part_size": option(
        "--part-size", ["5MiB", "64MiB", "5GiB"], ["4MiB", "6GiB", "10GB", "x"], SIZES
    ),
    "shard": option(
        "--shard",
        ["1/1", "2/3"],
        ["0/2", "3/2", "1/0", "a/b", "1-2", "", "1/" + "9" * 5000],
        st.from_regex(r"\s?[0-9\u0661]{0,6}\s?/?\s?[0-9]{0,6}", fullmatch=True),
    ),
    "endpoint": option(
        "--endpoint-url",
        [],  # the moto server comes from the environment; a reachable-looking URL would wait
        [
            "ftp://x",
            "localhost:9000",
            "",
            "http://[::1",
            "http//x",
            "http://a\x01b",
            "http://h:99999",
            "http://key:secret@127.0.0.1:9",
        ],
        fuzz=None,
    ),
    "owner": option(
        "--expected-bucket-owner",
        ["123456789012"],
        ["me", "12345", "1234567890123", "", "\u0661" * 12, "12345678901\n"],
    ),
    "region": option("--region", ["us-east-1"], ["", "bad region", "us_east_1!", "a" * 300], None),
    "profile": option("--profile", [], [""], None),
}
FLAGS = st.lists(st.sampled_from(["--dry-run", "--no-marker", "--allow-empty", "--json", "-q"]))


@dataclass(frozen=True)
class Example:
    argv: list[str]
    bad: bool  # some value is known bad: exit 2 expected
    unknown: bool  # some value is arbitrary text: any exit, but the rules of exit 2 hold


@st.composite
def command_lines(draw: Any, bucket: str) -> Example:
    """A command line with at most two options perturbed, the others right or left out."""
    command = draw(st.sampled_from(["annotate", "annotate", "annotate", "mark", "backfill"]))
    if command == "backfill":
        target = option(None, [PACKAGE], ["app/build", "a//b/c", "/", "../a/b"], optional=False)
        names = ["username", "traceback", "key", "workers", "threshold", "part_size", "endpoint",
                 "owner", "region"]  # fmt: skip
    else:
        target = option(
            None,
            [PREFIX, "app/build/package/42.1"],
            ["", "/", "a//b", "../x", "s3://b/p", "a\x01b", "a\udcffb", "a/" * 600],
        )
        names = list(OPTIONS)
        if command == "mark":
            names = [n for n in names if n not in ("threshold", "part_size", "shard")]
    ways = {
        "bucket": option(None, [bucket], ["", "s3://x", "a b", "a/b", "x" * 256], optional=False),
        "target": target,
        **{name: OPTIONS[name] for name in names},
    }
    perturbed = draw(st.sets(st.sampled_from(sorted(ways)), max_size=2))
    choices = {name: draw(way[name in perturbed]) for name, way in ways.items()}
    argv = [command]
    for choice in choices.values():  # bucket and target first: dicts keep their order
        argv += choice.args
    flags = draw(FLAGS)
    if command != "annotate":
        flags = [f for f in flags if f != "--no-marker"]
    if command == "backfill":
        flags = [f for f in flags if f != "--allow-empty"]
    argv += flags
    return Example(
        argv,
        bad=any(c.bad for c in choices.values()),
        unknown=any(c.unknown for c in choices.values()),
    )


@pytest.fixture(scope="module")
def target(moto_s3: LocalS3) -> Iterator[tuple[LocalS3, Any, str]]:
    from conftest import client_for, new_bucket

    s3 = client_for(moto_s3)
    bucket = new_bucket(s3)
    for name in ("a.bin", "b.bin"):
        s3.put_object(Bucket=bucket, Key=f"{PREFIX}{name}", Body=b"x")
    s3.put_object(Bucket=bucket, Key=f"{PACKAGE}/41.1/c.bin", Body=b"x")
    yield moto_s3, s3, bucket


@settings(
    max_examples=int(os.environ.get("GOS3MATIC_FUZZ_EXAMPLES", "50")),  # more: a longer hunt
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_any_command_line_is_refused_in_one_line_or_run_and_never_a_traceback(target, data):
    server, s3, bucket = target
    example = data.draw(command_lines(bucket))
    before = snapshot(s3, bucket)

    code, stdout, stderr = run_main(server.env(), example.argv)

    event(f"{example.argv[0]} exit {code}")
    assert "Traceback" not in stdout + stderr
    assert "unexpected" not in stderr, stderr  # the last line of defence was needed: a bug
    assert code in (0, 1, 2, 3, 4), (code, stderr)
    if example.bad:
        assert code == 2, (example.argv, stdout, stderr)
    elif not example.unknown:
        assert code != 2, (example.argv, stderr)
    if code == 2:
        lines = stderr.splitlines()
        assert lines[0].startswith("gos3matic: error: "), stderr
        if "invalid label map" not in stderr:  # every bad line of the map, on lines of its own
            assert len(lines) == 1, stderr
        if "--json" in example.argv:  # one object, saying why, for a CI job that parses it
            assert json.loads(stdout) == {"exit_code": 2, "error": lines[0][18:]}, stdout
        else:
            assert stdout == "", stdout
        assert snapshot(s3, bucket) == before


def test_label_map_files_that_cannot_be_used_are_refused(target, tmp_path: Path):
    server, s3, bucket = target
    before = snapshot(s3, bucket)
    directory = tmp_path / "dir"
    directory.mkdir()
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe41.1=\x00")
    bad_lines = tmp_path / "bad"
    bad_lines.write_text("41.1=ok\nlatest=1\n41.1=again\n")
    for path in (tmp_path / "missing", directory, binary, bad_lines):
        code, stdout, stderr = run_main(
            server.env(), ["backfill", bucket, PACKAGE, "--label-map", str(path)]
        )
        assert code == 2, stderr
        assert stderr.startswith("gos3matic: error: ") and "Traceback" not in stderr
        assert stdout == ""
    assert snapshot(s3, bucket) == before
