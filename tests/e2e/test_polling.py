"""GoCD keeps polling: no command leaves a folder in a state that breaks the package.

Every check polls the package with tests/support/poller.py, a port of the plugin's Java through
the test's own client, and asks `status` the same question: they must agree. On SeaweedFS no
folder is ever complete (it drops metadata on keys ending in '/', and answers a HEAD of any
folder with an empty 200), so the poll there always ends at the fallback 0.0.0; what must hold
there too is that it never throws at a folder's marker or at a parse.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.faultproxy import Fault, FaultProxy, Request, Rule, only
from support.poller import Polled, PollThrows
from support.poller import poll_result as poll
from support.readback import snapshot

from gos3matic.core.shards import shard_of

PACKAGE = "app/build/package/"
LABEL = ["--label", "42", "--username", "jo@example.com", "--no-progress"]
ANNOTATION = {"go_pipeline_label": "42", "user": "jo@example.com"}
DONE = {"completed": "completed", "go_pipeline_label": "40", "user": "first@example.com"}


def upload(s3: Any, bucket: str, revision: str, count: int = 3) -> list[str]:
    keys = [f"{PACKAGE}{revision}/dist/file-{index}.bin" for index in range(count)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"payload")
    return keys


def publish(s3: Any, bucket: str, revision: str) -> None:
    """A revision as GoCD's own publisher leaves it: files, then the complete marker."""
    upload(s3, bucket, revision)
    s3.put_object(Bucket=bucket, Key=f"{PACKAGE}{revision}/", Body=b"", Metadata=DONE)


