"""The README and every command's --help agree: options, exit codes, marker_state values. Read
from the real command's --help, as a user reads it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from gos3matic.commands import COMMANDS
from gos3matic.commands.backfill import RESULT_SENTENCES
from gos3matic.core.outcome import MarkerState
from gos3matic.exitcodes import meanings

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z-]+|-q)\b")


def help_of(command: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "gos3matic", command, "--help"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def section(start: str, end: str) -> str:
    return README[README.index(start) : README.index(end, README.index(start))]


def test_the_readme_annotate_table_lists_exactly_the_options_of_annotate_help():
    table = section("| option | meaning |", "\n\n")
    in_readme = {match for row in table.splitlines() for match in OPTION.findall(row.split("|")[1])}
    heads = [
        re.split(r"\s{2,}", line.strip())[0]  # "-q, --quiet", "--max-in-flight N, --workers N"
        for line in help_of("annotate").splitlines()
        if line.startswith("  -")
    ]
    in_help = {option for head in heads for option in OPTION.findall(head)} - {"--help"}

    assert in_readme == in_help


def test_the_readme_annotate_exit_codes_are_those_of_annotate_help():
    table = section("### Exit codes", "Every error is one line")
    in_readme = [int(code) for code in re.findall(r"^\| (\d+) \|", table, re.MULTILINE)]
    epilog = help_of("annotate").split("exit codes:")[1]
    in_help = [int(code) for code in re.findall(r"^  (\d+) ", epilog, re.MULTILINE)]

    assert in_readme == in_help == [int(code) for code in meanings("annotate")]
    assert "a `--dry-run` in which no object would fail" in table  # 0; a dry run can exit 1


@pytest.mark.parametrize("command", [command.NAME for command in COMMANDS])
def test_every_help_lists_its_exit_codes_and_what_json_prints(command):
    text = help_of(command)

    assert "exit codes:" in text, command
    for code, meaning in meanings(command).items():
        assert f"  {int(code):<3} {meaning}" in text, (command, code)
    assert "every exit prints one JSON object" in " ".join(text.split())


def test_the_readme_names_every_marker_state_and_backfill_result():
    states = section("`marker_state` is one of", "## Credentials")
    results = section("`result` (", "the object")[len("`result`") :]

    assert set(re.findall(r"`([a-z-]+)`", states)) >= {state.value for state in MarkerState}
    assert set(re.findall(r"`([a-z-]+)`", results)) == set(RESULT_SENTENCES)
