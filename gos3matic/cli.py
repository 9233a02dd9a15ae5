"""The command line: the parser built from the commands, and every failure mapped to an exit code.

Exit codes are an interface (GoCD jobs branch on them): see exitcodes.py.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import NoReturn

from gos3matic import __version__
from gos3matic.commands import COMMANDS
from gos3matic.errors import EnvironmentProblem, InputError
from gos3matic.exitcodes import ExitCode
from gos3matic.report import error_line


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        error_line(f"{message} (see '{self.prog} --help')")
        sys.exit(ExitCode.BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gos3matic",
        description="Annotate an S3 prefix so GoCD's s3material poller sees it as a revision.",
    )
    parser.add_argument("--version", action="version", version=f"gos3matic {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        handler: Callable[[argparse.Namespace], int] = args.handler
        return int(handler(args))
    except InputError as error:
        error_line(str(error))
        return ExitCode.BAD_INPUT
    except EnvironmentProblem as error:
        error_line(str(error))
        return ExitCode.ENVIRONMENT
    except KeyboardInterrupt:
        error_line("interrupted")
        return ExitCode.INTERRUPTED
    except Exception as error:  # the last line of defence: one line, never a traceback
        if os.environ.get("GOS3MATIC_DEBUG"):
            traceback.print_exc()
        error_line(f"unexpected {type(error).__name__}: {error} (GOS3MATIC_DEBUG=1 shows more)")
        return ExitCode.FAILED
