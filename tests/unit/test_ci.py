"""core.ci: each CI's documented environment -> label, user, traceback URL and revision, pure."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.ci_envs import (
    AZURE_ENV,
    BUILDKITE_ENV,
    CIRCLECI_ENV,
    DRONE_ENV,
    GITHUB_ENV,
    GITLAB_ENV,
    GOCD_ENV,
    JENKINS_ENV,
)

from gos3matic.core import ci
from gos3matic.core.contract import (
    JAVA_INT_MAX,
    parse_revision,
    traceback_url_from_env,
    validate_label,
)
from gos3matic.errors import InputError

# (env, CI, label, user, traceback URL, revision, label source, user source, URL source, revision
# source): what each CI's own example environment gives.
EXPECTED = {
    "gocd": (
        GOCD_ENV,
        ci.GOCD,
        "1.4.77",
        "changes",
        "https://gocd.example.com/go/tab/build/detail/myapp/77/build/2/package",
        "77.2",
        "$GO_PIPELINE_LABEL (GoCD)",
        "$GO_TRIGGER_USER (GoCD)",
        "$GO_SERVER_DASHBOARD_URL/go/tab/build/detail/$GO_PIPELINE_NAME/$GO_PIPELINE_COUNTER/"
        "$GO_STAGE_NAME/$GO_STAGE_COUNTER/$GO_JOB_NAME (GoCD)",
        "$GO_PIPELINE_COUNTER.$GO_STAGE_COUNTER (GoCD)",
    ),
    "jenkins": (
        JENKINS_ENV,
        ci.JENKINS,
        "153",
        "jo",
        "https://jenkins.example.com/job/myapp/153/",
        "153.1",
        "$BUILD_NUMBER (Jenkins)",
        "$BUILD_USER_ID (Jenkins)",
        "$BUILD_URL (Jenkins)",
        "$BUILD_NUMBER.1 (Jenkins)",
    ),
    "github-actions": (
        GITHUB_ENV,
        ci.GITHUB_ACTIONS,
        "42",
        "mona",
        "https://github.com/octocat/Hello-World/actions/runs/1658821493",
        "42.3",
        "$GITHUB_RUN_NUMBER (GitHub Actions)",
        "$GITHUB_TRIGGERING_ACTOR (GitHub Actions)",
        "$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID (GitHub Actions)",
        "$GITHUB_RUN_NUMBER.$GITHUB_RUN_ATTEMPT (GitHub Actions)",
    ),
    "gitlab-ci": (
        GITLAB_ENV,
        ci.GITLAB_CI,
        "10",
        "jo@example.com",
        "https://gitlab.example.com/group/myapp/-/pipelines/1000",
        "10.1",
        "$CI_PIPELINE_IID (GitLab CI)",
        "$GITLAB_USER_EMAIL (GitLab CI)",
        "$CI_PIPELINE_URL (GitLab CI)",
        "$CI_PIPELINE_IID.1 (GitLab CI)",
    ),
    "drone": (
        DRONE_ENV,
        ci.DRONE,
        "42",
        "octocat",
        "https://drone.example.com/octocat/hello-world/42",
        "42.1",
        "$DRONE_BUILD_NUMBER (Drone)",
        "$DRONE_COMMIT_AUTHOR (Drone)",
        "$DRONE_BUILD_LINK (Drone)",
        "$DRONE_BUILD_NUMBER.1 (Drone)",
    ),
    "circleci": (
        CIRCLECI_ENV,
        ci.CIRCLECI,
        "318",
        "octocat",
        "https://circleci.com/gh/octocat/hello-world/318",
        "318.1",
        "$CIRCLE_BUILD_NUM (CircleCI)",
        "$CIRCLE_USERNAME (CircleCI)",
        "$CIRCLE_BUILD_URL (CircleCI)",
        "$CIRCLE_BUILD_NUM.1 (CircleCI)",
    ),
    "buildkite": (
        BUILDKITE_ENV,
        ci.BUILDKITE,
        "1514",
        "cdanvers@kree-net.com",
        "https://buildkite.com/acme-inc/my-project/builds/1514",
        "1514.1",
        "$BUILDKITE_BUILD_NUMBER (Buildkite)",
        "$BUILDKITE_BUILD_CREATOR_EMAIL (Buildkite)",
        "$BUILDKITE_BUILD_URL (Buildkite)",
        "$BUILDKITE_BUILD_NUMBER.1 (Buildkite)",
    ),
    "azure-pipelines": (
        AZURE_ENV,
        ci.AZURE_PIPELINES,
        "20240131.2",
        "jo@example.com",
        "https://dev.azure.com/fabrikam/Fabrikam%20Fiber/_build/results?buildId=512",
        "512.1",
        "$BUILD_BUILDNUMBER (Azure Pipelines)",
        "$BUILD_REQUESTEDFOREMAIL (Azure Pipelines)",
        "$SYSTEM_TEAMFOUNDATIONCOLLECTIONURI/$SYSTEM_TEAMPROJECT/_build/results"
        "?buildId=$BUILD_BUILDID (Azure Pipelines)",
        "$BUILD_BUILDID.1 (Azure Pipelines)",
    ),
}


# -- each CI's example environment ---------------------------------------------------------------


@pytest.mark.parametrize("key", list(EXPECTED))
def test_each_ci_gives_label_user_url_and_revision_with_their_sources(key: str) -> None:
    env, system, label, user, url, revision, *expected_sources = EXPECTED[key]
    result = ci.defaults(env)

    values = [result.get(name) for name in ci.FIELDS]
    assert [found.value if found else None for found in values] == [label, user, url, revision]
    assert [found.source if found else None for found in values] == expected_sources
    assert {found.ci for found in values if found} == {system}
    assert ci.detect(env) is system
    assert result.ci is (None if system is ci.GOCD else system)
    assert result.ignored == ()


@pytest.mark.parametrize("key", list(EXPECTED))
def test_each_revision_is_two_integers_the_poller_parses(key: str) -> None:
    found = ci.revision(EXPECTED[key][0])
    major, minor, patch = parse_revision(found.value) or (None, None, None)
    assert f"{major}.{minor}" == found.value
    assert patch == 0


def test_found_lists_each_variable_read_with_its_value() -> None:
    result = ci.defaults(GITHUB_ENV)
    assert result.revision is not None and result.traceback_url is not None
    assert result.revision.variables == (("GITHUB_RUN_NUMBER", "42"), ("GITHUB_RUN_ATTEMPT", "3"))
    assert dict(result.traceback_url.variables) == {
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "octocat/Hello-World",
        "GITHUB_RUN_ID": "1658821493",
    }


def test_gocd_traceback_url_is_the_contracts_own() -> None:
    for server in ("https://gocd.example.com", "https://gocd.example.com/", "http://h:8153//"):
        env = {**GOCD_ENV, "GO_SERVER_DASHBOARD_URL": server}
        found = ci.defaults(env).traceback_url
        assert found is not None
        assert found.value == traceback_url_from_env(env)


# -- fallbacks and gaps --------------------------------------------------------------------------

FALLBACKS = [
    (GITHUB_ENV, "GITHUB_TRIGGERING_ACTOR", "octocat", "$GITHUB_ACTOR (GitHub Actions)"),
    (GITLAB_ENV, "GITLAB_USER_EMAIL", "jo", "$GITLAB_USER_LOGIN (GitLab CI)"),
    (BUILDKITE_ENV, "BUILDKITE_BUILD_CREATOR_EMAIL", "Carol Danvers", "$BUILDKITE_BUILD_CREATOR"),
    (AZURE_ENV, "BUILD_REQUESTEDFOREMAIL", "Jo Example", "$BUILD_REQUESTEDFOR (Azure Pipelines)"),
]


@pytest.mark.parametrize(("env", "unset", "user", "source"), FALLBACKS)
def test_user_falls_back_to_the_next_documented_variable(
    env: dict[str, str], unset: str, user: str, source: str
) -> None:
    for gone in ({k: v for k, v in env.items() if k != unset}, {**env, unset: ""}):
        found = ci.defaults(gone).user
        assert found is not None
        assert (found.value, found.source.startswith(source)) == (user, True)


def test_jenkins_without_the_build_user_plugin_or_a_configured_url_leaves_them_unset() -> None:
    env = {k: v for k, v in JENKINS_ENV.items() if k not in ("BUILD_USER_ID", "BUILD_URL")}
    result = ci.defaults(env)
    assert result.label is not None and result.label.value == "153"
    assert result.user is None
    assert result.traceback_url is None
    assert result.missing("user") == "no $GO_TRIGGER_USER (GoCD), no $BUILD_USER_ID (Jenkins)"
    assert result.missing("traceback_url").endswith("no $BUILD_URL (Jenkins)")


def test_a_url_template_needs_every_variable() -> None:
    env = {k: v for k, v in GITHUB_ENV.items() if k != "GITHUB_RUN_ID"}
    assert ci.defaults(env).traceback_url is None


def test_github_revision_needs_the_attempt() -> None:
    env = {k: v for k, v in GITHUB_ENV.items() if k != "GITHUB_RUN_ATTEMPT"}
    assert ci.defaults(env).revision is None
    with pytest.raises(InputError, match=r"GitHub Actions detected.*\$GITHUB_RUN_ATTEMPT"):
        ci.revision(env)


# -- no CI -----------------------------------------------------------------------------------------


def test_no_ci_gives_nothing() -> None:
    env = {"PATH": "/usr/bin", "CI": "true", "HOME": "/root"}
    assert ci.detect(env) is None
    assert ci.detected(env) == ()
    result = ci.defaults(env)
    assert [result.get(name) for name in ci.FIELDS] == [None, None, None, None]
    assert result.ci is None
    assert result.missing("label") == "no $GO_PIPELINE_LABEL (GoCD)"


def test_no_ci_revision_is_refused_naming_every_marker_looked_for() -> None:
    with pytest.raises(InputError) as refused:
        ci.revision({})
    message = str(refused.value)
    assert message.startswith("no CI detected")
    for marker in (
        "$GO_PIPELINE_NAME",
        "$JENKINS_URL",
        "$GITHUB_ACTIONS=true",
        "$GITLAB_CI=true",
        "$DRONE=true",
        "$CIRCLECI=true",
        "$BUILDKITE=true",
        "$TF_BUILD=True",
    ):
        assert marker in message


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"GITHUB_ACTIONS": "false", "GITHUB_RUN_NUMBER": "4"}, None),
        ({"GITHUB_ACTIONS": "TRUE"}, ci.GITHUB_ACTIONS),
        ({"GITLAB_CI": ""}, None),
        ({"JENKINS_URL": ""}, None),
        ({"JENKINS_URL": "http://j/"}, ci.JENKINS),
        ({"TF_BUILD": "True"}, ci.AZURE_PIPELINES),
        ({"TF_BUILD": "False"}, None),
        ({"DRONE": "true"}, ci.DRONE),
        ({"CI": "drone"}, None),  # only DRONE=true marks Drone
        ({"GO_PIPELINE_NAME": "app", "JENKINS_URL": "http://j/"}, ci.GOCD),
    ],
)
def test_detection_reads_each_cis_documented_marker(
    env: dict[str, str], expected: ci.CiSystem | None
) -> None:
    assert ci.detect(env) is expected


# -- precedence ------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [key for key in EXPECTED if key != "gocd"])
def test_gocd_wins_over_any_other_ci(key: str) -> None:
    env = {**EXPECTED[key][0], **GOCD_ENV}
    result = ci.defaults(env)
    for name in ci.FIELDS:
        found = result.get(name)
        assert found is not None and found.ci is ci.GOCD, name
    assert ci.revision(env).value == "77.2"
    assert result.ci is None  # a GoCD job reads no other CI
    assert result.ignored == (EXPECTED[key][1],)


def test_in_a_gocd_job_a_value_gocd_leaves_unset_stays_unset() -> None:
    env = {**JENKINS_ENV, **{k: v for k, v in GOCD_ENV.items() if k != "GO_TRIGGER_USER"}}
    result = ci.defaults(env)
    assert result.user is None  # not $BUILD_USER_ID: JENKINS_URL on a GoCD agent is no Jenkins job
    assert result.missing("user") == "no $GO_TRIGGER_USER (GoCD)"
    assert result.label is not None and result.label.ci is ci.GOCD


def test_outside_a_gocd_job_go_variables_win_value_by_value() -> None:
    env = {**JENKINS_ENV, "GO_PIPELINE_LABEL": "7"}  # exported by hand; no $GO_PIPELINE_NAME
    result = ci.defaults(env)
    assert result.label is not None and result.label.source == "$GO_PIPELINE_LABEL (GoCD)"
    assert result.user is not None and result.user.source == "$BUILD_USER_ID (Jenkins)"
    assert result.traceback_url is not None and result.traceback_url.ci is ci.JENKINS
    assert result.revision is not None and result.revision.value == "153.1"


def test_a_field_not_asked_for_is_neither_read_nor_refused() -> None:
    env = {**JENKINS_ENV, "BUILD_NUMBER": "not a label", "BUILD_URL": "ftp://x"}
    result = ci.defaults(env, ("user",))  # --label and --traceback-url were given
    assert result.user is not None and result.user.value == "jo"
    assert result.label is None and result.traceback_url is None
    assert set(result.looked_for) == {"user"}


def test_two_other_cis_the_first_in_the_documented_order_wins() -> None:
    env = {**GITHUB_ENV, **JENKINS_ENV, **DRONE_ENV}
    result = ci.defaults(env)
    assert result.ci is ci.JENKINS
    assert result.ignored == (ci.GITHUB_ACTIONS, ci.DRONE)
    assert result.label is not None and result.label.source == "$BUILD_NUMBER (Jenkins)"
    assert ci.detected(env) == (ci.JENKINS, ci.GITHUB_ACTIONS, ci.DRONE)


def test_the_order_is_gocd_then_the_issues_table() -> None:
    assert ci.SYSTEMS[0] is ci.GOCD
    assert [system.name for system in ci.OTHERS] == [
        "Jenkins",
        "GitHub Actions",
        "GitLab CI",
        "Drone",
        "CircleCI",
        "Buildkite",
        "Azure Pipelines",
    ]
    assert len({system.key for system in ci.SYSTEMS}) == len(ci.SYSTEMS)
    assert all(system.docs.startswith("https://") for system in ci.SYSTEMS)


# -- values the contract cannot take ---------------------------------------------------------------

BAD = [
    ({**JENKINS_ENV, "BUILD_NUMBER": "4 2"}, "invalid label '4 2' from $BUILD_NUMBER (Jenkins): "),
    (
        {**GOCD_ENV, "GO_PIPELINE_LABEL": "release 7"},
        "invalid label 'release 7' from $GO_PIPELINE_LABEL (GoCD): ",
    ),
    (
        {**AZURE_ENV, "BUILD_BUILDNUMBER": "myapp main 20240131.2"},
        "invalid label 'myapp main 20240131.2' from $BUILD_BUILDNUMBER (Azure Pipelines): ",
    ),
    (
        {**GITLAB_ENV, "CI_PIPELINE_URL": "ftp://gitlab.example.com/p/1"},
        "invalid traceback URL 'ftp://gitlab.example.com/p/1' from $CI_PIPELINE_URL (GitLab CI): "
        "expected an http:// or https:// URL",
    ),
    (
        {**GITHUB_ENV, "GITHUB_SERVER_URL": "github.com"},
        "invalid traceback URL 'github.com/octocat/Hello-World/actions/runs/1658821493' from "
        "$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID (GitHub Actions): ",
    ),
    (
        {**DRONE_ENV, "DRONE_COMMIT_AUTHOR": "oct\nocat"},
        "invalid user from $DRONE_COMMIT_AUTHOR (Drone): it contains control characters",
    ),
]


@pytest.mark.parametrize(("env", "message"), BAD)
def test_a_value_the_contract_cannot_take_is_refused_naming_its_variable(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(InputError) as refused:
        ci.defaults(env)
    assert str(refused.value).startswith(message)


def test_a_url_with_credentials_is_refused_without_echoing_them() -> None:
    env = {**JENKINS_ENV, "BUILD_URL": "https://bot:s3cret@jenkins.example.com/job/x/1/"}
    with pytest.raises(InputError) as refused:
        ci.defaults(env)
    message = str(refused.value)
    assert message.startswith("invalid traceback URL from $BUILD_URL (Jenkins): ")
    assert "s3cret" not in message


@pytest.mark.parametrize(
    ("env", "variable", "text"),
    [
        ({**JENKINS_ENV, "BUILD_NUMBER": "12a"}, "$BUILD_NUMBER (Jenkins)", "12a"),
        ({**GITHUB_ENV, "GITHUB_RUN_ATTEMPT": "-1"}, "$GITHUB_RUN_ATTEMPT (GitHub Actions)", "-1"),
        ({**DRONE_ENV, "DRONE_BUILD_NUMBER": "٣"}, "$DRONE_BUILD_NUMBER (Drone)", "٣"),
        (
            {**CIRCLECI_ENV, "CIRCLE_BUILD_NUM": str(JAVA_INT_MAX + 1)},
            "$CIRCLE_BUILD_NUM (CircleCI)",
            str(JAVA_INT_MAX + 1),
        ),
        ({**GOCD_ENV, "GO_STAGE_COUNTER": "2.0"}, "$GO_STAGE_COUNTER (GoCD)", "2.0"),
    ],
)
def test_a_revision_part_the_poller_cannot_parse_is_refused_naming_its_variable(
    env: dict[str, str], variable: str, text: str
) -> None:
    with pytest.raises(InputError) as refused:
        ci.revision(env)
    assert str(refused.value).startswith(f"invalid revision part {text!r} from {variable}: ")


def test_the_largest_counter_java_parses_is_accepted() -> None:
    env = {**JENKINS_ENV, "BUILD_NUMBER": str(JAVA_INT_MAX)}
    assert ci.revision(env).value == f"{JAVA_INT_MAX}.1"


@given(st.text(max_size=300))
def test_any_build_number_is_a_valid_label_or_refused_naming_it(number: str) -> None:
    try:
        found = ci.defaults({**JENKINS_ENV, "BUILD_NUMBER": number}, ("label",)).label
    except InputError as error:
        assert "from $BUILD_NUMBER (Jenkins)" in str(error)
    else:
        if found is not None:  # an empty value is unset
            assert validate_label(found.value) == number


def test_variables_lists_every_variable_read() -> None:
    for system in ci.SYSTEMS:
        assert system.detect in ci.VARIABLES
        for name in ci.FIELDS:
            assert set(system.rule(name).variables) <= ci.VARIABLES
    assert {"GITHUB_TRIGGERING_ACTOR", "SYSTEM_TEAMPROJECT", "GO_SERVER_DASHBOARD_URL"} <= (
        ci.VARIABLES
    )
    assert "CI" not in ci.VARIABLES  # set by most CIs, read by none here
