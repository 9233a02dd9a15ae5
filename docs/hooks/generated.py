"""The parts of the manual that are read from the program itself, at build time.

A page asks for one with an HTML comment alone on its line:

    <!-- generated: options annotate -->      every option of `gos3matic annotate`, from argparse
    <!-- generated: usage annotate -->        its usage line, as --help prints it
    <!-- generated: exit-codes annotate -->   its exit codes, from gos3matic/exitcodes.py
    <!-- generated: exit-code 3 -->           what exit 3 means for each command
    <!-- generated: exit-code-summary -->     every exit code, and which commands can end with it
    <!-- generated: marker-states -->         the values of --json's marker_state
    <!-- generated: errors 2 -->              every error message of exit 2, from the source
    <!-- generated: ci-variables -->          where each CI's defaults come from (core/ci.py)
    <!-- generated: commands -->              every command and its one-line help (links
                                              to the pages beside commands/index.md)

`mkdocs build` runs `on_page_markdown` (this file is a hook in mkdocs.yml); tests/e2e/
test_docs_site.py calls `expand` on the same sources and builds the site to check the HTML
embeds what the generators print. Nothing here touches the network.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the checkout's package, not whichever one is installed
    sys.path.insert(0, str(REPO))

from gos3matic.cli import build_parser  # noqa: E402
from gos3matic.commands import COMMANDS  # noqa: E402
from gos3matic.core.ci import SYSTEMS, CiSystem  # noqa: E402
from gos3matic.core.outcome import MarkerState  # noqa: E402
from gos3matic.exitcodes import COMMON, ExitCode, meanings  # noqa: E402

MARK = re.compile(r"^<!-- generated: ([a-z-]+)(?: ([a-z0-9-]+))? -->$", re.MULTILINE)
CHART = REPO / "benchmarks" / "results" / "bench-2000.png"
CHART_IN_SITE = "assets/bench-2000.png"


# -- argparse --------------------------------------------------------------------------------------


def parsers() -> dict[str, argparse.ArgumentParser]:
    """Each command's own parser, as `gos3matic COMMAND --help` uses it."""
    root = build_parser()
    for action in root._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise RuntimeError("gos3matic's parser has no commands")


