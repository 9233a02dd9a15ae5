"""The commands, one module each, and their table.

Adding a command means a module here and one entry in COMMANDS; nothing else. The module has

    NAME                      its name on the command line
    add_parser(subparsers)    its parser, named NAME: its options (options.py's groups) and help
    run(run) -> End           the checked request (no S3 call), the work, how it ended

and the runtime (runtime.py) does the rest: cli.py builds the parser from this table and hands
each run to runtime.main, whose Run gives the command its output, stop signals, store and
request log, and which prints every End the same way (the summary; under --json one document,
`exit_code` added, through the one serializer) and ends every failure with its exit code. What
one revision goes through (pending marker, work, complete marker, read-back) is workflow.py's.
"""

from __future__ import annotations

from gos3matic.commands import annotate, backfill, begin, mark, repair, revision, status
from gos3matic.commands.runtime import Command

COMMANDS: tuple[Command, ...] = (begin, annotate, status, repair, backfill, mark, revision)
