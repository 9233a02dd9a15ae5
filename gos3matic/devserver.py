"""Throwaway local S3 servers (moto, SeaweedFS) on 127.0.0.1 for the demo, tests and benchmarks.

python -m gos3matic.devserver moto|seaweedfs  # prints the endpoint URL, runs until Ctrl+C
"""

from __future__ import annotations

import ctypes
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

KINDS = ("moto", "seaweedfs")
HOST = "127.0.0.1"
READY_TIMEOUT = 60.0  # seconds per start attempt
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL
START_ATTEMPTS = 3  # a free port can be taken by someone else before the server binds it
ACCESS_KEY = "gos3matic-dev"  # moto accepts any; SeaweedFS is configured with this one
SECRET_KEY = "gos3matic-dev-secret"
_PROBE_BUCKET = "gos3matic-ready-probe"
# weed mini's workers dial admin.port + 10000, whatever -admin.port.grpc says.
_WEED_GRPC_OFFSET = 10000
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class LocalS3:
    kind: str  # "moto" or "seaweedfs"
    endpoint_url: str  # "http://127.0.0.1:PORT"
    access_key: str  # fake credentials the server accepts
    secret_key: str
    https_url: str | None = None  # "https://127.0.0.1:PORT" when started with a certificate

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client of its own for this server (own session: the default one is not
        thread-safe); path-style, us-east-1, standard retries unless `config` says otherwise."""
        import boto3  # only callers that talk to the server need it
        from botocore.config import Config

        session = boto3.session.Session(
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
        )
        options = {"s3": {"addressing_style": "path"}, "retries": {"mode": "standard"}, **config}
        return session.client("s3", endpoint_url=self.endpoint_url, config=Config(**options))

    def env(self) -> dict[str, str]:
        """A complete environment for a client subprocess: os.environ minus every AWS_* variable,
        plus this server's endpoint and credentials.

        Pass it whole as ``env=``: merged over os.environ it brings AWS_PROFILE back, and no value
        of AWS_PROFILE is harmless (botocore raises ProfileNotFound for any profile not in the
        config file, which is os.devnull here).
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID=self.access_key,
            AWS_SECRET_ACCESS_KEY=self.secret_key,
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ENDPOINT_URL=self.endpoint_url,
            AWS_EC2_METADATA_DISABLED="true",
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        )
        return env


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel may hand it to someone else later)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _free_ports(count: int, paired: int = 0) -> list[int]:
    """`count` distinct free ports. The first `paired` come as (p, p + _WEED_GRPC_OFFSET)."""
    held: list[socket.socket] = []  # held open until the end so no port is handed out twice

    def grab(port: int = 0) -> int:
        s = socket.socket()
        held.append(s)
        s.bind((HOST, port))
        return int(s.getsockname()[1])

    try:
        ports: list[int] = []
        while len(ports) < 2 * paired:
            port = grab()
            if port + _WEED_GRPC_OFFSET <= 65535:
                with suppress(OSError):  # the twin is taken: try another port
                    ports += [port, grab(port + _WEED_GRPC_OFFSET)]
        while len(ports) < count:
            ports.append(grab())
        return ports
    finally:
        for s in held:
            s.close()


def _find_binary(name: str) -> str:
    # The venv's bin directory first: pytest and the demo are often run without activating the venv.
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() and os.access(beside, os.X_OK) else shutil.which(name)
    if not found:
        raise RuntimeError(
            f"{name} not found next to {sys.executable} or on PATH; "
            "install the dev extras: pip install -e '.[dev]'"
        )
    return found


def _server_env(home: Path) -> dict[str, str]:
    # weed mini turns AWS_ACCESS_KEY_ID/SECRET (and S3_BUCKET) into its one identity and reads
    # security.toml from $HOME: the caller's environment must not change how the server behaves.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
    # TMPDIR: weed writes its glog files there, otherwise they pile up in /tmp.
    env.update(HOME=str(home), TMPDIR=str(home))
    return env


def _die_with_parent() -> None:
    # In the child before exec: if we die without cleaning up (SIGKILL, os._exit), it gets SIGTERM.
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


def _http(method: str, url: str) -> int:
    """Status of an unsigned request (SeaweedFS accepts anonymous writes); 0 if none came."""
    request = urllib.request.Request(url, method=method, data=b"ok" if method == "PUT" else None)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):  # refused, reset, timed out, or not HTTP yet
        return 0


def _answers(endpoint: str) -> bool:
    return _http("GET", f"{endpoint}/") in (200, 403)  # ListBuckets


def _stores(endpoint: str) -> bool:
    # SeaweedFS answers GET / before it can store anything: only a real write proves it can.
    probe = LocalS3("seaweedfs", endpoint, ACCESS_KEY, SECRET_KEY)  # requests must be signed
    s3 = probe.client(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=5)
    try:
        s3.create_bucket(Bucket=_PROBE_BUCKET)
        s3.put_object(Bucket=_PROBE_BUCKET, Key="probe", Body=b"probe")
        s3.delete_object(Bucket=_PROBE_BUCKET, Key="probe")  # leave the server as it started
        s3.delete_bucket(Bucket=_PROBE_BUCKET)
    except Exception:  # not ready yet, whatever the form of the refusal
        return False
    return True


# One identity with every right, so that SeaweedFS checks signatures and answers the bucket
# calls it denies to anonymous callers (GetBucketOwnershipControls), as AWS does.
_WEED_IDENTITIES = {
    "identities": [
        {
            "name": "gos3matic-dev",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
    ]
}


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        # The whole group: the server leads its own session.
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(STOP_TIMEOUT)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:  # seen: weed mini hung on SIGTERM once its volumes ran out
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], ready: Callable[[str], bool], endpoint: str) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT
    while proc.poll() is None and time.monotonic() < deadline:
        if ready(endpoint):
            # Still alive: the answers came from our server, not from a thief of its port.
            return proc.poll() is None
        time.sleep(0.1)
    return False


