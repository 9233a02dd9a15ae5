"""The README is the front door: short, its links resolve, its two commands, command table and
exit codes are the program's. Every command's --help lists its exit codes. (The manual's own
checks are in test_docs_site.py and test_doc_examples.py.)"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from gos3matic.commands import COMMANDS
from gos3matic.commands.backfill import RESULT_SENTENCES
from gos3matic.core.outcome import MarkerState
from gos3matic.exitcodes import ExitCode, meanings

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")


def help_of(command: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "gos3matic", command, "--help"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_the_readme_is_a_short_front_door_whose_links_all_resolve():
    links = [target for target in LINK.findall(README) if "://" not in target]

    assert len(README.splitlines()) <= 250
    assert links
    assert [target for target in links if not (REPO / target).is_file()] == []


def test_the_readme_starts_with_the_two_commands_and_lists_every_command():
    two = README[README.index("## Two commands") :]
    block = two[two.index("```") : two.index("```", two.index("```") + 3)]
    assert [line.split()[:2] for line in block.splitlines()[1:] if line.startswith("make")] == [
        ["make", "demo"],
        ["make", "test"],
    ]
    makefile = (REPO / "Makefile").read_text()
    assert "\ndemo: install\n" in makefile and "\ntest: install\n" in makefile
    table = README[README.index("| command | what it does |") :].split("\n\n")[0]
    assert [re.match(r"\| `gos3matic (\w+)", row)[1] for row in table.splitlines()[2:]] == [
        "begin", "annotate", "mark", "status", "repair", "backfill", "revision"
    ]  # fmt: skip
    assert {command.NAME for command in COMMANDS} == {
        "begin", "annotate", "mark", "status", "repair", "backfill", "revision"
    }  # fmt: skip


def test_the_readme_exit_codes_are_exitcodes_py():
    table = README[README.index("## Exit codes") : README.index("## The manual")]
    in_readme = [int(code) for code in re.findall(r"^\| (\d+) \|", table, re.MULTILINE)]

    assert in_readme == [int(code) for code in ExitCode]


@pytest.mark.parametrize("command", [command.NAME for command in COMMANDS])
def test_every_help_lists_its_exit_codes_and_what_json_prints(command):
    text = help_of(command)

    assert "exit codes:" in text, command
    for code, meaning in meanings(command).items():
        assert f"  {int(code):<3} {meaning}" in text, (command, code)
    assert "every exit prints one JSON object" in " ".join(text.split())


def test_the_manual_names_every_marker_state_and_backfill_result():
    annotate = (REPO / "docs" / "commands" / "annotate.md").read_text(encoding="utf-8")
    backfill = (REPO / "docs" / "commands" / "backfill.md").read_text(encoding="utf-8")
    results = backfill[backfill.index("`result` (") : backfill.index("the object counts")]

    assert "`marker_state` is one of\n<!-- generated: marker-states -->" in annotate
    assert set(re.findall(r"`([a-z-]+)`", results[len("`result`") :])) == set(RESULT_SENTENCES)
    assert {state.value for state in MarkerState}  # the generator lists them all (test_docs_site)
