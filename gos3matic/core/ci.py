"""Defaults from the CI a command runs in: label, user, traceback URL and revision `<N>.<M>`.

Pure: every function takes the environment as a mapping; nothing here reads a file, the process
environment or the network.

Precedence, value by value:

1. an explicit option (`--label`, `--username`, `--traceback-url`): the caller asks only for
   the values it was not given, so a CI value it does not use is never read or refused;
2. GoCD's own GO_* variables for that value, whenever they are set;
3. the other CI detected, the first of `OTHERS` in their order: Jenkins, GitHub Actions,
   GitLab CI, Drone, CircleCI, Buildkite, Azure Pipelines. A job seldom sees two of them (a
   runner started from another CI's job, say); when it does, the first wins and the others are
   reported in `Defaults.ignored`, so the parameter table can say so.

In a GoCD job ($GO_PIPELINE_NAME set) no other CI is read at all: a value GoCD leaves unset
stays unset rather than come from, say, a JENKINS_URL exported on the agent. The same holds
for backfill, whose per-revision environment is a GoCD job's.

Every value is checked against the contract before it is returned: a label GoCD could not
produce, a URL that is not http(s) or carries credentials, a revision part that is not a whole
number the poller can parse, is an `InputError` (exit 2) that names the variable it came from.

The variable names were checked against each CI's own reference, given next to its entry.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from gos3matic.core.contract import (
    JAVA_INT_MAX,
    TRACEBACK_ENV,
    gocd_traceback_url,
    validate_label,
    validate_url,
)
from gos3matic.errors import InputError

FIELDS = ("label", "user", "traceback_url", "revision")
_COUNTER = re.compile(r"[0-9]+")  # ASCII digits only: str.isdigit() also takes '٣' and '²'


# -- how a value is read ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pick:
    """The first of these variables that is set and not empty."""

    names: tuple[str, ...]

    @property
    def variables(self) -> tuple[str, ...]:
        return self.names

    def describe(self) -> str:
        return " or ".join(f"${name}" for name in self.names)

    def read(self, env: Mapping[str, str]) -> tuple[str, str, tuple[str, ...]] | None:
        """(value, how it was read, the variables read), or None when none is set."""
        for name in self.names:
            value = env.get(name, "")
            if value:
                return value, f"${name}", (name,)
        return None


@dataclass(frozen=True)
class Template:
    """A URL built from variables, only when every one of them is set and not empty.

    A value followed by '/' in the pattern loses its own trailing slashes, so that a server URL
    given as `https://ci.example.com/` does not make `//`. Names in `quoted` are
    percent-encoded (an Azure DevOps project name may contain spaces).
    """

    pattern: str
    quoted: frozenset[str] = frozenset()

    def _parts(self) -> list[tuple[str, str | None]]:
        return [(literal, name) for literal, name, _, _ in string.Formatter().parse(self.pattern)]

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(name for _, name in self._parts() if name)

    def describe(self) -> str:
        return "".join(literal + (f"${name}" if name else "") for literal, name in self._parts())

    def read(self, env: Mapping[str, str]) -> tuple[str, str, tuple[str, ...]] | None:
        if not all(env.get(name, "") for name in self.variables):
            return None
        parts = self._parts()
        out = []
        for index, (literal, name) in enumerate(parts):
            out.append(literal)
            if not name:
                continue
            value = env[name]
            following = parts[index + 1][0] if index + 1 < len(parts) else ""
            if following.startswith("/"):
                value = value.rstrip("/")
            out.append(quote(value, safe="") if name in self.quoted else value)
        return "".join(out), self.describe(), self.variables


@dataclass(frozen=True)
class Revision:
    """`<N>.<M>`: N from one variable, M from another or the constant 1."""

    major: str
    minor: str | None = None

    @property
    def variables(self) -> tuple[str, ...]:
        return (self.major,) if self.minor is None else (self.major, self.minor)

    def describe(self) -> str:
        return f"${self.major}." + ("1" if self.minor is None else f"${self.minor}")

    def read(self, env: Mapping[str, str]) -> tuple[str, str, tuple[str, ...]] | None:
        if not all(env.get(name, "") for name in self.variables):
            return None
        minor = "1" if self.minor is None else env[self.minor]
        return f"{env[self.major]}.{minor}", self.describe(), self.variables


Rule = Pick | Template | Revision


@dataclass(frozen=True, repr=False)
class CiSystem:
    """One CI: how to tell a job runs in it, and where each default comes from."""

    key: str  # stable identifier, e.g. in `gos3matic revision --json`
    name: str  # as shown in sources: "$BUILD_NUMBER (Jenkins)"
    detect: str  # the variable that marks a job of this CI
    detect_value: str | None  # its value, compared case-insensitively; None: any non-empty value
    docs: str  # the reference the variable names were checked against
    label: Pick
    user: Pick
    traceback_url: Pick | Template
    revision: Revision

    def __repr__(self) -> str:
        return f"<CiSystem {self.key}>"

    def detected(self, env: Mapping[str, str]) -> bool:
        value = env.get(self.detect, "")
        if self.detect_value is None:
            return bool(value)
        return value.lower() == self.detect_value.lower()

    def detection(self) -> str:
        """How it is detected, as a person would check: `$GITHUB_ACTIONS=true`."""
        if self.detect_value is None:
            return f"${self.detect}"
        return f"${self.detect}={self.detect_value}"

    def rule(self, name: str) -> Rule:
        if name not in FIELDS:
            raise ValueError(f"unknown field {name!r}; one of {', '.join(FIELDS)}")
        rule: Rule = getattr(self, name)
        return rule


# -- the table -------------------------------------------------------------------------------------

# GoCD: https://docs.gocd.org/current/faq/dev_use_current_revision_in_build.html
# ("Standard GoCD environment variables"). GO_SERVER_DASHBOARD_URL is not GoCD's: it is the
# convention of the GoCD S3 publisher plugin, which builds the traceback URL this way.
_, _, _GO_PIPELINE_COUNTER, _, _GO_STAGE_COUNTER, _ = TRACEBACK_ENV
GOCD = CiSystem(
    key="gocd",
    name="GoCD",
    detect="GO_PIPELINE_NAME",
    detect_value=None,
    docs="https://docs.gocd.org/current/faq/dev_use_current_revision_in_build.html",
    label=Pick(("GO_PIPELINE_LABEL",)),
    user=Pick(("GO_TRIGGER_USER",)),
    traceback_url=Template(gocd_traceback_url(*(f"{{{name}}}" for name in TRACEBACK_ENV))),
    revision=Revision(_GO_PIPELINE_COUNTER, _GO_STAGE_COUNTER),
)

# Jenkins core: https://www.jenkins.io/doc/book/pipeline/jenkinsfile/#using-environment-variables
# and $JENKINS_URL/env-vars.html (jenkins.model.CoreEnvironmentContributor/buildEnv.properties):
# JENKINS_URL and BUILD_URL are set only when the Jenkins URL is configured (Manage Jenkins >
# System). BUILD_USER_ID is not core: the Build User Vars plugin sets it, inside
# `withBuildUser { }` or for every build when its global option is on
# (https://plugins.jenkins.io/build-user-vars-plugin/).
JENKINS = CiSystem(
    key="jenkins",
    name="Jenkins",
    detect="JENKINS_URL",
    detect_value=None,
    docs="https://www.jenkins.io/doc/book/pipeline/jenkinsfile/#using-environment-variables",
    label=Pick(("BUILD_NUMBER",)),
    user=Pick(("BUILD_USER_ID",)),
    traceback_url=Pick(("BUILD_URL",)),
    revision=Revision("BUILD_NUMBER"),
)

# GitHub Actions: https://docs.github.com/en/actions/reference/workflows-and-actions/variables
# ("Default environment variables"; the run URL is the combination that page gives).
# GITHUB_TRIGGERING_ACTOR differs from GITHUB_ACTOR on a re-run; older GitHub Enterprise
# Server versions lack it, hence the fallback. GITHUB_RUN_ATTEMPT starts at 1 and grows with
# each re-run, as GoCD's stage counter does.
GITHUB_ACTIONS = CiSystem(
    key="github-actions",
    name="GitHub Actions",
    detect="GITHUB_ACTIONS",
    detect_value="true",
    docs="https://docs.github.com/en/actions/reference/workflows-and-actions/variables",
    label=Pick(("GITHUB_RUN_NUMBER",)),
    user=Pick(("GITHUB_TRIGGERING_ACTOR", "GITHUB_ACTOR")),
    traceback_url=Template("{GITHUB_SERVER_URL}/{GITHUB_REPOSITORY}/actions/runs/{GITHUB_RUN_ID}"),
    revision=Revision("GITHUB_RUN_NUMBER", "GITHUB_RUN_ATTEMPT"),
)

# GitLab CI/CD: https://docs.gitlab.com/ci/variables/predefined_variables/
# CI_PIPELINE_IID is the project-level pipeline number (CI_PIPELINE_ID is instance-wide).
GITLAB_CI = CiSystem(
    key="gitlab-ci",
    name="GitLab CI",
    detect="GITLAB_CI",
    detect_value="true",
    docs="https://docs.gitlab.com/ci/variables/predefined_variables/",
    label=Pick(("CI_PIPELINE_IID",)),
    user=Pick(("GITLAB_USER_EMAIL", "GITLAB_USER_LOGIN")),
    traceback_url=Pick(("CI_PIPELINE_URL",)),
    revision=Revision("CI_PIPELINE_IID"),
)

# Drone: https://docs.drone.io/pipeline/environment/reference/
# DRONE_COMMIT_AUTHOR is the SCM username of the commit's author, not whoever started the
# build (Drone has DRONE_BUILD_TRIGGER for that, e.g. "@hook"): the author is the closer match.
DRONE = CiSystem(
    key="drone",
    name="Drone",
    detect="DRONE",
    detect_value="true",
    docs="https://docs.drone.io/pipeline/environment/reference/",
    label=Pick(("DRONE_BUILD_NUMBER",)),
    user=Pick(("DRONE_COMMIT_AUTHOR",)),
    traceback_url=Pick(("DRONE_BUILD_LINK",)),
    revision=Revision("DRONE_BUILD_NUMBER"),
)

# CircleCI: https://circleci.com/docs/reference/variables/ ("Built-in environment variables").
# CIRCLE_BUILD_NUM numbers the *job*, not the pipeline (the pipeline number is only a
# `<< pipeline.number >>` value): upload and annotate in the same job, or pass the revision on.
CIRCLECI = CiSystem(
    key="circleci",
    name="CircleCI",
    detect="CIRCLECI",
    detect_value="true",
    docs="https://circleci.com/docs/reference/variables/",
    label=Pick(("CIRCLE_BUILD_NUM",)),
    user=Pick(("CIRCLE_USERNAME",)),
    traceback_url=Pick(("CIRCLE_BUILD_URL",)),
    revision=Revision("CIRCLE_BUILD_NUM"),
)

# Buildkite: https://buildkite.com/docs/pipelines/environment_variables
# BUILDKITE_RETRY_COUNT counts retries of one job, not of the build, so M stays 1: a retried
# annotate job must name the same folder its upload job wrote.
BUILDKITE = CiSystem(
    key="buildkite",
    name="Buildkite",
    detect="BUILDKITE",
    detect_value="true",
    docs="https://buildkite.com/docs/pipelines/environment_variables",
    label=Pick(("BUILDKITE_BUILD_NUMBER",)),
    user=Pick(("BUILDKITE_BUILD_CREATOR_EMAIL", "BUILDKITE_BUILD_CREATOR")),
    traceback_url=Pick(("BUILDKITE_BUILD_URL",)),
    revision=Revision("BUILDKITE_BUILD_NUMBER"),
)

# Azure Pipelines: https://learn.microsoft.com/en-us/azure/devops/pipelines/build/variables
# (Build.BuildNumber is BUILD_BUILDNUMBER in a script's environment, and so on). The run's page
# is <collection URI><project>/_build/results?buildId=<Build.BuildId>. BUILD_BUILDNUMBER is the
# run number shown in the UI, `20240131.2` by default; the docs warn it may hold spaces, which
# no GoCD label can: that is exit 2 naming the variable (pass --label). Build.BuildId, an
# integer, is N; System.JobAttempt is per job, so M stays 1 (see Buildkite).
AZURE_PIPELINES = CiSystem(
    key="azure-pipelines",
    name="Azure Pipelines",
    detect="TF_BUILD",
    detect_value="True",  # as Azure documents and sets it; compared case-insensitively
    docs="https://learn.microsoft.com/en-us/azure/devops/pipelines/build/variables",
    label=Pick(("BUILD_BUILDNUMBER",)),
    user=Pick(("BUILD_REQUESTEDFOREMAIL", "BUILD_REQUESTEDFOR")),
    traceback_url=Template(
        "{SYSTEM_TEAMFOUNDATIONCOLLECTIONURI}/{SYSTEM_TEAMPROJECT}/_build/results"
        "?buildId={BUILD_BUILDID}",
        quoted=frozenset({"SYSTEM_TEAMPROJECT"}),
    ),
    revision=Revision("BUILD_BUILDID"),
)

OTHERS: tuple[CiSystem, ...] = (
    JENKINS,
    GITHUB_ACTIONS,
    GITLAB_CI,
    DRONE,
    CIRCLECI,
    BUILDKITE,
    AZURE_PIPELINES,
)
SYSTEMS: tuple[CiSystem, ...] = (GOCD, *OTHERS)
# Every variable this module reads: what a test suite clears, lest the CI running it leak in.
VARIABLES: frozenset[str] = frozenset(
    name
    for system in SYSTEMS
    for name in (
        system.detect,
        *(variable for field_ in FIELDS for variable in system.rule(field_).variables),
    )
)


# -- what was found --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """One default, checked, and where it came from."""

    value: str
    ci: CiSystem
    source: str  # "$GITHUB_RUN_NUMBER (GitHub Actions)"
    variables: tuple[tuple[str, str], ...]  # (name, value) of each variable read, in order


@dataclass(frozen=True)
class Defaults:
    """The defaults `defaults()` was asked for; None where no CI provides one."""

    label: Found | None = None
    user: Found | None = None
    traceback_url: Found | None = None
    revision: Found | None = None
    ci: CiSystem | None = None  # the other CI read after GoCD; None in a GoCD job
    ignored: tuple[CiSystem, ...] = ()  # other CIs detected but not read
    looked_for: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def get(self, name: str) -> Found | None:
        if name not in FIELDS:
            raise ValueError(f"unknown field {name!r}; one of {', '.join(FIELDS)}")
        found: Found | None = getattr(self, name)
        return found

    def missing(self, name: str) -> str:
        """Why a value is unset, for the parameter table: `no $GO_TRIGGER_USER, ...`."""
        tried = self.looked_for.get(name) or sources(name, ())
        return "no " + ", no ".join(tried)


def detected(env: Mapping[str, str]) -> tuple[CiSystem, ...]:
    """Every CI whose marker is in `env`, GoCD first, then in the fixed order of OTHERS."""
    return tuple(system for system in SYSTEMS if system.detected(env))


def detect(env: Mapping[str, str]) -> CiSystem | None:
    """The CI this job runs in: GoCD when its job variables are there, else the first other."""
    found = detected(env)
    return found[0] if found else None


def sources(name: str, systems: Iterable[CiSystem]) -> tuple[str, ...]:
    """Where `name` is looked for: GoCD's variables always, then those of `systems`."""
    chosen = [GOCD, *(system for system in systems if system is not GOCD)]
    return tuple(f"{system.rule(name).describe()} ({system.name})" for system in chosen)


