"""What GoCD's poller makes of a package, backfill labels and shards: pure rules, no network."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

from gos3matic.core.backfill import (
    LabelSource,
    backfill_label,
    parse_label_map,
    revision_environment,
)
from gos3matic.core.contract import parse_revision
from gos3matic.core.poller import (
    Folder,
    Marker,
    folder_name,
    normalize_package,
    path_warning,
    poller_view,
)
from gos3matic.core.shards import parse_shard, shard_from_env, shard_of
from gos3matic.errors import InputError

PACKAGE = "app/build/package/"
WHEN = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.timezone.utc)
DONE = {
    "completed": "completed",
    "go_pipeline_label": "42",
    "user": "jo@example.com",
    "traceback_url": "https://gocd.example.com/go/tab/build/detail/app/42/build/1/package",
}


def complete(name: str, label: str = "42") -> Folder:
    return Folder(name, Marker({**DONE, "go_pipeline_label": label}, WHEN))


# -- what the poller reports ----------------------------------------------------------------------


def test_the_latest_complete_revision_is_the_numeric_maximum_not_the_last_listed():
    # S3 lists in byte order: 9.1 comes after 10.1, and 42.10 after 42.9
    folders = [complete("10.1"), complete("42.10", "b"), complete("42.9", "a"), complete("9.1")]
    view = poller_view(PACKAGE, folders)
    assert view.latest is not None
    assert view.latest.name == "42.10"
    assert view.latest.label == "b"


def test_the_poller_reports_the_markers_label_user_traceback_url_and_last_modified():
    view = poller_view(PACKAGE, [complete("42.1")])
    assert view.latest is not None
    assert (view.latest.label, view.latest.user, view.latest.traceback_url) == (
        "42",
        "jo@example.com",
        DONE["traceback_url"],
    )
    assert view.latest.timestamp == WHEN


def test_a_newer_incomplete_revision_is_not_reported_but_listed_with_its_reason():
    folders = [
        complete("41.1"),
        Folder("42.1", None),
        Folder("43.1", Marker({"go_pipeline_label": "43"})),
    ]
    view = poller_view(PACKAGE, folders)
    assert view.latest is not None and view.latest.name == "41.1"
    assert [(f.name, f.why_incomplete) for f in view.incomplete] == [
        ("42.1", "no marker"),
        ("43.1", "marker without 'completed'"),
    ]
    assert view.no_marker == ("42.1",)  # the poller's HEAD of 42.1/ answers 404 and it throws
    assert view.poll_fails


def test_completed_is_a_key_the_poller_only_checks_for_presence():
    view = poller_view(PACKAGE, [Folder("42.1", Marker({"completed": ""}))])
    assert view.latest is not None and view.latest.name == "42.1"


def test_a_marker_without_label_shows_as_unavailable():
    view = poller_view(PACKAGE, [Folder("42.1", Marker({"completed": "completed"}))])
    assert view.latest is not None
    assert view.latest.label is None and view.latest.user is None


@pytest.mark.parametrize("name", ["latest", "v2", "2024-01-01", "42", "4 2.1", "2147483648.1"])
def test_a_complete_folder_the_poller_cannot_parse_makes_the_package_unhealthy(name):
    view = poller_view(PACKAGE, [complete("42.1"), complete(name)])
    assert view.unparseable == (name,)
    assert not view.healthy
    assert "every poll of this package fails" in view.problems()[0]
    assert view.latest is not None and view.latest.name == "42.1"  # what it would be, fixed


def test_an_unparseable_folder_without_a_marker_breaks_the_poll_by_its_missing_marker():
    # The poller HEADs every folder before it parses the complete ones: the 404 comes first.
    view = poller_view(PACKAGE, [complete("42.1"), Folder("latest", None)])
    assert not view.healthy
    assert view.no_marker == ("latest",)


def test_a_counter_beyond_javas_int_cannot_be_parsed_by_the_poller():
    assert parse_revision("2147483647.1") == (2147483647, 1, 0)
    assert parse_revision("2147483648.1") is None
    assert parse_revision("20240101120000.1") is None


def test_no_complete_revision_means_gocd_has_nothing_to_trigger():
    view = poller_view(PACKAGE, [Folder("42.1", Marker({}))])
    assert view.latest is None
    assert not view.healthy
    assert "nothing to trigger" in view.problems()[0]


def test_an_empty_package_is_unhealthy():
    assert not poller_view(PACKAGE, []).healthy


def test_a_three_part_name_is_accepted_by_the_poller_with_a_warning_about_fetch():
    view = poller_view(PACKAGE, [complete("42.1"), complete("42.1.3")])
    assert view.latest is not None and view.latest.name == "42.1.3"
    assert view.three_part == ("42.1.3",)
    assert view.healthy
    assert "fetch task" in view.warnings()[0]
    assert "latest" in view.warnings()[0]


def test_names_that_compare_equal_are_reported_as_the_first_listed_and_warned_about():
    view = poller_view(PACKAGE, [complete("042.1", "a"), complete("42.1", "b")])
    assert view.latest is not None and view.latest.name == "042.1"
    assert view.same_version == (("042.1", "42.1"),)
    assert any("one and the same revision" in w for w in view.warnings())


def test_incomplete_revisions_come_in_ascending_revision_order():
    folders = [Folder("10.1"), Folder("9.2"), Folder("9.10"), complete("1.1")]
    view = poller_view(PACKAGE, folders)
    assert [f.name for f in view.incomplete] == ["9.2", "9.10", "10.1"]


def test_folder_name_is_the_last_segment_of_the_common_prefix():
    assert folder_name("app/build/package/42.1/", PACKAGE) == "42.1"


@pytest.mark.parametrize("path", ["app/build/package", "/app/build/package/"])
def test_a_package_is_pipeline_stage_job(path):
    assert normalize_package(path) == PACKAGE


@pytest.mark.parametrize("path", ["app/build", "app/build/package/42.1", "app//package", ""])
def test_anything_but_three_segments_is_not_a_package(path):
    with pytest.raises(InputError):
        normalize_package(path)


# -- annotate's path warning ----------------------------------------------------------------------


def test_annotating_a_folder_the_poller_cannot_parse_is_a_loud_warning():
    warning = path_warning("app/build/package/latest/")
    assert warning is not None
    message, breaks_polling = warning
    assert breaks_polling
    assert "app/build/package/" in message


def test_a_three_part_revision_path_is_a_quiet_warning():
    warning = path_warning("app/build/package/42.1.3/")
    assert warning is not None and not warning[1]


def test_a_path_outside_the_layout_is_a_quiet_warning():
    warning = path_warning("releases/2024/")
    assert warning is not None and not warning[1]


def test_a_revision_path_has_no_warning():
    assert path_warning("app/build/package/42.1/") is None


# -- backfill labels ------------------------------------------------------------------------------


def test_a_revision_is_labelled_with_its_pipeline_counter():
    assert backfill_label("42.1", {}) == ("42", LabelSource.COUNTER)
    assert backfill_label("042.3", {}) == ("42", LabelSource.COUNTER)


def test_the_label_map_wins_over_the_counter():
    assert backfill_label("42.1", {"42.1": "2.1.3.42"}) == ("2.1.3.42", LabelSource.LABEL_MAP)


def test_a_label_map_allows_comments_blank_lines_and_spaces():
    text = "# release labels\n\n42.1=2.1.3.42\n  43.1 = 2.1.4.43  \n"
    assert parse_label_map(text, "labels.txt") == {"42.1": "2.1.3.42", "43.1": "2.1.4.43"}


def test_every_bad_line_of_a_label_map_is_reported_with_its_number():
    text = "42.1=2.1.3.42\nno equals sign\n43=x\n42.1=again\n44.1=with space\n45.1=\n"
    with pytest.raises(InputError) as refused:
        parse_label_map(text, "labels.txt")
    message = str(refused.value)
    for number in (2, 3, 4, 5, 6):
        assert f"labels.txt:{number}:" in message
    assert "labels.txt:1:" not in message


def test_the_upstream_environment_of_a_revision_builds_its_traceback_url():
    env = {"GO_SERVER_DASHBOARD_URL": "https://go.example.com", "GO_PIPELINE_NAME": "other"}
    upstream = revision_environment(env, PACKAGE, "42.3", "2.1.3.42")
    assert upstream["GO_PIPELINE_NAME"] == "app"
    assert upstream["GO_PIPELINE_COUNTER"] == "42"
    assert upstream["GO_STAGE_NAME"] == "build"
    assert upstream["GO_STAGE_COUNTER"] == "3"
    assert upstream["GO_JOB_NAME"] == "package"
    assert upstream["GO_PIPELINE_LABEL"] == "2.1.3.42"
    assert upstream["GO_SERVER_DASHBOARD_URL"] == "https://go.example.com"


# -- shards ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "shard"), [("1/1", (1, 1)), ("2/4", (2, 4)), (" 4 / 4 ", (4, 4))])
def test_a_shard_is_k_of_n(spec, shard):
    assert parse_shard(spec) == shard


@pytest.mark.parametrize("spec", ["0/4", "5/4", "1/0", "0/0", "-1/4", "1", "a/b", "1/2/3", ""])
def test_a_shard_outside_one_to_n_is_refused(spec):
    with pytest.raises(InputError):
        parse_shard(spec)


def test_gocd_run_instances_are_shards_when_both_variables_are_set():
    assert shard_from_env({"GO_JOB_RUN_INDEX": "2", "GO_JOB_RUN_COUNT": "3"}) == (2, 3)
    assert shard_from_env({"GO_JOB_RUN_INDEX": "2"}) is None
    assert shard_from_env({"GO_JOB_RUN_COUNT": "3"}) is None
    assert shard_from_env({}) is None
    with pytest.raises(InputError, match="GO_JOB_RUN_INDEX"):
        shard_from_env({"GO_JOB_RUN_INDEX": "4", "GO_JOB_RUN_COUNT": "3"})


def test_every_key_belongs_to_exactly_one_shard_and_they_share_the_work():
    keys = [f"app/build/package/42.1/dist/file-{index:05}.bin" for index in range(4000)]
    counts = [0] * 8
    for key in keys:
        owner = shard_of(key, 8)
        assert 1 <= owner <= 8
        counts[owner - 1] += 1
    assert sum(counts) == len(keys)
    assert min(counts) > len(keys) / 8 * 0.8  # no shard is starved


def test_the_shard_of_a_key_is_the_same_in_another_process():
    # Python's hash() of a str changes with PYTHONHASHSEED; the shard must not.
    keys = ["app/build/package/42.1/a.bin", "app/build/package/42.1/ü/b.txt", "x"]
    here = [shard_of(key, 7) for key in keys]
    code = (
        "import sys; from gos3matic.core.shards import shard_of; "
        f"print([shard_of(k, 7) for k in {keys!r}])"
    )
    for seed in ("1", "2"):
        there = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout
        assert there.strip() == str(here)


def test_the_shard_is_sha1_of_the_utf8_key_mod_n_plus_one():
    # Documented, so another tool can reproduce the split.
    import hashlib

    key = "app/build/package/42.1/ü.bin"
    expected = int(hashlib.sha1(key.encode("utf-8")).hexdigest(), 16) % 5 + 1
    assert shard_of(key, 5) == expected
