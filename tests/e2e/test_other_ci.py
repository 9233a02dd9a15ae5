"""The real commands inside each CI: defaults from its variables, read back independently.

Each test sets one CI's documented variables (or none) in the environment of the real
`gos3matic` process against moto; what lands on the objects and the marker is read with an
independent client. GoCD's GO_* win over any other CI's; explicit options win over both.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.ci_envs import ALL, DRONE_ENV, GITHUB_ENV, GITLAB_ENV, GOCD_ENV, JENKINS_ENV
from support.readback import snapshot

REPO = Path(__file__).resolve().parents[2]
PREFIX = "myapp/build/package/42.1/"

# What each CI's example environment (support/ci_envs.py) puts on the objects, and where the
# parameter table says the label came from.
EXPECTED: dict[str, tuple[dict[str, str], str, str]] = {
    "gocd": (
        {
            "go_pipeline_label": "1.4.77",
            "user": "changes",
            "traceback_url": "https://gocd.example.com/go/tab/build/detail/myapp/77/build/2/package",
        },
        "77.2",
        "$GO_PIPELINE_LABEL (GoCD)",
    ),
    "jenkins": (
        {
            "go_pipeline_label": "153",
            "user": "jo",
            "traceback_url": "https://jenkins.example.com/job/myapp/153/",
        },
        "153.1",
        "$BUILD_NUMBER (Jenkins)",
    ),
    "github-actions": (
        {
            "go_pipeline_label": "42",
            "user": "mona",
            "traceback_url": "https://github.com/octocat/Hello-World/actions/runs/1658821493",
        },
        "42.3",
        "$GITHUB_RUN_NUMBER (GitHub Actions)",
    ),
    "gitlab-ci": (
        {
            "go_pipeline_label": "10",
            "user": "jo@example.com",
            "traceback_url": "https://gitlab.example.com/group/myapp/-/pipelines/1000",
        },
        "10.1",
        "$CI_PIPELINE_IID (GitLab CI)",
    ),
    "drone": (
        {
            "go_pipeline_label": "42",
            "user": "octocat",
            "traceback_url": "https://drone.example.com/octocat/hello-world/42",
        },
        "42.1",
        "$DRONE_BUILD_NUMBER (Drone)",
    ),
    "circleci": (
        {
            "go_pipeline_label": "318",
            "user": "octocat",
            "traceback_url": "https://circleci.com/gh/octocat/hello-world/318",
        },
        "318.1",
        "$CIRCLE_BUILD_NUM (CircleCI)",
    ),
    "buildkite": (
        {
            "go_pipeline_label": "1514",
            "user": "cdanvers@kree-net.com",
            "traceback_url": "https://buildkite.com/acme-inc/my-project/builds/1514",
        },
        "1514.1",
        "$BUILDKITE_BUILD_NUMBER (Buildkite)",
    ),
    "azure-pipelines": (
        {
            "go_pipeline_label": "20240131.2",
            "user": "jo@example.com",
            "traceback_url": (
                "https://dev.azure.com/fabrikam/Fabrikam%20Fiber/_build/results?buildId=512"
            ),
        },
        "512.1",
        "$BUILD_BUILDNUMBER (Azure Pipelines)",
    ),
}


def put(s3: Any, bucket: str, *keys: str) -> None:
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"payload", Metadata={"built-by": "ci"})


def metadata(s3: Any, bucket: str, key: str) -> dict[str, str]:
    head: dict[str, str] = s3.head_object(Bucket=bucket, Key=key)["Metadata"]
    return head


def test_the_examples_cover_every_ci() -> None:
    assert set(EXPECTED) == set(ALL)


@pytest.mark.parametrize("key", list(EXPECTED))
def test_annotate_inside_each_ci_takes_its_defaults(
    run_cli: Any, moto_s3: Any, moto_client: Any, moto_bucket: str, key: str
) -> None:
    put(moto_client, moto_bucket, f"{PREFIX}a.bin", f"{PREFIX}dist/b.bin")
    annotation, _, label_source = EXPECTED[key]

    result = run_cli(moto_s3, "annotate", moto_bucket, PREFIX, "--no-progress", env=ALL[key])

    assert result.returncode == 0, result.stderr
    assert label_source in result.stdout  # the parameter table says where the label came from
    assert metadata(moto_client, moto_bucket, PREFIX) == {**annotation, "completed": "completed"}
    for name in ("a.bin", "dist/b.bin"):
        stored = metadata(moto_client, moto_bucket, f"{PREFIX}{name}")
        assert stored == {**annotation, "built-by": "ci"}


@pytest.mark.parametrize("key", list(EXPECTED))
def test_revision_names_the_folder_in_each_ci(run_cli: Any, moto_s3: Any, key: str) -> None:
    _, revision, _ = EXPECTED[key]

    plain = run_cli(moto_s3, "revision", env=ALL[key])
    as_json = run_cli(moto_s3, "revision", "--json", env=ALL[key])

    assert (plain.returncode, plain.stdout, plain.stderr) == (0, f"{revision}\n", "")
    document = json.loads(as_json.stdout)
    assert document["revision"] == revision
    assert document["ci_key"] == key
    assert set(document["variables"]) <= set(ALL[key])
    assert all(ALL[key][name] == value for name, value in document["variables"].items())


def test_one_line_names_and_annotates_the_folder(
    moto_s3: Any, moto_client: Any, moto_bucket: str
) -> None:
    put(moto_client, moto_bucket, "myapp/build/package/42.3/a.bin")
    # The README's line, word for word, with `gos3matic` run from this checkout.
    line = f'gos3matic annotate {moto_bucket} "myapp/build/package/$(gos3matic revision)"'
    result = subprocess.run(
        ["bash", "-c", f'gos3matic() {{ "{sys.executable}" -m gos3matic "$@"; }}; {line}'],
        cwd=REPO,
        env={**moto_s3.env(), **GITHUB_ENV},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    marker = metadata(moto_client, moto_bucket, "myapp/build/package/42.3/")
    assert marker["go_pipeline_label"] == "42"
    assert marker["completed"] == "completed"


def test_no_ci_is_exit_2_naming_what_was_looked_for_and_writes_nothing(
    run_cli: Any, moto_s3: Any, moto_client: Any, moto_bucket: str
) -> None:
    put(moto_client, moto_bucket, f"{PREFIX}a.bin")
    before = snapshot(moto_client, moto_bucket)

    annotate = run_cli(moto_s3, "annotate", moto_bucket, PREFIX, "--no-progress")
    revision = run_cli(moto_s3, "revision")

    assert annotate.returncode == 2
    assert "no label" in annotate.stderr and "$GITHUB_ACTIONS=true" in annotate.stderr
    assert revision.returncode == 2 and revision.stdout == ""
    for marker in ("$GO_PIPELINE_NAME", "$JENKINS_URL", "$GITLAB_CI=true", "$TF_BUILD=True"):
        assert marker in revision.stderr
    assert snapshot(moto_client, moto_bucket) == before


@pytest.mark.parametrize("key", [key for key in EXPECTED if key != "gocd"])
def test_gocd_wins_over_any_other_ci(
    run_cli: Any, moto_s3: Any, moto_client: Any, moto_bucket: str, key: str
) -> None:
    put(moto_client, moto_bucket, f"{PREFIX}a.bin")

    result = run_cli(
        moto_s3, "annotate", moto_bucket, PREFIX, "--no-progress", env={**ALL[key], **GOCD_ENV}
    )
    revision = run_cli(moto_s3, "revision", env={**ALL[key], **GOCD_ENV})

    assert result.returncode == 0, result.stderr
    gocd = EXPECTED["gocd"][0]
    assert metadata(moto_client, moto_bucket, PREFIX) == {**gocd, "completed": "completed"}
    assert metadata(moto_client, moto_bucket, f"{PREFIX}a.bin") == {**gocd, "built-by": "ci"}
    assert revision.stdout == "77.2\n"


def test_explicit_options_win_over_gocd_and_the_other_ci(
    run_cli: Any, moto_s3: Any, moto_client: Any, moto_bucket: str
) -> None:
    put(moto_client, moto_bucket, f"{PREFIX}a.bin")
    explicit = {
        "go_pipeline_label": "9",
        "user": "release-bot",
        "traceback_url": "https://ci.example.com/runs/9",
    }

    result = run_cli(
        moto_s3,
        "annotate",
        moto_bucket,
        PREFIX,
        "--label",
        "9",
        "--username",
        "release-bot",
        "--traceback-url",
        "https://ci.example.com/runs/9",
        "--no-progress",
        env={**JENKINS_ENV, **GOCD_ENV},
    )

    assert result.returncode == 0, result.stderr
    assert "9  (--label)" in result.stdout
    assert metadata(moto_client, moto_bucket, PREFIX) == {**explicit, "completed": "completed"}


def test_an_option_replaces_a_ci_value_the_contract_would_refuse(
    run_cli: Any, moto_s3: Any, moto_client: Any, moto_bucket: str
) -> None:
    put(moto_client, moto_bucket, f"{PREFIX}a.bin")
    before = snapshot(moto_client, moto_bucket)
    env = {**GITLAB_ENV, "CI_PIPELINE_IID": "not a label", "CI_PIPELINE_URL": "ftp://x/1"}

    refused = run_cli(moto_s3, "annotate", moto_bucket, PREFIX, "--no-progress", env=env)
    assert refused.returncode == 2
    assert refused.stderr.startswith(
        "gos3matic: error: invalid label 'not a label' from $CI_PIPELINE_IID (GitLab CI): "
    )
    assert snapshot(moto_client, moto_bucket) == before

    result = run_cli(
        moto_s3,
        "annotate",
        moto_bucket,
        PREFIX,
        "--label",
        "10",
        "--traceback-url",
        "https://gitlab.example.com/p/1",
        "--no-progress",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert metadata(moto_client, moto_bucket, PREFIX)["user"] == "jo@example.com"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {**JENKINS_ENV, "BUILD_URL": "https://bot:s3cret@jenkins.example.com/job/x/1/"},
            "invalid traceback URL from $BUILD_URL (Jenkins): it carries a user name or password",
        ),
        (
            {**GITHUB_ENV, "GITHUB_RUN_NUMBER": "4 2"},
            "invalid label '4 2' from $GITHUB_RUN_NUMBER (GitHub Actions)",
        ),
    ],
)
def test_a_bad_ci_value_is_exit_2_naming_its_variable_and_writes_nothing(
    run_cli: Any, moto_s3: Any, moto_client: Any, moto_bucket: str, env: Any, message: str
) -> None:
    put(moto_client, moto_bucket, f"{PREFIX}a.bin")
    before = snapshot(moto_client, moto_bucket)

    result = run_cli(moto_s3, "annotate", moto_bucket, PREFIX, "--no-progress", env=env)

    assert result.returncode == 2
    assert message in result.stderr
    assert "s3cret" not in result.stderr + result.stdout
    assert snapshot(moto_client, moto_bucket) == before


def test_a_revision_the_poller_cannot_parse_is_exit_2_naming_its_variable(
    run_cli: Any, moto_s3: Any
) -> None:
    result = run_cli(moto_s3, "revision", env={**DRONE_ENV, "DRONE_BUILD_NUMBER": "20240101120000"})

    assert result.returncode == 2 and result.stdout == ""
    assert "invalid revision part '20240101120000' from $DRONE_BUILD_NUMBER (Drone)" in (
        result.stderr
    )


def test_two_cis_the_first_is_read_and_the_table_names_the_other(
    run_cli: Any, moto_s3: Any, moto_client: Any, moto_bucket: str
) -> None:
    put(moto_client, moto_bucket, f"{PREFIX}a.bin")

    result = run_cli(
        moto_s3, "annotate", moto_bucket, PREFIX, "--no-progress", env={**DRONE_ENV, **GITLAB_ENV}
    )

    assert result.returncode == 0, result.stderr
    assert "GitLab CI ($GITLAB_CI=true); not read: Drone" in result.stdout
    assert metadata(moto_client, moto_bucket, PREFIX)["go_pipeline_label"] == "10"


def test_mark_takes_the_same_defaults(
    run_cli: Any, moto_s3: Any, moto_client: Any, moto_bucket: str
) -> None:
    put(moto_client, moto_bucket, f"{PREFIX}a.bin")
    shard = run_cli(
        moto_s3, "annotate", moto_bucket, PREFIX, "--shard", "1/2", "--no-progress", env=GITHUB_ENV
    )
    other = run_cli(
        moto_s3, "annotate", moto_bucket, PREFIX, "--shard", "2/2", "--no-progress", env=GITHUB_ENV
    )
    assert (shard.returncode, other.returncode) == (0, 0), shard.stderr + other.stderr

    result = run_cli(moto_s3, "mark", moto_bucket, PREFIX, "--no-progress", env=GITHUB_ENV)

    assert result.returncode == 0, result.stderr
    expected = EXPECTED["github-actions"][0]
    assert metadata(moto_client, moto_bucket, PREFIX) == {**expected, "completed": "completed"}
