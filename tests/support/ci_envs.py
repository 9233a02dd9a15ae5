"""Each CI's documented environment for one build, as its variable reference gives it."""

from __future__ import annotations

GOCD_ENV = {
    "GO_SERVER_URL": "https://gocd.example.com/go",
    "GO_SERVER_DASHBOARD_URL": "https://gocd.example.com",
    "GO_PIPELINE_NAME": "myapp",
    "GO_PIPELINE_COUNTER": "77",
    "GO_PIPELINE_LABEL": "1.4.77",
    "GO_STAGE_NAME": "build",
    "GO_STAGE_COUNTER": "2",
    "GO_JOB_NAME": "package",
    "GO_TRIGGER_USER": "changes",
}
JENKINS_ENV = {
    "JENKINS_URL": "https://jenkins.example.com/",
    "BUILD_NUMBER": "153",
    "BUILD_URL": "https://jenkins.example.com/job/myapp/153/",
    "BUILD_USER_ID": "jo",
}
GITHUB_ENV = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_RUN_NUMBER": "42",
    "GITHUB_RUN_ATTEMPT": "3",
    "GITHUB_RUN_ID": "1658821493",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "octocat/Hello-World",
    "GITHUB_ACTOR": "octocat",
    "GITHUB_TRIGGERING_ACTOR": "mona",
}
GITLAB_ENV = {
    "GITLAB_CI": "true",
    "CI_PIPELINE_IID": "10",
    "CI_PIPELINE_ID": "1000",
    "CI_PIPELINE_URL": "https://gitlab.example.com/group/myapp/-/pipelines/1000",
    "GITLAB_USER_EMAIL": "jo@example.com",
    "GITLAB_USER_LOGIN": "jo",
}
DRONE_ENV = {
    "DRONE": "true",
    "DRONE_BUILD_NUMBER": "42",
    "DRONE_BUILD_LINK": "https://drone.example.com/octocat/hello-world/42",
    "DRONE_COMMIT_AUTHOR": "octocat",
}
CIRCLECI_ENV = {
    "CIRCLECI": "true",
    "CIRCLE_BUILD_NUM": "318",
    "CIRCLE_BUILD_URL": "https://circleci.com/gh/octocat/hello-world/318",
    "CIRCLE_USERNAME": "octocat",
}
BUILDKITE_ENV = {
    "BUILDKITE": "true",
    "BUILDKITE_BUILD_NUMBER": "1514",
    "BUILDKITE_BUILD_URL": "https://buildkite.com/acme-inc/my-project/builds/1514",
    "BUILDKITE_BUILD_CREATOR": "Carol Danvers",
    "BUILDKITE_BUILD_CREATOR_EMAIL": "cdanvers@kree-net.com",
}
AZURE_ENV = {
    "TF_BUILD": "True",
    "BUILD_BUILDNUMBER": "20240131.2",
    "BUILD_BUILDID": "512",
    "BUILD_REQUESTEDFOR": "Jo Example",
    "BUILD_REQUESTEDFOREMAIL": "jo@example.com",
    "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI": "https://dev.azure.com/fabrikam/",
    "SYSTEM_TEAMPROJECT": "Fabrikam Fiber",
}

ALL = {
    "gocd": GOCD_ENV,
    "jenkins": JENKINS_ENV,
    "github-actions": GITHUB_ENV,
    "gitlab-ci": GITLAB_ENV,
    "drone": DRONE_ENV,
    "circleci": CIRCLECI_ENV,
    "buildkite": BUILDKITE_ENV,
    "azure-pipelines": AZURE_ENV,
}
