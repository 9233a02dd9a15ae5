"""The native store's connections as real S3 and real networks treat them: closed, reset, silent,
closed after every answer, served from several addresses, over TLS trusted or not.

The misbehaving servers are tests/support/rawserver.py on 127.0.0.1; TLS is also checked end to
end against SeaweedFS serving HTTPS with a throwaway CA (trustme).
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import botocore.credentials
import botocore.session
import pytest
import trustme
from support.blocking import Blocking
from support.inprocess import without_retry_waits
from support.rawserver import CLOSE, RESET, SILENT, Seen, answer, raw_server

from gos3matic.core.metadata import copy_params
from gos3matic.devserver import LocalS3, seaweedfs_server
from gos3matic.errors import EndpointUnreachable, NetworkError
from gos3matic.store import http as transport
from gos3matic.store import retry
from gos3matic.store.boto import Boto3Bucket, make_client
from gos3matic.store.native import NativeObjectStore, Route, open_object_store, tls_context
from gos3matic.store.protocols import Connection

SERVICE_MODEL = botocore.session.get_session().get_service_model("s3")
CREDENTIALS = botocore.credentials.Credentials("AKIDEXAMPLE", "secret")
HEAD_OK = answer(200, [("ETag", '"abc"'), ("x-amz-meta-owner", "team-a")])


def store_for(url_host: str, **options: Any) -> NativeObjectStore:
    route = Route(options.pop("scheme", "http"), url_host, "/bucket/", "us-east-1")
    return NativeObjectStore(route, SERVICE_MODEL, CREDENTIALS, options.pop("size", 4), **options)


@pytest.fixture
def no_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    without_retry_waits(monkeypatch)


# -- connections the server ends ---------------------------------------------------------------


@pytest.mark.usefixtures("no_waits")
@pytest.mark.parametrize("fault", [CLOSE, RESET], ids=["closed", "reset"])
def test_a_connection_ended_before_any_answer_is_reopened_and_the_request_retried(fault):
    def behaviour(seen: Seen) -> bytes | str:
        return fault if seen.connection == 1 else HEAD_OK

    with raw_server(behaviour) as server:
        store = Blocking(store_for(f"127.0.0.1:{server.port}"))
        head = store.head_object("some/key")

    assert head["Metadata"] == {"owner": "team-a"}
    assert [(s.connection, s.method) for s in server.seen] == [(1, "HEAD"), (2, "HEAD")]


def test_one_attempt_on_a_connection_reset_is_a_network_error():
    with raw_server(lambda seen: RESET) as server:
        store = Blocking(store_for(f"127.0.0.1:{server.port}"))
        with pytest.raises(NetworkError, match=r"reset|closed"):
            store.send("HEAD", "HeadObject", "/bucket/k")  # one attempt: retry.py not involved


def test_connection_close_on_every_answer_costs_a_connection_each_and_no_retry():
    closing = answer(200, [("ETag", '"abc"'), ("Connection", "close")])

    with raw_server(lambda seen: closing) as server:
        native = store_for(f"127.0.0.1:{server.port}")

        async def heads() -> None:
            for index in range(5):
                await native.head_object(f"k{index}")

        asyncio.run(heads())

    assert [s.connection for s in server.seen] == [1, 2, 3, 4, 5]
    assert native.flow.stats.retries == 0


def test_an_idle_keep_alive_connection_closed_by_the_server_is_replaced_without_a_retry():
    """A server that closes every connection after two answers, between requests."""
    connections: dict[int, int] = {}

    def behaviour(seen: Seen) -> bytes | str:
        connections[seen.connection] = seen.index_on_connection
        if seen.index_on_connection == 2:
            return answer(200, [("ETag", '"abc"'), ("Connection", "close")])
        return HEAD_OK

    with raw_server(behaviour) as server:
        native = store_for(f"127.0.0.1:{server.port}")

        async def heads() -> None:
            for index in range(6):
                await native.head_object(f"k{index}")
                await asyncio.sleep(0.01)

        asyncio.run(heads())

    assert len(server.seen) == 6
    assert connections == {1: 2, 2: 2, 3: 2}
    assert native.flow.stats.retries == 0


@pytest.mark.usefixtures("no_waits")
def test_a_server_that_never_answers_times_out_under_the_one_sweep(monkeypatch):
    monkeypatch.setattr(transport, "SWEEP_EVERY", 0.1)
    with raw_server(lambda seen: SILENT) as server:
        native = store_for(f"127.0.0.1:{server.port}")
        native.pool.idle_timeout = 0.5

        async def many() -> list[Any]:
            sends = [native.send("HEAD", "HeadObject", f"/bucket/k{i}") for i in range(3)]
            return await asyncio.gather(*sends, return_exceptions=True)

        outcomes = asyncio.run(many())

    assert all(isinstance(o, NetworkError) and "no answer" in str(o) for o in outcomes), outcomes
    assert len(server.seen) == 3


def test_a_refused_connection_is_a_network_error_and_retried(monkeypatch):
    without_retry_waits(monkeypatch)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    native = store_for(f"127.0.0.1:{port}")

    with pytest.raises(NetworkError, match="cannot connect"):
        Blocking(native).head_object("k")
    assert native.flow.stats.retries == retry.ATTEMPTS - 1


# -- several addresses ---------------------------------------------------------------------------


def test_connections_spread_over_every_address_and_follow_a_new_resolution(monkeypatch):
    with raw_server(lambda seen: HEAD_OK) as first, raw_server(lambda seen: HEAD_OK) as second:
        answers = {"now": [first.port, second.port]}

        async def getaddrinfo(host: str, port: int, **_: Any) -> list[Any]:
            assert host == "s3.example.test"
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", p))
                for p in answers["now"]
            ]

        native = store_for("s3.example.test", size=8)
        monkeypatch.setattr(transport, "RESOLVE_EVERY", 0.2)
        monkeypatch.setattr(transport, "SWEEP_EVERY", 0.05)

        async def run() -> None:
            monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
            await asyncio.gather(*(native.head_object(f"a{i}") for i in range(8)))
            answers["now"] = [second.port]  # the name now resolves to one address
            await asyncio.sleep(0.5)
            before = len(second.seen)
            await asyncio.gather(*(native.head_object(f"b{i}") for i in range(8)))
            assert len(second.seen) - before == 8  # every request of the second round

        asyncio.run(run())

    assert first.connections >= 2 and second.connections >= 2  # the first round used both
    assert len(first.seen) + len(second.seen) == 16
    assert {s.headers["host"] for s in first.seen + second.seen} == {"s3.example.test"}


def test_a_name_that_does_not_resolve_is_endpoint_unreachable():
    native = store_for("no-such-host.invalid")

    with pytest.raises(EndpointUnreachable, match="cannot resolve"):
        Blocking(native).head_object("k")


# -- TLS -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_files(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("tls")
    issued = ca.issue_cert("127.0.0.1", "localhost")
    paths = {name: str(folder / f"{name}.pem") for name in ("ca", "cert", "key")}
    ca.cert_pem.write_to_path(paths["ca"])
    issued.cert_chain_pems[0].write_to_path(paths["cert"])
    issued.private_key_pem.write_to_path(paths["key"])
    return paths


def tls_server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def test_an_untrusted_certificate_is_endpoint_unreachable_and_never_retried(ca):
    with raw_server(lambda seen: HEAD_OK, tls=tls_server_context(ca)) as server:
        native = store_for(f"127.0.0.1:{server.port}", scheme="https")
        with pytest.raises(EndpointUnreachable, match="certificate is not trusted"):
            Blocking(native).head_object("k")

    assert server.seen == []  # nothing was sent over a connection we could not trust
    assert native.flow.stats.retries == 0


def test_aws_ca_bundle_is_the_trust_store(ca, ca_files, monkeypatch):
    monkeypatch.setenv("AWS_CA_BUNDLE", ca_files["ca"])
    with raw_server(lambda seen: HEAD_OK, tls=tls_server_context(ca)) as server:
        native = store_for(f"127.0.0.1:{server.port}", scheme="https", ssl_context=tls_context())
        head = Blocking(native).head_object("k")

    assert head["Metadata"] == {"owner": "team-a"}


@pytest.fixture(scope="module")
def seaweed_https(ca_files: dict[str, str]) -> Iterator[LocalS3]:
    with seaweedfs_server(tls=(ca_files["cert"], ca_files["key"])) as server:
        yield server


def test_over_https_the_native_store_reads_and_copies_as_boto3_does(
    seaweed_https, ca_files, monkeypatch
):
    monkeypatch.setenv("AWS_CA_BUNDLE", ca_files["ca"])
    for name, value in seaweed_https.env().items():
        if name.startswith("AWS_") and name != "AWS_ENDPOINT_URL":
            monkeypatch.setenv(name, value)
    s3 = seaweed_https.client()
    s3.create_bucket(Bucket="tls-bucket")
    key = "app/1.1/ünï cødé.txt"
    s3.put_object(Bucket="tls-bucket", Key=key, Body=b"x", Metadata={"owner": "team-a"})
    connection = Connection(endpoint_url=seaweed_https.https_url)
    bucket = Boto3Bucket(make_client(connection, 4), "tls-bucket")

    native = open_object_store(bucket, connection, "app/1.1/", 4)
    assert isinstance(native, NativeObjectStore) and native.route.scheme == "https"
    store = Blocking(native)
    head = store.head_object(key)
    expected = dict(bucket.client.head_object(Bucket="tls-bucket", Key=key))
    expected.pop("ResponseMetadata")
    assert head == expected
    store.copy_object(copy_params("tls-bucket", key, head, {"go_pipeline_label": "1.1"}))

    assert s3.head_object(Bucket="tls-bucket", Key=key)["Metadata"] == {
        "owner": "team-a",
        "go_pipeline_label": "1.1",
    }


def test_annotate_over_https_with_the_ca_bundle_and_without(run_cli, seaweed_https, ca_files):
    s3 = seaweed_https.client()
    s3.create_bucket(Bucket="tls-cli")
    for index in range(30):
        s3.put_object(Bucket="tls-cli", Key=f"app/build/job/2.1/f{index}", Body=b"x")
    prefix = "app/build/job/2.1/"
    # SeaweedFS drops a marker's metadata (docs/s3-notes.md): no marker here
    args = ["annotate", "tls-cli", prefix, "--label", "2.1", "--no-progress", "--no-marker"]
    args += ["--json"]
    endpoint = ["--endpoint-url", seaweed_https.https_url]

    untrusted = run_cli(seaweed_https, *args, *endpoint)

    assert untrusted.returncode == 3, untrusted.stderr
    assert "certificate" in untrusted.stderr.lower()
    assert (
        "go_pipeline_label" not in s3.head_object(Bucket="tls-cli", Key=f"{prefix}f0")["Metadata"]
    )

    trusted = run_cli(seaweed_https, *args, *endpoint, env={"AWS_CA_BUNDLE": ca_files["ca"]})

    assert trusted.returncode == 0, trusted.stderr
    assert json.loads(trusted.stdout)["annotated"] == 30
    for index in range(30):
        metadata = s3.head_object(Bucket="tls-cli", Key=f"{prefix}f{index}")["Metadata"]
        assert metadata["go_pipeline_label"] == "2.1"
