"""The GoCD side, as the s3material poller and the upstream publisher see it."""

import argparse

import pytest

from gos3matic.commands.options import resolve_target, validate_bucket
from gos3matic.core.contract import (
    Annotation,
    is_revision_name,
    looks_like_revision_path,
    normalize_prefix,
    parse_custom_key,
    parse_revision,
    traceback_url_from_env,
    validate_label,
)
from gos3matic.errors import InputError

GO_ENV = {
    "GO_SERVER_DASHBOARD_URL": "https://gocd.example.com/",
    "GO_PIPELINE_NAME": "app",
    "GO_PIPELINE_COUNTER": "42",
    "GO_STAGE_NAME": "build",
    "GO_STAGE_COUNTER": "1",
    "GO_JOB_NAME": "package",
}


def test_traceback_url_is_built_exactly_as_the_publisher_builds_it():
    assert (
        traceback_url_from_env(GO_ENV)
        == "https://gocd.example.com/go/tab/build/detail/app/42/build/1/package"
    )


@pytest.mark.parametrize("missing", sorted(GO_ENV))
def test_no_traceback_url_unless_every_variable_is_set(missing):
    env = {k: v for k, v in GO_ENV.items() if k != missing}
    assert traceback_url_from_env(env) is None


def test_the_marker_carries_the_annotation_and_completed():
    annotation = Annotation("42", "jo@example.com", "https://x/y", (("team", "core"),))
    assert annotation.items() == {
        "go_pipeline_label": "42",
        "user": "jo@example.com",
        "traceback_url": "https://x/y",
        "team": "core",
    }
    assert annotation.marker_items()["completed"] == "completed"
    assert "completed" not in annotation.items()


def test_unset_user_and_url_are_left_out_rather_than_written_empty():
    assert Annotation("42").items() == {"go_pipeline_label": "42"}


@pytest.mark.parametrize("label", ["42", "1.2.3", "2024_01-rc.1", "a" * 255])
def test_labels_gocd_templates_produce_are_accepted(label):
    assert validate_label(label) == label


@pytest.mark.parametrize("label", ["", "a" * 256, "4 2", "42/1", "é", "x\n", "$(rm)"])
def test_labels_outside_the_alphabet_are_refused(label):
    with pytest.raises(InputError, match="invalid label"):
        validate_label(label)


def test_a_bare_key_means_name_equals_name():
    assert parse_custom_key("blessed") == ("blessed", "blessed")
    assert parse_custom_key("team=core=x") == ("team", "core=x")
    assert parse_custom_key("empty=") == ("empty", "")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("=v", "empty"),
        ("Team=x", "lowercases"),
        ("te am=x", "lowercase letters"),
        ("tëam=x", "lowercase letters"),
        ("completed", "GoCD's own"),
        ("user=bob", "GoCD's own"),
        ("go_pipeline_label=1", "GoCD's own"),
    ],
)
def test_bad_custom_key_names_are_refused(spec, message):
    with pytest.raises(InputError, match=message):
        parse_custom_key(spec)


@pytest.mark.parametrize(
    ("path", "prefix"),
    [
        ("a/b/c/42.1", "a/b/c/42.1/"),
        ("/a/b/c/42.1/", "a/b/c/42.1/"),
        ("a/b/c/42.1///", "a/b/c/42.1/"),
    ],
)
def test_path_gets_exactly_one_trailing_slash_and_no_leading_one(path, prefix):
    assert normalize_prefix(path) == prefix


@pytest.mark.parametrize("path", ["", "/", "//", "a//b", "a/../b", "s3://bkt/a", "a/\x00b"])
def test_paths_that_cannot_be_a_revision_are_refused(path):
    with pytest.raises(InputError):
        normalize_prefix(path)


def test_revision_names_parse_as_the_poller_parses_them():
    assert parse_revision("42.1") == (42, 1, 0)
    assert parse_revision("42.1.3") == (42, 1, 3)
    for name in ("latest", "v1", "2024-01-01", "42", "42.x", "42.1.3.4"):
        assert parse_revision(name) is None


def test_only_pipeline_stage_job_counter_paths_look_like_revisions():
    assert looks_like_revision_path("app/build/package/42.1/")
    assert looks_like_revision_path("deep/app/build/package/42.1/")
    assert not looks_like_revision_path("app/build/42.1/")
    assert not looks_like_revision_path("app/build/package/latest/")
    assert not looks_like_revision_path("app/build/package/42.1.3/")


def test_a_key_given_twice_is_refused_rather_than_the_last_kept():
    import argparse

    from gos3matic.commands.options import annotation_from

    args = argparse.Namespace(
        label="1", username=None, traceback_url=None, key=["team=a", "team=b"]
    )
    with pytest.raises(InputError, match="--key team given more than once"):
        annotation_from(args, {})


@pytest.mark.parametrize(
    "name", ["ab", "a", "-bucket", "bucket-", ".bucket", "has space", "x" * 256]
)
def test_a_bucket_name_no_s3_accepts_is_bad_input(name):
    with pytest.raises(InputError, match="invalid bucket name"):
        validate_bucket(name)


@pytest.mark.parametrize("name", ["abc", "my-bucket.example", "Legacy_Bucket", "x" * 255])
def test_a_bucket_name_some_s3_accepts_is_taken(name):
    assert validate_bucket(name) == name


@pytest.mark.parametrize(
    "url", ["s3://art/app/build/package/42.1/", "S3://art/app/build/package/42.1/"]
)
def test_an_s3_url_is_split_whatever_the_case_of_its_scheme(url):
    args = argparse.Namespace(bucket=url, path=None)
    resolve_target(args)
    assert (args.bucket, args.path) == ("art", "app/build/package/42.1/")


@pytest.mark.parametrize(
    ("path", "one_revision"),
    [
        ("app/build/package/42.1/", True),
        ("deep/app/build/package/42.1/", True),
        ("app/build/package/42.1.3/", False),  # the fetch task never finds a three-part name
        ("app/build/package/2147483648.1/", False),  # the poller's Integer.valueOf throws
        ("app/build/package/latest/", False),
        ("build/package/42.1/", False),  # no pipeline above it
        ("app/build/package/", False),
    ],
)
def test_a_path_is_one_revision_when_its_folder_is_an_n_dot_m_the_poller_parses(path, one_revision):
    assert looks_like_revision_path(path) is one_revision


def test_the_gocd_ci_template_is_the_publisher_s_url_itself():
    from gos3matic.core import ci

    assert ci.GOCD.traceback_url.read(GO_ENV) is not None
    assert ci.GOCD.traceback_url.read(GO_ENV)[0] == traceback_url_from_env(GO_ENV)
    assert ci.GOCD.traceback_url.describe() == (
        "$GO_SERVER_DASHBOARD_URL/go/tab/build/detail/$GO_PIPELINE_NAME/$GO_PIPELINE_COUNTER/"
        "$GO_STAGE_NAME/$GO_STAGE_COUNTER/$GO_JOB_NAME"
    )


@pytest.mark.parametrize(
    "name, expected",
    [
        ("42.1", True),
        ("0.0", True),
        ("2147483647.1", True),
        ("2147483648.1", False),  # Integer.valueOf throws
        ("latest", False),
        ("42", False),
        ("42.1.3", False),  # the fetch task splits into two counters only
        ("42.1.", False),
        ("v42.1", False),
        ("", False),
    ],
)
def test_is_revision_name_is_two_java_ints(name, expected):
    assert is_revision_name(name) is expected
