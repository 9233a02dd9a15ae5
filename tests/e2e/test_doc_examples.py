"""Every example of the README and the manual that talks to S3 runs, as a reader would run it.

Page by page, in order, in one shell session per page (so an `export` carries on, as in a
terminal), in a fresh directory, against a moto server whose state is reset before each page.
Every command must exit 0, or the code its trailing comment names (`# exit 1: ...`). The
convention is in docs/contributing.md: ```sh runs, ```python starting `# NAME.py` is saved as
NAME.py, ```bash is shown but never run and may not talk to S3.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gos3matic.core.ci import VARIABLES as CI_VARIABLES
from gos3matic.devserver import LocalS3, moto_server

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
PAGES = [REPO / "README.md", *sorted(p for p in DOCS.rglob("*.md") if "hooks" not in p.parts)]
FENCE = re.compile(
    r"^(?P<indent>[ ]*)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ ]*$",
    re.MULTILINE | re.DOTALL,
)
EXPECTED = re.compile(r"#\s*exit (\d+)\b")
TALKS_TO_S3 = re.compile(
    r"\bgos3matic (begin|annotate|mark|status|repair|backfill)\b|\baws s3|\bs5cmd\b|\bboto3\b"
)
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence
    lang: str
    body: str

    @property
    def where(self) -> str:
        return f"{shown(self.page)}:{self.line}"


def shown(page: Path) -> str:
    return str(page.relative_to(REPO)) if page.is_relative_to(REPO) else page.name


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        indent = len(match["indent"])
        body = "\n".join(line[indent:] for line in match["body"].splitlines())
        found.append(Block(page, text.count("\n", 0, match.start()) + 1, match["lang"], body))
    return found


def commands(block: Block) -> Iterator[tuple[int, str, int]]:
    """(line in the page, command, expected exit code) of each command of a ```sh block."""
    pending: list[str] = []
    start = 0
    for offset, line in enumerate(block.body.splitlines(), start=1):
        if not pending:
            start = block.line + offset
            if not line.strip() or line.lstrip().startswith("#"):
                continue
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        command = " ".join([*pending, line])
        pending = []
        expected = EXPECTED.search(command)
        yield start, command, int(expected[1]) if expected else 0


def script(page: Path) -> tuple[str, dict[str, str]]:
    """The page's ```sh blocks as one bash script that checks each exit code, and the files
    its ```python blocks name."""
    lines = [
        "set -u -o pipefail",
        'check() { if [ "$1" -ne "$2" ]; then '
        'echo "DOC EXAMPLE FAILED at $3: exit $1, expected $2" >&2; exit 97; fi; }',
    ]
    files: dict[str, str] = {}
    for block in blocks(page):
        if block.lang == "sh":
            for line, command, expected in commands(block):
                where = f"{shown(page)}:{line}"
                lines += [f"echo {shlex.quote('$ ' + command)}", command]
                lines.append(f"check $? {expected} {shlex.quote(where)}")
        elif block.lang == "python":
            first = block.body.splitlines()[0] if block.body else ""
            name = re.fullmatch(r"# ([\w-]+\.py)", first.strip())
            if name:
                files[name[1]] = block.body + "\n"
    return "\n".join(lines) + "\n", files


RUNNABLE = [page for page in PAGES if any(b.lang == "sh" for b in blocks(page))]


@pytest.fixture(scope="module")
def server() -> Iterator[LocalS3]:
    """A moto server of this module's own: each page starts from a reset, empty one."""
    with moto_server() as local:
        yield local


def reset(server: LocalS3) -> None:
    request = urllib.request.Request(f"{server.endpoint_url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200


def environment(server: LocalS3, home: Path) -> dict[str, str]:
    """What a reader's shell has after the getting-started exports: the server's endpoint and
    credentials, this checkout's gos3matic and the .venv's aws and s5cmd first on PATH, no CI."""
    shims = home / "bin"
    shims.mkdir()
    shim = shims / "gos3matic"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m gos3matic "$@"\n')
    shim.chmod(0o755)
    env = {k: v for k, v in server.env().items() if k not in CI_VARIABLES and k != "CI"}
    env.update(
        PATH=f"{shims}:{BIN}:/usr/local/bin:/usr/bin:/bin",
        PYTHONPATH=str(REPO),
        HOME=str(home),
        S3_ENDPOINT_URL=server.endpoint_url,  # s5cmd's name for it
        GOS3MATIC_DOC_EXAMPLES="1",
    )
    env.pop("VIRTUAL_ENV", None)
    return env


@pytest.mark.parametrize("page", RUNNABLE, ids=[str(p.relative_to(REPO)) for p in RUNNABLE])
def test_every_sh_example_of_the_page_runs_with_the_exit_codes_it_states(server, tmp_path, page):
    reset(server)
    text, files = script(page)
    assert "check $?" in text
    work = tmp_path / "work"
    work.mkdir()
    for name, body in files.items():
        (work / name).write_text(body, encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir()

    result = subprocess.run(
        ["bash", "-c", text],
        cwd=work,
        env=environment(server, home),
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert "DOC EXAMPLE FAILED" not in result.stderr


def test_the_runner_sees_the_examples_the_issue_names():
    """The pages the issue names run, and so does each way of the fastest path."""
    names = {str(page.relative_to(REPO)) for page in RUNNABLE}
    assert {"README.md", "docs/getting-started.md", "docs/fastest-path.md"} <= names
    fastest, _ = script(DOCS / "fastest-path.md")
    for needed in (
        "aws s3 cp --recursive",
        "--metadata",
        "s5cmd cp --metadata",
        "python upload.py",
    ):
        assert needed in fastest, needed
    assert fastest.count("gos3matic mark ") >= 4
    commands_dir = {p.stem for p in RUNNABLE if p.parent.name == "commands"}
    assert commands_dir >= {"annotate", "begin", "mark", "status", "repair", "backfill"}


def test_a_failing_example_fails_the_page(server, tmp_path):
    """The check itself can fail: an example whose exit code differs from the one it states
    (no bucket after a reset: status is exit 3, not the 0 the page claims)."""
    reset(server)
    page = tmp_path / "page.md"
    page.write_text("```sh\ngos3matic status my-artifacts myapp/build/package   # exit 0\n```\n")
    text, _ = script(page)
    home = tmp_path / "home"
    home.mkdir()
    result = subprocess.run(
        ["bash", "-c", text], cwd=tmp_path, env=environment(server, home),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 97, result.stderr
    assert "DOC EXAMPLE FAILED at page.md:2: exit 3, expected 0" in result.stderr


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_no_shell_block_that_is_not_run_talks_to_s3(page):
    hidden = [
        f"{block.where}: {line}"
        for block in blocks(page)
        if block.lang in ("bash", "shell", "console", "")
        for line in block.body.splitlines()
        if TALKS_TO_S3.search(line.split("#")[0])
    ]
    assert not hidden, hidden


def test_the_exports_the_readme_shows_are_the_servers_own():
    """The `bash` export block (not run: its URL is the reader's) names what the server takes."""
    for page in (REPO / "README.md", DOCS / "getting-started.md"):
        [exports] = [b for b in blocks(page) if b.lang == "bash" and "export AWS_" in b.body]
        shown = dict(re.findall(r"\b(AWS_[A-Z_]+)=(\S+)", exports.body))
        with_server = LocalS3("moto", "http://127.0.0.1:1", *_server_keys()).env()
        assert shown["AWS_ACCESS_KEY_ID"] == with_server["AWS_ACCESS_KEY_ID"], page
        assert shown["AWS_SECRET_ACCESS_KEY"] == with_server["AWS_SECRET_ACCESS_KEY"], page
        assert shown["AWS_DEFAULT_REGION"] == with_server["AWS_DEFAULT_REGION"], page
        assert "AWS_ENDPOINT_URL" in shown, page


def _server_keys() -> tuple[str, str]:
    from gos3matic.devserver import ACCESS_KEY, SECRET_KEY

    return ACCESS_KEY, SECRET_KEY
