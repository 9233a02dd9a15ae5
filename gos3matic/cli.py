"""The command line: the parser built from the commands' table (commands.COMMANDS), and the
run handed to the runtime (commands/runtime.py), which ends every run and maps every failure.

Exit codes are an interface (GoCD jobs branch on them): see exitcodes.py. Under --json every exit
prints one JSON object on stdout, with `exit_code` and, when the run ended in an error, `error`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, NoReturn

from gos3matic import __version__, commands
from gos3matic.commands import runtime
from gos3matic.commands.options import resolve_target
from gos3matic.errors import InputError


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
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in commands.COMMANDS:
        command.add_parser(subparsers)
        subparsers.choices[command.NAME].set_defaults(run_command=command)
    return parser


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line -> its arguments, BUCKET and PATH split from s3://BUCKET/PATH."""
    args = build_parser().parse_args(argv)
    resolve_target(args)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return runtime.main(parse, list(argv) if argv is not None else None)