def detection_hint() -> str:
    """The markers looked for, for an error when no CI is detected."""
    return ", ".join(f"{system.detection()} ({system.name})" for system in SYSTEMS)


def defaults(env: Mapping[str, str], wanted: Iterable[str] = FIELDS) -> Defaults:
    """The checked default of each field in `wanted`, by the precedence in the module docstring.

    Ask only for the fields no option gave: a value not asked for is neither read nor refused.
    Raises InputError naming the variable when a CI's value breaks the contract.
    """
    wanted = tuple(wanted)
    for name in wanted:
        if name not in FIELDS:
            raise ValueError(f"unknown field {name!r}; one of {', '.join(FIELDS)}")
    others = [system for system in OTHERS if system.detected(env)]
    ci = None if GOCD.detected(env) or not others else others[0]
    chain = (GOCD, ci) if ci is not None else (GOCD,)
    found: dict[str, Found | None] = {}
    for name in wanted:
        found[name] = None
        for system in chain:
            read = system.rule(name).read(env)
            if read is not None:
                value, how, names = read
                source = f"{how} ({system.name})"
                found[name] = Found(
                    value=_check(name, value, source, names, env),
                    ci=system,
                    source=source,
                    variables=tuple((n, env[n]) for n in names),
                )
                break
    return Defaults(
        label=found.get("label"),
        user=found.get("user"),
        traceback_url=found.get("traceback_url"),
        revision=found.get("revision"),
        ci=ci,
        ignored=tuple(system for system in others if system is not ci),
        looked_for={name: sources(name, chain) for name in wanted},
    )