def head(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        return dict(s3.head_object(Bucket=bucket, Key=key))
    except s3.exceptions.ClientError:
        return None


def metadata(s3: Any, bucket: str, revision: str) -> dict[str, str] | None:
    found = head(s3, bucket, f"{PACKAGE}{revision}/")
    return None if found is None else dict(found["Metadata"])


def through(proxy: FaultProxy) -> list[str]:
    return ["--endpoint-url", proxy.url]


def keeps_polling(server: Any, s3: Any, bucket: str, reports: str | None) -> None:
    """GoCD's poll does not throw at a folder: on moto it reports REPORTS; on SeaweedFS, which
    keeps no `completed`, it can only end at the fallback 0.0.0."""
    result = poll(s3, bucket, PACKAGE)
    if server.kind == "seaweedfs":
        assert isinstance(result, PollThrows), result
        assert (result.where, result.key) == ("latest", f"{PACKAGE}0.0.0/"), result
    elif reports is None:
        assert isinstance(result, PollThrows) and result.where == "latest", result
    else:
        assert isinstance(result, Polled), result
        assert result.revision == reports


def status_agrees(run_cli: Any, server: Any, s3: Any, bucket: str) -> dict[str, Any]:
    """`status` says the poll fails exactly when the port throws, and what it reports if not."""
    result = poll(s3, bucket, PACKAGE)
    answer = run_cli(server, "status", bucket, PACKAGE, "--json")
    report = json.loads(answer.stdout)
    assert report["poll_fails"] is isinstance(result, PollThrows), (result, report)
    assert answer.returncode == (1 if report["poll_fails"] else 0), answer.stderr
    if isinstance(result, Polled):
        assert report["revision"] == result.revision
        assert report["poll_cost"] == {"heads": result.heads, "lists": result.lists}
    elif result.where == "head":
        assert result.key in report["poll_error"]
        assert result.key[len(PACKAGE) :].rstrip("/") in report["no_marker"]
    return report


# -- the poller's failure, shown once ------------------------------------------------------------


def test_an_upload_without_begin_breaks_the_poll_and_status_says_so(
    run_cli, moto_s3, moto_client, moto_bucket
):
    s3, bucket = moto_client, moto_bucket
    publish(s3, bucket, "41.1")
    upload(s3, bucket, "42.1")

    result = poll(s3, bucket, PACKAGE)

    assert isinstance(result, PollThrows) and result.key == f"{PACKAGE}42.1/"
    report = status_agrees(run_cli, moto_s3, s3, bucket)
    assert report["no_marker"] == ["42.1"]


# -- 1. begin -> upload -> annotate ---------------------------------------------------------------


def test_begin_upload_annotate_keeps_the_package_polling_throughout(run_cli, s3server, s3, bucket):
    publish(s3, bucket, "41.1")
    keeps_polling(s3server, s3, bucket, "41.1")

    begun = run_cli(s3server, "begin", bucket, f"{PACKAGE}42.1", *LABEL, "--json")

    # SeaweedFS drops the marker's metadata (exit 4) but the object is there: still pollable.
    assert begun.returncode == (4 if s3server.kind == "seaweedfs" else 0), begun.stderr
    assert json.loads(begun.stdout)["pollable"] is True
    keeps_polling(s3server, s3, bucket, "41.1")
    status_agrees(run_cli, s3server, s3, bucket)

    upload(s3, bucket, "42.1", count=1)  # the upload, under way
    keeps_polling(s3server, s3, bucket, "41.1")
    upload(s3, bucket, "42.1", count=3)
    status_agrees(run_cli, s3server, s3, bucket)

    annotated = run_cli(s3server, "annotate", bucket, f"{PACKAGE}42.1", *LABEL, "--json")

    assert annotated.returncode == (4 if s3server.kind == "seaweedfs" else 0), annotated.stderr
    keeps_polling(s3server, s3, bucket, "42.1")
    status_agrees(run_cli, s3server, s3, bucket)


def test_begin_writes_the_annotation_without_completed_and_annotate_completes_it(
    run_cli, moto_s3, moto_client, moto_bucket
):
    s3, bucket = moto_client, moto_bucket

    begun = run_cli(moto_s3, "begin", bucket, f"{PACKAGE}42.1", *LABEL, "--json")

    assert begun.returncode == 0, begun.stderr
    report = json.loads(begun.stdout)
    assert report["marker_state"] == "written" and report["marker_written"] is True
    assert report["marker_metadata"] == ANNOTATION
    marker = head(s3, bucket, f"{PACKAGE}42.1/")
    assert marker is not None and marker["ContentLength"] == 0
    assert marker["Metadata"] == ANNOTATION  # no `completed`: the poller skips it

    upload(s3, bucket, "42.1")
    annotated = run_cli(moto_s3, "annotate", bucket, f"{PACKAGE}42.1", *LABEL, "--json")

    assert annotated.returncode == 0, annotated.stderr
    assert json.loads(annotated.stdout)["marker_state"] == "written"  # not "already-present"
    assert metadata(s3, bucket, "42.1") == {**ANNOTATION, "completed": "completed"}


def test_begin_never_takes_completed_away(run_cli, moto_s3, moto_client, moto_bucket):
    publish(moto_client, moto_bucket, "42.1")
    before = snapshot(moto_client, moto_bucket)

    begun = run_cli(moto_s3, "begin", moto_bucket, f"{PACKAGE}42.1", *LABEL, "--json")

    assert begun.returncode == 0, begun.stderr
    assert json.loads(begun.stdout)["marker_state"] == "already-complete"
    assert "already complete, nothing changed" in begun.stderr
    assert snapshot(moto_client, moto_bucket) == before


def test_begin_leaves_a_pending_marker_as_it_is(run_cli, s3server, s3, bucket):
    upload(s3, bucket, "42.1")
    s3.put_object(Bucket=bucket, Key=f"{PACKAGE}42.1/", Body=b"", Metadata={"note": "mine"})
    before = snapshot(s3, bucket)

    begun = run_cli(s3server, "begin", bucket, f"{PACKAGE}42.1", *LABEL, "--json")

    assert begun.returncode == 0, begun.stderr
    assert json.loads(begun.stdout)["marker_state"] == "already-pending"
    assert snapshot(s3, bucket) == before


def test_begin_cannot_overwrite_a_complete_marker_written_meanwhile(run_cli, s3server, s3, bucket):
    key = f"{PACKAGE}42.1/"

    def publisher_wins(request: Request) -> None:  # lands between begin's HEAD and its PUT
        s3.put_object(Bucket=bucket, Key=key, Body=b"", Metadata=DONE)

    rules = [Rule(Fault.CALL, operations=only("PutObject"), key=key, action=publisher_wins)]
    with FaultProxy(s3server.endpoint_url, rules).running() as proxy:
        begun = run_cli(s3server, "begin", bucket, key, *LABEL, "--json", *through(proxy))

    assert begun.returncode == 0, begun.stderr
    report = json.loads(begun.stdout)
    if s3server.kind == "moto":
        assert report["marker_state"] == "already-complete"
        assert metadata(s3, bucket, "42.1") == DONE  # If-None-Match: S3 answered 412
    else:
        assert report["marker_state"] == "already-pending"  # a folder there, with no metadata


def test_begin_dry_run_writes_nothing(run_cli, s3server, s3, bucket):
    before = snapshot(s3, bucket)

    begun = run_cli(s3server, "begin", bucket, f"{PACKAGE}42.1", *LABEL, "--dry-run", "--json")

    assert begun.returncode == 0, begun.stderr
    assert json.loads(begun.stdout)["marker_state"] == "would-write"
    assert f"would write pending marker s3://{bucket}/{PACKAGE}42.1/" in begun.stderr
    assert snapshot(s3, bucket) == before


def test_begin_takes_annotates_options_and_refuses_bad_input(run_cli, moto_s3, moto_bucket):
    refused = run_cli(moto_s3, "begin", moto_bucket, f"{PACKAGE}42.1", "--label", "bad label")
    assert refused.returncode == 2 and refused.stderr.startswith("gos3matic: error:")
    no_label = run_cli(moto_s3, "begin", moto_bucket, f"{PACKAGE}42.1")
    assert no_label.returncode == 2
    from_gocd = run_cli(
        moto_s3, "begin", moto_bucket, f"{PACKAGE}42.1", "-q",
        env={"GO_PIPELINE_LABEL": "42", "GO_TRIGGER_USER": "jo@example.com"},
    )  # fmt: skip
    assert from_gocd.returncode == 0, from_gocd.stderr
    assert "workers" not in from_gocd.stdout


# -- 2. annotate ----------------------------------------------------------------------------------


def test_a_failed_annotate_leaves_the_folder_pending_and_the_package_polling(
    run_cli, s3server, s3, bucket
):
    publish(s3, bucket, "41.1")
    keys = upload(s3, bucket, "42.1", count=4)  # uploaded without `begin`
    polls: list[Any] = []

    def poll_mid_run(request: Request) -> None:
        polls.append(poll(s3, bucket, PACKAGE))

    rules = [
        Rule(Fault.CALL, operations=only("CopyObject"), limit=1, action=poll_mid_run),
        Rule(Fault.ACCESS_DENIED, operations=only("CopyObject"), key=keys[2]),
    ]
    with FaultProxy(s3server.endpoint_url, rules).running() as proxy:
        result = run_cli(
            s3server, "annotate", bucket, f"{PACKAGE}42.1", *LABEL, "--json", *through(proxy)
        )

    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["failed"] == 1 and report["marker_written"] is False
    assert len(polls) == 1 and not (
        isinstance(polls[0], PollThrows) and polls[0].where in ("head", "parse")
    )
    marker = metadata(s3, bucket, "42.1")
    assert marker is not None and "completed" not in marker  # pending: the poller skips it
    if s3server.kind == "moto":
        assert report["pending_marker"] == "written"
        assert marker == ANNOTATION
    keeps_polling(s3server, s3, bucket, "41.1")
    status_agrees(run_cli, s3server, s3, bucket)


def test_annotate_dry_run_and_no_marker_write_no_pending_marker(
    run_cli, moto_s3, moto_client, moto_bucket
):
    upload(moto_client, moto_bucket, "42.1")
    before = snapshot(moto_client, moto_bucket)

    dry = run_cli(moto_s3, "annotate", moto_bucket, f"{PACKAGE}42.1", *LABEL, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert snapshot(moto_client, moto_bucket) == before

    bare = run_cli(moto_s3, "annotate", moto_bucket, f"{PACKAGE}42.1", *LABEL, "--no-marker")
    assert bare.returncode == 0, bare.stderr
    assert metadata(moto_client, moto_bucket, "42.1") is None


def test_annotate_on_an_empty_path_leaves_no_folder_behind(
    run_cli, moto_s3, moto_client, moto_bucket
):
    result = run_cli(moto_s3, "annotate", moto_bucket, f"{PACKAGE}42.1", *LABEL, "--json")

    assert result.returncode == 1
    assert json.loads(result.stdout)["pending_marker"] is None
    assert snapshot(moto_client, moto_bucket) == {}


def test_a_shard_writes_the_pending_marker_but_never_over_a_complete_one(
    run_cli, moto_s3, moto_client, moto_bucket
):
    s3, bucket = moto_client, moto_bucket
    upload(s3, bucket, "42.1", count=6)

    shard = run_cli(moto_s3, "annotate", bucket, f"{PACKAGE}42.1", *LABEL, "--shard", "1/2")

    assert shard.returncode == 0, shard.stderr
    assert metadata(s3, bucket, "42.1") == ANNOTATION

    publish(s3, bucket, "43.1")
    before = head(s3, bucket, f"{PACKAGE}43.1/")
    again = run_cli(moto_s3, "annotate", bucket, f"{PACKAGE}43.1", *LABEL, "--shard", "2/2")

    assert again.returncode == 0, again.stderr
    after = head(s3, bucket, f"{PACKAGE}43.1/")
    assert before is not None and after is not None
    assert (after["LastModified"], after["Metadata"]) == (before["LastModified"], DONE)


# -- 3. backfill ----------------------------------------------------------------------------------


def seed_history(s3: Any, bucket: str) -> str:
    """40.1 published; 41.1, 42.1 and 43.1 uploaded without markers; a stray `latest/`.
    Returns a key of 42.1 for a test to refuse."""
    publish(s3, bucket, "40.1")
    upload(s3, bucket, "41.1")
    refused = upload(s3, bucket, "42.1")[1]
    upload(s3, bucket, "43.1")
    s3.put_object(Bucket=bucket, Key=f"{PACKAGE}latest/app.tar.gz", Body=b"x")
    return refused


def test_a_backfill_that_stops_leaves_every_folder_pollable(run_cli, s3server, s3, bucket):
    refused = seed_history(s3, bucket)
    rules = [Rule(Fault.ACCESS_DENIED, operations=only("CopyObject"), key=refused)]

    with FaultProxy(s3server.endpoint_url, rules).running() as proxy:
        result = run_cli(
            s3server, "backfill", bucket, PACKAGE, "--no-progress", "--json", *through(proxy)
        )

    report = json.loads(result.stdout)
    results = [(r["revision"], r["result"]) for r in report["revisions"]]
    if s3server.kind == "moto":
        assert result.returncode == 1, result.stderr
        assert results == [("41.1", "completed"), ("42.1", "failed"), ("43.1", "not-started")]
        assert report["no_marker"] == ["41.1", "42.1", "43.1", "latest"]
        assert {w["folder"]: w["result"] for w in report["pending_markers"]} == {
            "41.1": "written",
            "42.1": "written",
            "43.1": "written",
            "latest": "written",
        }
        assert metadata(s3, bucket, "42.1") == {"go_pipeline_label": "42"}
        assert metadata(s3, bucket, "43.1") == {"go_pipeline_label": "43"}
        assert metadata(s3, bucket, "latest") == {}
    else:
        # Every folder is a directory there already, 40.1 is not complete (its `completed` was
        # dropped) and its complete marker is not kept either: exit 4, at the first revision.
        assert result.returncode == 4, result.stderr
        assert report["no_marker"] == [] and report["pending_markers"] == []
        assert results[0] == ("40.1", "marker-not-kept")
    keeps_polling(s3server, s3, bucket, "41.1")
    status_agrees(run_cli, s3server, s3, bucket)


def test_sharded_backfill_then_mark_only_completes_in_order(run_cli, s3server, s3, bucket):
    if s3server.kind == "moto":  # SeaweedFS would keep no `completed`: one more to backfill
        publish(s3, bucket, "40.1")
    for revision in ("41.1", "42.1"):
        keys = upload(s3, bucket, revision, count=10)
        assert {shard_of(key, 2) for key in keys} == {1, 2}  # each shard has a share of each
    backfill = [s3server, "backfill", bucket, PACKAGE, "--no-progress", "--json"]

    first = run_cli(*backfill, env={"GO_JOB_RUN_INDEX": "1", "GO_JOB_RUN_COUNT": "2"})

    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["mode"] == "shard" and report["shard"] == "1/2"
    assert {r["result"] for r in report["revisions"]} == {"share-annotated"}
    keeps_polling(s3server, s3, bucket, "40.1")  # pending markers, nothing completed

    early = run_cli(*backfill, "--mark-only")  # shard 2/2 has not run yet

    assert early.returncode == 1
    results = [(r["revision"], r["result"]) for r in json.loads(early.stdout)["revisions"]]
    assert results == [("41.1", "not-annotated"), ("42.1", "not-started")]
    assert "not annotated: s3://" in early.stderr
    status_agrees(run_cli, s3server, s3, bucket)

    second = run_cli(*backfill, "--shard", "2/2")
    assert second.returncode == 0, second.stderr
    marked = run_cli(*backfill, "--mark-only")

    results = [(r["revision"], r["result"]) for r in json.loads(marked.stdout)["revisions"]]
    if s3server.kind == "moto":
        assert marked.returncode == 0, marked.stderr
        assert results == [("41.1", "completed"), ("42.1", "completed")]
        first_marker = head(s3, bucket, f"{PACKAGE}41.1/")
        second_marker = head(s3, bucket, f"{PACKAGE}42.1/")
        assert first_marker and second_marker
        assert first_marker["LastModified"] <= second_marker["LastModified"]
    else:
        assert marked.returncode == 4
        assert results == [("41.1", "marker-not-kept"), ("42.1", "not-started")]
    keeps_polling(s3server, s3, bucket, "42.1")
    status_agrees(run_cli, s3server, s3, bucket)


def test_mark_only_and_shard_exclude_each_other(run_cli, moto_s3, moto_bucket):
    result = run_cli(moto_s3, "backfill", moto_bucket, PACKAGE, "--mark-only", "--shard", "1/2")
    assert result.returncode == 2


def test_backfill_of_a_package_with_nothing_under_it_is_exit_1(run_cli, s3server, s3, bucket):
    publish(s3, bucket, "40.1")

    result = run_cli(s3server, "backfill", bucket, "app/build/pakage", "--json")

    assert result.returncode == 1
    assert "nothing under" in result.stderr
    assert json.loads(result.stdout)["revisions"] == []


# -- 4. repair ------------------------------------------------------------------------------------


def seed_broken(s3: Any, bucket: str) -> None:
    """40.1 and 41.1 published, 42.1 and junk/ without markers, a complete `latest`."""
    publish(s3, bucket, "40.1")
    publish(s3, bucket, "41.1")
    upload(s3, bucket, "42.1")
    s3.put_object(Bucket=bucket, Key=f"{PACKAGE}junk/readme.txt", Body=b"x")
    upload(s3, bucket, "latest")
    s3.put_object(
        Bucket=bucket,
        Key=f"{PACKAGE}latest/",
        Body=b"",
        Metadata={**DONE, "source": "jenkins"},
    )


def test_repair_dry_run_lists_every_write_and_writes_nothing(run_cli, s3server, s3, bucket):
    seed_broken(s3, bucket)
    before = snapshot(s3, bucket)

    result = run_cli(s3server, "repair", bucket, PACKAGE, "--dry-run", "--json")

    assert snapshot(s3, bucket) == before
    report = json.loads(result.stdout)
    writes = {(w["folder"], w["action"], w["result"]) for w in report["writes"]}
    if s3server.kind == "moto":
        assert result.returncode == 0, result.stderr
        assert writes == {
            ("42.1", "pending-marker", "would-write"),
            ("junk", "pending-marker", "would-write"),
            ("latest", "withdraw-completed", "would-withdraw"),
        }
        assert f"would write pending marker s3://{bucket}/{PACKAGE}42.1/" in result.stderr
        assert f"would rewrite marker s3://{bucket}/{PACKAGE}latest/" in result.stderr
        assert report["revision"] == "41.1"
    else:
        assert writes == set()  # every folder already answers a HEAD there
        assert result.returncode == 1


def test_repair_makes_the_package_poll_and_touches_no_complete_revision(
    run_cli, s3server, s3, bucket
):
    seed_broken(s3, bucket)
    status_agrees(run_cli, s3server, s3, bucket)
    before = snapshot(s3, bucket)

    result = run_cli(s3server, "repair", bucket, PACKAGE, "--json")

    after = snapshot(s3, bucket)
    for key, state in before.items():
        if key != f"{PACKAGE}latest/":
            assert after[key] == state, key  # nothing deleted, no object rewritten
    keeps_polling(s3server, s3, bucket, "41.1")
    report = status_agrees(run_cli, s3server, s3, bucket)
    if s3server.kind == "moto":
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["poll_fails"] is False
        assert metadata(s3, bucket, "latest") == {
            "go_pipeline_label": "40",
            "user": "first@example.com",
            "source": "jenkins",
        }
        assert metadata(s3, bucket, "42.1") == {} and metadata(s3, bucket, "junk") == {}
        assert report["unparseable"] == ["junk", "latest"] and report["problems"] == []
    else:
        assert result.returncode == 1  # nothing can be complete there
        assert "no complete revision" in result.stderr


def test_repair_says_why_a_package_without_a_complete_revision_still_fails(
    run_cli, moto_s3, moto_client, moto_bucket
):
    upload(moto_client, moto_bucket, "42.1")

    result = run_cli(moto_s3, "repair", moto_bucket, PACKAGE, "--json")

    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert [w["result"] for w in report["writes"]] == ["written"]
    assert report["poll_fails"] is True and "0.0.0/" in report["poll_error"]
    assert "no complete revision" in result.stderr
    keeps_polling(moto_s3, moto_client, moto_bucket, None)  # no longer at 42.1's HEAD


@pytest.mark.parametrize("package", ["app/build", "s3://b/app/build/package"])
def test_repair_takes_exactly_pipeline_stage_job(run_cli, moto_s3, moto_bucket, package):
    assert run_cli(moto_s3, "repair", moto_bucket, package).returncode == 2
