"""The command runtime: a command is a module and one entry in commands.COMMANDS, and the runtime
gives it the rest (output, its end under --json, exit codes, failures), the same for every one.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import types
from pathlib import Path
from typing import Any

import pytest
from support.inprocess import run_main

from gos3matic import commands
from gos3matic.commands.runtime import End, Run
from gos3matic.errors import EnvironmentProblem, InputError
from gos3matic.exitcodes import ExitCode

COMMANDS_DIR = Path(commands.__file__).parent


def toy_command() -> types.ModuleType:
    """A new command, written as the commands/__init__.py docstring says: NAME, add_parser, run."""
    toy = types.ModuleType("toy")
    toy.NAME = "toy"  # type: ignore[attr-defined]

    def add_parser(subparsers: Any) -> None:
        parser = subparsers.add_parser("toy", help="a command only this test knows")
        parser.add_argument("--fail", choices=("input", "environment"))
        parser.add_argument("--json", action="store_true")
        parser.add_argument("-q", "--quiet", action="store_true")

    def run(run: Run) -> End:
        if run.args.fail == "input":
            raise InputError("the toy refuses this input")
        if run.args.fail == "environment":
            raise EnvironmentProblem("the toy's bucket is gone")
        run.table([("toy", "the parameter table")])
        return End(ExitCode.MARKER_NOT_KEPT, {"toy": "played"}, "toy: the summary")

    toy.add_parser = add_parser  # type: ignore[attr-defined]
    toy.run = run  # type: ignore[attr-defined]
    return toy


@pytest.fixture
def with_toy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commands, "COMMANDS", (*commands.COMMANDS, toy_command()))


def test_a_command_added_to_the_table_runs_through_the_runtime(with_toy: None) -> None:
    code, out, err = run_main({}, ["toy"])
    assert code == ExitCode.MARKER_NOT_KEPT
    assert out.splitlines() == ["  toy  the parameter table", "toy: the summary"]
    assert err == ""


def test_its_json_end_is_one_document_with_the_exit_code(with_toy: None) -> None:
    code, out, err = run_main({}, ["toy", "--json"])
    assert code == ExitCode.MARKER_NOT_KEPT
    assert json.loads(out) == {"toy": "played", "exit_code": int(ExitCode.MARKER_NOT_KEPT)}
    assert err.splitlines() == ["  toy  the parameter table", "toy: the summary"]  # human text


def test_quiet_leaves_out_the_table_not_the_summary(with_toy: None) -> None:
    code, out, _ = run_main({}, ["toy", "-q"])
    assert (code, out) == (ExitCode.MARKER_NOT_KEPT, "toy: the summary\n")


@pytest.mark.parametrize(
    ("failure", "code", "message"),
    [
        ("input", ExitCode.BAD_INPUT, "the toy refuses this input"),
        ("environment", ExitCode.ENVIRONMENT, "the toy's bucket is gone"),
    ],
)
def test_its_failures_end_as_every_command_s(
    with_toy: None, failure: str, code: ExitCode, message: str
) -> None:
    got, out, err = run_main({}, ["toy", "--fail", failure, "--json"])
    assert got == code
    assert json.loads(out) == {"error": message, "exit_code": int(code)}
    assert err == f"gos3matic: error: {message}\n"


def test_every_listed_command_is_a_module_of_the_table_s_shape() -> None:
    names = [command.NAME for command in commands.COMMANDS]
    assert len(set(names)) == len(names)
    modules = {path.stem for path in COMMANDS_DIR.glob("*.py")} - {"__init__"}
    helpers = {"options", "runtime"}  # shared by the commands, not commands themselves
    assert {command.__name__.rpartition(".")[2] for command in commands.COMMANDS} == (
        modules - helpers
    )
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    for command in commands.COMMANDS:
        command.add_parser(subparsers)
        assert command.NAME in subparsers.choices
        assert list(inspect.signature(command.run).parameters) == ["run"]


@pytest.mark.parametrize("path", sorted(COMMANDS_DIR.glob("*.py")), ids=lambda path: path.name)
def test_no_command_writes_around_the_runtime(path: Path) -> None:
    """Every line goes through the run's Output: no print, no sys.stdout or sys.stderr, no
    json.dumps of its own (the runtime's serializer prints every --json document)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
            found.append(f"print() on line {node.lineno}")
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            name = f"{node.value.id}.{node.attr}"
            if name in ("sys.stdout", "sys.stderr", "json.dumps"):
                found.append(f"{name} on line {node.lineno}")
    assert found == []