def revision(env: Mapping[str, str]) -> Found:
    """The `<N>.<M>` folder name for this job, or InputError saying what was looked for."""
    result = defaults(env, ("revision",))
    if result.revision is not None:
        return result.revision
    system = detect(env)
    if system is None:
        raise InputError(f"no CI detected: looked for {detection_hint()}")
    tried = "; ".join(result.looked_for["revision"])
    raise InputError(
        f"no revision: {system.name} detected, but the variables of <N>.<M> are not all set "
        f"(looked for {tried})"
    )


# -- the checks ------------------------------------------------------------------------------------


def _check(
    name: str, value: str, source: str, names: tuple[str, ...], env: Mapping[str, str]
) -> str:
    if name == "label":
        _named(lambda: validate_label(value), source, f"invalid label {value!r}")
    elif name == "traceback_url":
        # Longest prefix first: the contract's message names the URL unless it carries a secret.
        _named(
            lambda: validate_url(value, "traceback URL"),
            source,
            f"invalid traceback URL {value!r}",
            "invalid traceback URL",
        )
    elif name == "revision":
        ci_name = source.rsplit(" (", 1)[-1].rstrip(")")
        for variable in names:
            text = env[variable]
            if not _COUNTER.fullmatch(text) or int(text) > JAVA_INT_MAX:
                raise InputError(
                    f"invalid revision part {text!r} from ${variable} ({ci_name}): the poller "
                    f"parses each part of <N>.<M> as a whole number from 0 to {JAVA_INT_MAX}"
                )
    elif name == "user" and not value.isprintable():
        raise InputError(f"invalid user from {source}: it contains control characters")
    return value


def _named(check: Callable[[], object], source: str, *prefixes: str) -> None:
    """Run the contract's `check`; its InputError is raised again naming the value's source.

    The contract's message starts with one of `prefixes` ("invalid label '4 2'"); "from
    <source>" goes right after it. A message that starts with none gets it at the end.
    """
    try:
        check()
    except InputError as error:
        message = str(error)
        for prefix in prefixes:
            if message.startswith(prefix):
                raise InputError(f"{prefix} from {source}{message[len(prefix) :]}") from None
        raise InputError(f"{message} (from {source})") from None
