"""The manual builds with --strict, and what it says is what the program says: each generated
part of a page is what the generator prints from the parser, exitcodes.py, core/ci.py and the
source, every option of every --help is on its command's page, and every page asks for the
generated parts it must have."""

from __future__ import annotations

import html
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gos3matic.commands import COMMANDS
from gos3matic.core.ci import SYSTEMS
from gos3matic.exitcodes import ExitCode, meanings

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
NAMES = [command.NAME for command in COMMANDS]
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z-]+|-[a-z])\b")


def _generated() -> Any:
    spec = importlib.util.spec_from_file_location("generated", DOCS / "hooks" / "generated.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATED = _generated()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    return out


def text_of(page: Path) -> str:
    """The page's visible text, tags dropped and entities decoded, whitespace collapsed."""
    raw = re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8"))
    return " ".join(html.unescape(raw).split())


def help_options(command: str) -> set[str]:
    text = subprocess.run(
        [sys.executable, "-m", "gos3matic", command, "--help"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    heads = [re.split(r"\s{2,}", line.strip())[0] for line in text.splitlines()]
    return {
        option
        for line, head in zip(text.splitlines(), heads, strict=True)
        if line.startswith("  -")
        for option in OPTION.findall(head)
    }


@pytest.mark.parametrize("command", NAMES)
def test_every_option_of_help_is_on_the_commands_page_as_built(site, command):
    page = text_of(site / "commands" / command / "index.html")
    missing = {option for option in help_options(command) if option not in page}

    assert help_options(command), command
    assert not missing, (command, missing)


@pytest.mark.parametrize("command", NAMES)
def test_each_command_page_asks_for_its_usage_options_and_exit_codes(command):
    source = (DOCS / "commands" / f"{command}.md").read_text(encoding="utf-8")
    for kind in ("usage", "options", "exit-codes"):
        assert f"<!-- generated: {kind} {command} -->" in source, (command, kind)
    expanded = GENERATED.expand(source)
    assert "<!-- generated:" not in expanded
    assert GENERATED.options(command) in expanded
    assert GENERATED.exit_codes(command) in expanded


@pytest.mark.parametrize("command", NAMES)
def test_the_built_exit_code_table_is_exitcodes_py(site, command):
    page = text_of(site / "commands" / command / "index.html")
    for code, meaning in meanings(command).items():
        assert f"{int(code)} {meaning}" in page, (command, code)


def test_the_generated_option_rows_are_the_parsers_own():
    """Each row's head is argparse's own rendering of the option, and its text the help's."""
    for command, parser in GENERATED.parsers().items():
        table = GENERATED.options(command)
        for action in parser._actions:
            head = GENERATED.invocation(parser, action)
            assert f"| `{head}` |" in table, (command, head)


def test_the_ci_table_is_core_ci_and_is_built_into_the_publishing_page(site):
    table = GENERATED.ci_variables()
    page = text_of(site / "publishing" / "index.html")
    for system in SYSTEMS:
        row = next(line for line in table.splitlines() if line.startswith(f"| {system.name} ("))
        for field in ("label", "user", "traceback_url", "revision"):
            for variable in system.rule(field).variables:
                assert variable in row, (system.name, field, variable)
                assert variable in page, (system.name, variable)
        assert system.detection() in page
    assert "<!-- generated: ci-variables -->" in (DOCS / "publishing.md").read_text()


def test_every_error_message_of_exit_2_and_3_is_in_troubleshooting(site):
    source = "\n".join(
        path.read_text(encoding="utf-8") for path in (REPO / "gos3matic").rglob("*.py")
    )
    constructed = len(
        re.findall(r"\b(?:InputError|EnvironmentProblem|EndpointUnreachable)\(", source)
    )
    defined = 3  # the three class statements themselves
    sites = GENERATED.error_sites()
    assert len(sites) == constructed - defined
    page = text_of(site / "troubleshooting" / "index.html")
    for code, where, _ in sites:
        assert code in (ExitCode.BAD_INPUT, ExitCode.ENVIRONMENT)
        assert where in page, where


def test_the_bench_chart_is_in_the_site(site):
    assert (site / GENERATED.CHART_IN_SITE).read_bytes() == GENERATED.CHART.read_bytes()
    assert "bench-2000.png" in (site / "speed" / "index.html").read_text()
