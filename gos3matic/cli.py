"""The command line: the parser built from the commands, and every failure mapped to an exit code.

Exit codes are an interface (GoCD jobs branch on them): see exitcodes.py. Under --json every exit
prints one JSON object on stdout, with `exit_code` and, when the run ended in an error, `error`.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from gos3matic import __version__
from gos3matic.commands import COMMANDS
from gos3matic.commands.options import resolve_target
from gos3matic.errors import EnvironmentProblem, InputError, LeaseHeld
from gos3matic.exitcodes import ExitCode
from gos3matic.output import Output


class UsageError(InputError):
    """argparse refused the command line."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2, like every other bad input, and no
    option is taken from its abbreviation (`--label` must never mean `--label-map`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


class _PrintCompletion(argparse.Action):
    """The completion script for SHELL, built from the parser itself, so it never drifts."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        import shtab  # only here: no other run pays for it

        shell = args[1]
        print(shtab.complete(parser, shell=shell, root_prefix="gos3matic"))
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gos3matic",
        description="Annotate an S3 prefix so GoCD's s3material poller sees it as a revision.",
    )
    parser.add_argument("--version", action="version", version=f"gos3matic {__version__}")
    parser.add_argument(
        "--print-completion",
        choices=("bash", "zsh", "tcsh"),
        action=_PrintCompletion,
        help="print a shell completion script generated from this parser, and exit",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(argv) if argv is not None else None
    wants_json = _asks_for_json(arguments)
    output = Output(json_mode=wants_json)
    try:
        args = build_parser().parse_args(arguments)
        resolve_target(args)
        handler: Callable[[argparse.Namespace], int] = args.handler
        return int(handler(args))
    except InputError as error:
        return _fail(output, ExitCode.BAD_INPUT, str(error), wants_json)
    except EnvironmentProblem as error:
        return _fail(output, ExitCode.ENVIRONMENT, str(error), wants_json)
    except LeaseHeld as error:
        return _fail(output, ExitCode.FAILED, str(error), wants_json)
    except KeyboardInterrupt:
        return _fail(output, ExitCode.INTERRUPTED, "interrupted", wants_json)
    except Exception as error:  # the last line of defence: one line, never a traceback
        if os.environ.get("GOS3MATIC_DEBUG"):
            traceback.print_exc()
        message = f"unexpected {type(error).__name__}: {error} (GOS3MATIC_DEBUG=1 shows more)"
        return _fail(output, ExitCode.FAILED, message, wants_json)


def _fail(output: Output, code: ExitCode, message: str, wants_json: bool) -> int:
    output.error(message)
    if wants_json:
        output.document({"exit_code": int(code), "error": message})
    return code


def _asks_for_json(argv: list[str] | None) -> bool:
    """--json anywhere before a `--`: known even when argparse refuses the rest of the line."""
    words = sys.argv[1:] if argv is None else argv
    return "--json" in (words[: words.index("--")] if "--" in words else words)
