"""Start-up costs only what the run needs (issue 16 part 6): parsing the command line, --help
and the refusals that come before any request import none of the heavy libraries. Checked on
the import graph of a fresh interpreter (sys.modules after cli.main), not on a clock."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO

# Each costs tens of milliseconds or more to import, and none is needed to parse arguments.
HEAVY = ("boto3", "botocore", "s3transfer", "awscrt", "hypothesis", "moto", "tqdm", "shtab")
PROBE = """
import json, sys
from gos3matic import cli
try:
    code = cli.main(sys.argv[1:])
except SystemExit as exit_:
    code = exit_.code
loaded = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps({"code": code, "loaded": loaded}))
"""


def imported_by(*argv: str) -> tuple[object, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return answer["code"], set(answer["loaded"])


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        ["annotate", "--help"],
        ["backfill", "--help"],
        ["mark", "--help"],
        ["status", "--help"],
        ["annotate", "s3://ab/app/build/package/1.1/", "--label", "1"],  # no such bucket name
        ["annotate", "bucket", "app/build/package/1.1/"],  # no label: a usage error
    ],
    ids=lambda argv: " ".join(argv),
)
def test_parsing_arguments_imports_no_heavy_library(argv: list[str]) -> None:
    code, loaded = imported_by(*argv)
    assert code in (0, 2), code  # it got as far as it should: help shown, or a usage error
    assert loaded & set(HEAVY) == set()


def test_the_check_sees_a_heavy_import_when_there_is_one() -> None:
    """The probe itself: asking for the shell completion loads shtab, which it must report."""
    code, loaded = imported_by("--print-completion", "bash")
    assert code == 0
    assert "shtab" in loaded
