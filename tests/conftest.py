"""Fixtures: throwaway moto and SeaweedFS servers, clients and buckets on them, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gos3matic.core import ci
from gos3matic.devserver import LocalS3, moto_server, seaweedfs_server

REPO = Path(__file__).resolve().parent.parent
RunCli = Callable[..., "subprocess.CompletedProcess[str]"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run the tests marked slow")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: minutes and gigabytes; skipped unless --run-slow")
    # Tests never reach real AWS: no developer profile, key, region or endpoint leaks into them.
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    # Nor the CI running the suite: the commands take their defaults from the CI they run in,
    # and a test that sets one CI's variables must see that CI alone.
    for name in ci.VARIABLES:
        os.environ.pop(name, None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def client_for(server: LocalS3) -> Any:
    """An independent S3 client: what the tests read back is the server's word, not ours."""
    return server.client()


def new_bucket(client: Any) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[LocalS3]:
    with moto_server() as server:
        yield server


@pytest.fixture(scope="session")
def seaweed_s3() -> Iterator[LocalS3]:
    with seaweedfs_server() as server:
        yield server


@pytest.fixture(scope="session", params=["moto", "seaweedfs"], ids=["moto", "seaweedfs"])
def s3server(request: pytest.FixtureRequest) -> LocalS3:
    name = {"moto": "moto_s3", "seaweedfs": "seaweed_s3"}[request.param]
    server: LocalS3 = request.getfixturevalue(name)
    return server


@pytest.fixture
def s3(s3server: LocalS3) -> Any:
    return client_for(s3server)


@pytest.fixture
def bucket(s3: Any) -> str:
    """A new bucket on s3server; never cleaned up, the servers are throwaway."""
    return new_bucket(s3)


# The same for tests that need one server in particular (a quirk, a feature the other lacks).
@pytest.fixture
def moto_client(moto_s3: LocalS3) -> Any:
    return client_for(moto_s3)


@pytest.fixture
def moto_bucket(moto_client: Any) -> str:
    return new_bucket(moto_client)


@pytest.fixture
def seaweed_client(seaweed_s3: LocalS3) -> Any:
    return client_for(seaweed_s3)


@pytest.fixture
def seaweed_bucket(seaweed_client: Any) -> str:
    return new_bucket(seaweed_client)


@pytest.fixture
def run_cli() -> RunCli:
    """run(server, *args, env=None, timeout=120): `python -m gos3matic *args` against server."""

    def run(
        server: LocalS3, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        # server.env() is os.environ without AWS_* plus the server; `env` overrides come last.
        return subprocess.run(
            [sys.executable, "-m", "gos3matic", *args],
            cwd=REPO,
            env={**server.env(), **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run