@contextmanager
def _serve(
    kind: str,
    build: Callable[[], tuple[list[str], int]],
    ready: Callable[[str], bool],
    workdir: Path,
) -> Iterator[LocalS3]:
    """Run build()'s command (new ports each attempt) until ready(endpoint); stop it on exit."""
    log_path = workdir / "server.log"
    env = _server_env(workdir)
    for attempt in range(1, START_ATTEMPTS + 1):
        command, port = build()
        endpoint = f"http://{HOST}:{port}"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        try:
            if _wait_ready(proc, ready, endpoint):
                break
        except BaseException:
            _stop(proc)
            raise
        hung = proc.poll() is None
        _stop(proc)
        # Only an early exit can be a lost port race, worth another try.
        if hung or attempt == START_ATTEMPTS:
            why = f"not ready after {READY_TIMEOUT:.0f} s" if hung else f"exit {proc.returncode}"
            raise RuntimeError(
                f"{kind} server failed to start ({why}, attempt {attempt}/{START_ATTEMPTS}): "
                f"{' '.join(command)}\nlast lines of its log:\n{_log_tail(log_path)}"
            )
    try:
        yield LocalS3(kind, endpoint, ACCESS_KEY, SECRET_KEY)
    finally:
        _stop(proc)


@contextmanager
def moto_server() -> Iterator[LocalS3]:
    binary = _find_binary("moto_server")
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="gos3matic-moto-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)

        def build() -> tuple[list[str], int]:
            port = free_port()
            return [binary, "-H", HOST, "-p", str(port)], port

        yield stack.enter_context(_serve("moto", build, _answers, workdir))


# Every port weed mini listens on, and -webdav.port, which it probes even with -webdav=false.
# The admin pair comes first: _free_ports allocates it as (p, p + _WEED_GRPC_OFFSET).
_WEED_PORT_FLAGS = (
    "admin.port",
    "admin.port.grpc",
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "s3.port.iceberg",
    "s3.port.lance",
    "webdav.port",
)


@contextmanager
def seaweedfs_server(
    data_dir: str | None = None, tls: tuple[str, str] | None = None
) -> Iterator[LocalS3]:
    """tls: (certificate file, key file): S3 is also served over HTTPS, at `https_url`."""
    binary = _find_binary("weed")
    https_port: list[int] = []
    used_ports: list[int] = []
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="gos3matic-weed-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        data = Path(data_dir) if data_dir else workdir / "data"
        data.mkdir(parents=True, exist_ok=True)

        @stack.callback
        def remove_stray_sockets() -> None:
            # weed puts unix sockets in a hard-coded /tmp and leaves some behind: remove ours.
            for port in used_ports:
                for path in glob.glob(f"/tmp/seaweedfs-*-{port}.sock"):
                    Path(path).unlink(missing_ok=True)

        identities = workdir / "s3-identities.json"
        identities.write_text(json.dumps(_WEED_IDENTITIES))

        def build() -> tuple[list[str], int]:
            free = _free_ports(len(_WEED_PORT_FLAGS), paired=1)
            ports = dict(zip(_WEED_PORT_FLAGS, free, strict=True))
            used_ports.extend(ports.values())
            command = [
                binary,
                "mini",
                f"-dir={data}",
                f"-ip={HOST}",
                f"-ip.bind={HOST}",
                *(f"-{flag}={port}" for flag, port in ports.items()),
                "-admin.ui=false",
                "-webdav=false",
                # Telemetry would report to telemetry.seaweedfs.com.
                "-master.telemetry=false",
                # Each bucket takes a volume; the default cap (free disk / 1 GiB) was 79 here.
                "-volume.max=1000",
                # No clients to drain on a throwaway server: stops in ~1.3 s instead of ~2.4 s.
                "-volume.preStopSeconds=0",
                f"-filer.localSocket={workdir}/filer.sock",
                f"-s3.localSocket={workdir}/s3.sock",
                f"-s3.config={identities}",
            ]
            if tls is not None:
                https_port[:] = [free_port()]
                command += [
                    f"-s3.cert.file={tls[0]}",
                    f"-s3.key.file={tls[1]}",
                    f"-s3.port.https={https_port[0]}",
                ]
            return command, ports["s3.port"]

        server = stack.enter_context(_serve("seaweedfs", build, _stores, workdir))
        if tls is not None:
            server = replace(server, https_url=f"https://{HOST}:{https_port[0]}")
        yield server


@contextmanager
def local_s3(kind: str) -> Iterator[LocalS3]:
    servers: dict[str, Callable[[], AbstractContextManager[LocalS3]]] = {
        "moto": moto_server,
        "seaweedfs": seaweedfs_server,
    }
    if kind not in servers:
        raise ValueError(f"unknown local S3 server {kind!r}; expected one of {', '.join(KINDS)}")
    with servers[kind]() as server:
        yield server


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # Unwind through the context managers (they stop the server); ignore repeats meanwhile.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in KINDS:
        print(f"usage: python -m gos3matic.devserver {'|'.join(KINDS)}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with local_s3(args[0]) as server:
            print(server.endpoint_url, flush=True)
            keys = f"access key {server.access_key!r}, secret {server.secret_key!r}"
            print(f"{server.kind} ready ({keys}); Ctrl+C stops it", file=sys.stderr, flush=True)
            while True:
                signal.pause()
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
