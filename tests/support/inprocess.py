"""The CLI in-process (cli.main), with stdout and stderr as strict as a real process's: much
faster than a subprocess per run, for tests that run it many times."""

from __future__ import annotations

import io
import os
import signal
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from typing import Any
from unittest import mock

from gos3matic import cli


@contextmanager
def like_a_process(env: Mapping[str, str]) -> Iterator[tuple[io.BytesIO, io.BytesIO]]:
    """AWS_* from `env` in os.environ, stdout strict UTF-8 as under a UTF-8 locale (stderr
    backslash-escapes, as Python's does), and the signal handlers cli.main installs undone."""
    out, err = io.BytesIO(), io.BytesIO()
    stdout = io.TextIOWrapper(out, encoding="utf-8", errors="strict", write_through=True)
    stderr = io.TextIOWrapper(err, encoding="utf-8", errors="backslashreplace", write_through=True)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    aws = {name: value for name, value in env.items() if name.startswith("AWS_")}
    try:
        with mock.patch.dict(os.environ, aws), redirect_stdout(stdout), redirect_stderr(stderr):
            yield out, err
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        for wrapper in (stdout, stderr):
            wrapper.detach()  # or its garbage collection closes the bytes with it


def run_main(env: Mapping[str, str], argv: list[str]) -> tuple[int, str, str]:
    """cli.main(argv): its exit code, stdout and stderr."""
    with like_a_process(env) as (out, err):
        try:
            code = cli.main(argv)
        except SystemExit as exit_:  # argparse's usage errors, --help
            code = exit_.code if isinstance(exit_.code, int) else 1
    return code, out.getvalue().decode("utf-8"), err.getvalue().decode("utf-8")


def without_retry_waits(monkeypatch: Any) -> None:
    """retry.py's attempts without its waits: for runs that count requests or must fail fast."""
    from tenacity import wait_none

    from gos3matic.store import retry

    real_policy = retry.s3_policy.__wrapped__
    monkeypatch.setattr(
        retry,
        "s3_policy",
        lambda attempts=retry.ATTEMPTS: real_policy(attempts).copy(wait=wait_none()),
    )