def invocation(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """`--max-in-flight N, --workers N`: the action's head, exactly as --help shows it."""
    return parser._get_formatter()._format_action_invocation(action)


def help_text(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The action's help with %(default)s and the like expanded, as --help prints it."""
    if not action.help:
        return ""
    return " ".join(parser._get_formatter()._expand_help(action).split())


def _cell(text: str) -> str:
    text = text.replace("|", "\\|").replace("*", "\\*")
    return text.replace("<", "&lt;").replace(">", "&gt;")


def options(command: str) -> str:
    """Every option and argument of COMMAND, group by group, in --help's order."""
    parser = parsers()[command]
    out: list[str] = []
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if a.help is not argparse.SUPPRESS]
        if not actions:
            continue
        title = group.title or "options"
        out.append(f"**{title}**\n")
        if group.description:
            out.append(_cell(" ".join(group.description.split())) + "\n")
        out.append("| option | meaning |\n|---|---|")
        for action in actions:
            head = f"`{invocation(parser, action)}`"
            out.append(f"| {head} | {_cell(help_text(parser, action))} |")
        out.append("")
    return "\n".join(out)


def usage(command: str) -> str:
    text = parsers()[command].format_usage().strip()
    return f"```text\n{text}\n```\n"


# -- exit codes ------------------------------------------------------------------------------------


def exit_codes(command: str) -> str:
    rows = [f"| {int(code)} | {_cell(text)} |" for code, text in meanings(command).items()]
    return "| exit code | meaning |\n|---|---|\n" + "\n".join(rows) + "\n"


def exit_code(code: str) -> str:
    wanted = ExitCode(int(code))
    rows = [
        f"| `{command.NAME}` | {_cell(meanings(command.NAME)[wanted])} |"
        for command in COMMANDS
        if wanted in meanings(command.NAME)
    ]
    return "| command | exit " + code + " means |\n|---|---|\n" + "\n".join(rows) + "\n"


def exit_code_summary() -> str:
    """Every exit code: what it means everywhere, or that it depends on the command."""
    rows = []
    for code in ExitCode:
        where = [command.NAME for command in COMMANDS if code in meanings(command.NAME)]
        if code in COMMON:
            meaning = _cell(COMMON[code])
            others: dict[str, list[str]] = {}
            for name in where:
                if meanings(name)[code] != COMMON[code]:
                    others.setdefault(meanings(name)[code], []).append(f"`{name}`")
            for text, names in others.items():
                meaning += f"; for {', '.join(names)}: {_cell(text)}"
        else:
            meaning = "depends on the command: see its page"
        rows.append(f"| {int(code)} | `{code.name}` | {meaning} | {', '.join(where)} |")
    return "| code | name | meaning | commands |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"


def marker_states() -> str:
    return ", ".join(f"`{state.value}`" for state in MarkerState) + "."


# -- error messages ------------------------------------------------------------------------------

ERROR_CLASSES = {
    "InputError": ExitCode.BAD_INPUT,
    "EnvironmentProblem": ExitCode.ENVIRONMENT,
    "EndpointUnreachable": ExitCode.ENVIRONMENT,
}
PACKAGE = REPO / "gos3matic"


def _template(node: ast.expr) -> str:
    """A message as a reader sees it: literal text kept, every computed part shown as `…`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            part.value if isinstance(part, ast.Constant) else "…" for part in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _template(node.left) + _template(node.right)
    return "…"


def error_sites() -> list[tuple[ExitCode, str, str]]:
    """(exit code, file:line, message) of every InputError / EnvironmentProblem the package
    constructs, read from its source."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            code = ERROR_CLASSES.get(node.func.id)
            if code is None:
                continue
            message = _template(node.args[0]) if node.args else "…"
            where = f"{path.relative_to(REPO).as_posix()}:{node.lineno}"
            found.append((code, where, " ".join(message.split()), node.lineno))
    return [(code, where, message) for code, where, message, _ in sorted(found, key=_order)]


def _order(site: tuple[ExitCode, str, str, int]) -> tuple[str, int]:
    return site[1].split(":")[0], site[3]


def errors(code: str) -> str:
    wanted = ExitCode(int(code))
    rows = [
        f"| {_cell(message)} | `{where}` |"
        for found, where, message in error_sites()
        if found is wanted
    ]
    return "| `gos3matic: error: …` | raised at |\n|---|---|\n" + "\n".join(rows) + "\n"


# -- the CI table ----------------------------------------------------------------------------------


def _rule(system: CiSystem, field: str) -> str:
    return "`" + system.rule(field).describe().replace(" or ", "`, else `") + "`"


def ci_variables() -> str:
    rows = [
        f"| {system.name} (`{system.detection()}`) | {_rule(system, 'label')} | "
        f"{_rule(system, 'user')} | {_rule(system, 'traceback_url')} | "
        f"{_rule(system, 'revision')} |"
        for system in SYSTEMS
    ]
    header = (
        "| CI (detected by) | label | user | traceback URL | revision `<N>.<M>` |\n"
        "|---|---|---|---|---|\n"
    )
    return header + "\n".join(rows) + "\n"


def commands() -> str:
    found = parsers()
    root = build_parser()
    helps = {
        choice.dest: choice.help
        for action in root._actions
        if isinstance(action, argparse._SubParsersAction)
        for choice in action._choices_actions
    }
    rows = [f"| [`{name}`]({name}.md) | {_cell(helps.get(name) or '')} |" for name in found]
    return "| command | what it does |\n|---|---|\n" + "\n".join(rows) + "\n"


# -- the hook --------------------------------------------------------------------------------------

GENERATORS: dict[str, Any] = {
    "options": options,
    "usage": usage,
    "exit-codes": exit_codes,
    "exit-code": exit_code,
    "exit-code-summary": exit_code_summary,
    "marker-states": marker_states,
    "errors": errors,
    "ci-variables": ci_variables,
    "commands": commands,
}


def render(kind: str, argument: str | None) -> str:
    generator = GENERATORS.get(kind)
    if generator is None:
        raise ValueError(f"unknown generated part {kind!r}; one of {', '.join(GENERATORS)}")
    return generator(argument) if argument is not None else generator()


def expand(markdown: str) -> str:
    """MARKDOWN with every `<!-- generated: ... -->` line replaced by what it asks for."""
    return MARK.sub(lambda match: render(match[1], match[2]), markdown)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    return expand(markdown)


def on_files(files: Any, config: Any) -> Any:
    """The bench chart lives with the benchmark results (bench.py writes it there); the site
    takes it from there, so the page always shows the chart of the last `make bench`."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, CHART_IN_SITE, abs_src_path=str(CHART)))
    return files
