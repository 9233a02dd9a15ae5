"""Where GoCD's poll of a package fails, and what it reports: `poller_view` against the port of
the plugin's Java (tests/support/poller.py) over an in-memory listing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import botocore.exceptions
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import poller as java

from gos3matic.core import poller as ours
from gos3matic.core.poller import Folder, Marker, pollable, poller_view

PACKAGE = "app/build/package/"
WHEN = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.timezone.utc)
DONE = {"completed": "completed", "go_pipeline_label": "42"}


def complete(name: str, label: str = "42") -> Folder:
    return Folder(name, Marker({**DONE, "go_pipeline_label": label}, WHEN))


def pending(name: str) -> Folder:
    return Folder(name, Marker({"go_pipeline_label": "42"}, WHEN))


class ListingOnly:
    """Just enough of a boto3 S3 client for the poller: folders and their markers, paged."""

    def __init__(self, folders: list[Folder], page: int) -> None:
        self.markers = {f"{PACKAGE}{f.name}/": f.marker for f in folders if f.marker}
        self.prefixes = sorted({f"{PACKAGE}{f.name}/" for f in folders}, key=str.encode)
        self.page = page

    def list_objects(self, Bucket: str, Prefix: str, Delimiter: str, Marker: str = "") -> Any:
        after = [p for p in self.prefixes if p.encode() > Marker.encode()]
        shown = after[: self.page]
        listing = {"CommonPrefixes": [{"Prefix": p} for p in shown]}
        listing["IsTruncated"] = len(after) > self.page
        if listing["IsTruncated"]:
            listing["NextMarker"] = shown[-1]
        return listing

    def head_object(self, Bucket: str, Key: str) -> Any:
        marker = self.markers.get(Key)
        if marker is None:
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "404"}, "ResponseMetadata": {"HTTPStatusCode": 404}},
                "HeadObject",
            )
        return {"Metadata": dict(marker.metadata), "LastModified": marker.last_modified}


def java_poll(folders: list[Folder], page: int = 1000) -> java.Polled | java.PollThrows:
    try:
        return java.poll(ListingOnly(folders, page), "bucket", PACKAGE)
    except java.PollThrows as thrown:
        return thrown


def agree(folders: list[Folder], page: int = 1000, monkeypatch: Any = None) -> ours.PollerView:
    """Our view says the poll fails exactly when the Java throws, and reports what it reports."""
    view = poller_view(PACKAGE, folders)
    theirs = java_poll(folders, page)
    if isinstance(theirs, java.PollThrows):
        assert view.poll_fails, theirs
        assert view.poll_error is not None
    else:
        assert not view.poll_fails, view.poll_error
        assert view.latest is not None and view.latest.name == theirs.revision
        assert view.heads == theirs.heads and view.lists == theirs.lists
    return view


# -- where the poll throws ------------------------------------------------------------------------


def test_a_folder_without_a_marker_makes_the_poll_throw_however_many_are_fine():
    view = agree([complete("41.1"), Folder("42.1"), complete("43.1")])
    assert view.poll_fails
    assert view.no_marker == ("42.1",)
    assert "app/build/package/42.1/" in (view.poll_error or "")
    assert view.latest is not None and view.latest.name == "43.1"  # once 42.1 has a marker


def test_a_pending_marker_is_skipped_and_the_poll_reports_the_newest_complete():
    view = agree([complete("41.1"), pending("42.1")])
    assert not view.poll_fails
    assert view.latest is not None and view.latest.name == "41.1"


def test_no_marker_lists_folders_in_the_order_the_poller_heads_them():
    view = agree([Folder("9.1"), Folder("42.1.x"), Folder("42.1"), complete("1.1")])
    assert view.no_marker == ("42.1.x", "42.1", "9.1")  # bytes of '<name>/': '.' < '/'


def test_an_unparseable_complete_folder_makes_the_poll_throw():
    view = agree([complete("41.1"), complete("latest")])
    assert view.poll_fails and view.unparseable_complete == ("latest",)
    assert "'latest'" in (view.poll_error or "")


def test_an_unparseable_folder_with_a_pending_marker_is_a_note_not_a_problem():
    view = agree([complete("41.1"), pending("latest")])
    assert not view.poll_fails and view.problems() == []
    assert view.unparseable == ("latest",) and view.unparseable_pending == ("latest",)
    assert "harmless" in view.notes()[0]


def test_no_complete_folder_makes_the_poll_throw_at_its_fallback_revision():
    view = agree([pending("41.1")])
    assert view.poll_fails
    assert "0.0.0/" in (view.poll_error or "")
    assert "nothing to trigger" in view.problems()[0]


def test_an_empty_package_fails_and_says_nothing_is_there():
    view = agree([])
    assert view.poll_fails
    assert "nothing under" in view.problems()[0]


def test_a_pending_folder_named_0_0_0_is_what_the_poll_falls_back_to():
    # Revision.base() is 0.0.0, whose marker the poller HEADs: it exists, so nothing throws.
    view = agree([pending("0.0.0"), pending("41.1")])
    assert not view.poll_fails
    assert view.latest is not None and view.latest.name == "0.0.0"


def test_the_first_failure_named_is_the_one_the_poller_meets_first():
    # On a page every HEAD comes before any parse.
    view = agree([complete("latest"), Folder("42.1")])
    causes = [f.cause for f in view.failures]
    assert causes[:2] == [ours.Cause.NO_MARKER, ours.Cause.UNPARSEABLE]
    assert "42.1/" in (view.poll_error or "")


def test_names_java_parses_that_ours_used_to_refuse():
    view = agree([complete("41.1"), complete("+42.1"), complete("42.1.")])
    assert not view.poll_fails
    assert view.latest is not None and view.latest.name == "+42.1"  # first of equals
    assert view.unusual == ("+42.1", "42.1.")


def test_three_parts_with_a_bad_patch_throws_and_four_parts_do_not():
    assert agree([complete("42.1.x")]).poll_fails
    view = agree([complete("42.1.3.x")])
    assert view.latest is not None and view.latest.name == "42.1.3.x"


# -- pages ----------------------------------------------------------------------------------------


def test_a_later_page_wins_a_tie(monkeypatch):
    monkeypatch.setattr(ours, "PAGE_SIZE", 2)
    folders = [complete("042.1", "a"), complete("1.1"), complete("42.1", "b"), complete("5.1")]
    view = agree(folders, page=2)
    assert view.latest is not None and view.latest.label == "b"
    assert view.lists == 2


def test_a_later_page_with_nothing_complete_can_lose_a_tie_to_the_fallback(monkeypatch):
    # 0.0 ties with Revision.base() on page two: the base wins, its marker is missing, it throws.
    monkeypatch.setattr(ours, "PAGE_SIZE", 1)
    assert agree([complete("0.0"), pending("1.1")], page=1).poll_fails


def test_each_poll_costs_one_head_per_folder_in_sequence_and_warns_above_a_thousand():
    few = poller_view(PACKAGE, [complete(f"{n}.1") for n in range(1, 1001)])
    assert few.heads == 1001 and few.lists == 1
    assert not any("HEADs" in w for w in few.warnings())
    many = poller_view(PACKAGE, [complete(f"{n}.1") for n in range(1, 1002)])
    assert many.heads == 1002 and many.lists == 2
    assert any("1,002 HEADs one after the other" in w for w in many.warnings())


# -- repair's rule --------------------------------------------------------------------------------


def test_after_repair_a_package_with_a_complete_revision_polls():
    folders = [complete("41.1"), Folder("42.1"), complete("latest"), Folder("junk")]
    repaired = [pollable(f) for f in folders]
    view = agree(repaired)
    assert not view.poll_fails
    assert view.latest is not None and view.latest.name == "41.1"
    latest = next(f for f in repaired if f.name == "latest")
    assert latest.marker is not None and latest.marker.metadata == {"go_pipeline_label": "42"}
    assert repaired[0] is folders[0]  # complete, parseable: untouched


def test_repair_cannot_make_a_package_without_a_complete_revision_poll():
    assert agree([pollable(Folder("42.1"))]).poll_fails


# -- against the port, at random ------------------------------------------------------------------

NAMES = st.sampled_from(
    ["1.1", "2.1", "0.0", "0.0.0", "042.1", "42.1", "42.1.", "+42.1", "42.1.3", "42.1.x", "latest"]
)
STATES = st.sampled_from(["none", "pending", "complete"])


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(NAMES, STATES, max_size=8), st.integers(min_value=1, max_value=4))
def test_the_view_agrees_with_the_port_of_the_java_poller(states, page):
    folders = [
        Folder(name)
        if state == "none"
        else (pending(name) if state == "pending" else complete(name, label=name))
        for name, state in states.items()
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ours, "PAGE_SIZE", page)
        agree(folders, page=page)
