"""One module per command, each with `add_parser`, `request` (arguments -> a checked request, no
S3 call) and `run` (the request -> the work -> an exit code). A new command is a new module here
and one entry in COMMANDS."""

from __future__ import annotations

from gos3matic.commands import annotate, backfill, mark, revision, status

COMMANDS = (annotate, status, backfill, mark, revision)
