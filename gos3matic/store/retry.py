"""The one place that decides which S3 failures are worth another attempt, and how long to wait.

botocore's and awscrt's own retries are switched off (store/boto.py, store/crt.py) so that this
policy is not multiplied by them. What a run tells of its requests (a line per attempt under -v
or --log, the 'retrying' notice) is a RequestLog the run hands to its store: no module state.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from gos3matic.errors import NetworkError, S3Error, ServerError, Throttled
from gos3matic.store.flow import FlowControl

T = TypeVar("T")

ATTEMPTS = 8  # the first try and 7 retries
FIRST_WAIT = 0.1  # seconds, doubled each retry, with up to 1 s of jitter added
LONGEST_WAIT = 10.0
JITTER = 1.0  # seconds of random wait added to each backoff, so workers do not retry in step

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


def is_transient(error: BaseException) -> bool:
    """Throttling, server errors and requests without an answer. A host name that does not
    resolve or a failed TLS handshake is errors.EndpointUnreachable, never retried; nor are
    refused credentials (SignatureDoesNotMatch, InvalidAccessKeyId, ExpiredToken)."""
    if isinstance(error, NetworkError):
        return True
    return isinstance(error, (Throttled, ServerError)) or (
        isinstance(error, S3Error) and error.status in TRANSIENT_STATUSES
    )


@functools.cache
def s3_policy(attempts: int = ATTEMPTS) -> Retrying:
    # Built once and shared by every worker: tenacity keeps each call's state thread-local.
    return Retrying(
        retry=retry_if_exception(is_transient),
        wait=wait_exponential(multiplier=FIRST_WAIT, max=LONGEST_WAIT) + wait_random(0, JITTER),
        stop=stop_after_attempt(attempts),
        reraise=True,
    )


Request = tuple[str, str]  # (operation, key)
NOTICE_EVERY = 4.0  # seconds between two "retrying" lines


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class RequestLog:
    """What one run tells of its requests, handed to its store (open_store) and from there to
    every request it sends.

    `line`: one call per attempt of every request when -v or --log asks (None: not logged):
    operation, key, status (an HTTP status or the error), attempt, milliseconds. Never a header,
    so never a credential. `notice`: where the 'retrying' line of a request outside the engine
    goes (the run's one writer; stderr by default).
    """

    def __init__(
        self,
        line: Callable[[str], None] | None = None,
        notice: Callable[[str], None] = _stderr,
    ) -> None:
        self.line = line
        self.notice = notice
        self._last_notice: float | None = None
        self._lock = threading.Lock()

    def attempt(
        self, what: Request, error: BaseException | None, attempt: int, started: float
    ) -> None:
        """One attempt's line, when lines are asked for."""
        if self.line is None:
            return
        if error is None:
            status = "200"
        elif isinstance(error, S3Error):
            status = f"{error.status or '-'} {error.code}"
        else:
            status = type(error).__name__
        millis = (time.monotonic() - started) * 1000
        self.line(f"request {what[0]} {what[1] or '-'} {status} attempt {attempt} {millis:.1f} ms")

    def retrying(self, state: RetryCallState) -> None:
        """A line the first time a request outside the engine (start-up, listing, marker) has to
        be retried, so that a user waiting on a slow or failing endpoint knows why; then one at
        most every NOTICE_EVERY seconds while retries go on, so a long back-off is never silent."""
        if state.outcome is None:
            return
        now = time.monotonic()
        with self._lock:
            if self._last_notice is not None and now - self._last_notice < NOTICE_EVERY:
                return
            still = "still " if self._last_notice is not None else ""
            self._last_notice = now
        error = state.outcome.exception()
        wait = state.next_action.sleep if state.next_action else 0.0
        self.notice(
            f"gos3matic: {error}; {still}retrying (attempt {state.attempt_number + 1} of "
            f"{ATTEMPTS}, next in {wait:.1f} s)"
        )


def with_retries(
    call: Callable[[], T],
    attempts: int = ATTEMPTS,
    what: Request = ("", ""),
    log: RequestLog | None = None,
) -> T:
    """Run one S3 request under the policy; the last error is raised as it was.

    `what`: its operation and key, for the request log; `log`: the run's (None: a fresh one,
    nothing logged, the retrying notice on stderr)."""
    log = log or RequestLog()
    policy = s3_policy(attempts).copy(before_sleep=log.retrying)
    if log.line is None:
        return policy(call)
    tries = 0

    def logged() -> T:
        nonlocal tries
        tries += 1
        started = time.monotonic()
        try:
            answer = call()
        except Exception as error:
            log.attempt(what, error, tries, started)
            raise
        log.attempt(what, None, tries, started)
        return answer

    return policy(logged)


async def with_retries_async(
    send: Callable[[], Awaitable[T]],
    flow: FlowControl,
    attempts: int = ATTEMPTS,
    what: Request = ("", ""),
    log: RequestLog | None = None,
) -> T:
    """The same policy for the engine's requests, each attempt inside the run's flow control:
    a slot in its window, its turn under the pacer, a throttling answer reported to it. `log`:
    the run's request log (None: nothing logged); these retries are counted, never noticed.

    The policy's own pieces (which errors, how long to wait, when to stop) decide every retry;
    its state is only built once an attempt has failed: most requests succeed at once, and
    tenacity's per-call set-up cost a fifth of the CPU of a request on the hot path.
    """
    if log is not None and log.line is None:
        log = None  # nothing to tell per attempt: the hot path asks no more
    try:
        return await _attempt(send, flow, what, 1, log)
    except Exception as error:
        if not is_transient(error):
            raise
        failure = error
    policy = s3_policy(attempts)
    state = RetryCallState(policy, fn=None, args=(), kwargs={})
    while True:
        state.set_exception((type(failure), failure, failure.__traceback__))
        if not policy.retry(state) or policy.stop(state):
            raise failure
        flow.stats.retries += 1
        await asyncio.sleep(policy.wait(state))
        state.prepare_for_next_attempt()
        try:
            return await _attempt(send, flow, what, state.attempt_number, log)
        except Exception as error:
            failure = error


async def _attempt(
    send: Callable[[], Awaitable[T]],
    flow: FlowControl,
    what: Request,
    attempt: int,
    log: RequestLog | None,
) -> T:
    async with flow.request():
        started = time.monotonic()
        try:
            answer = await send()
        except S3Error as error:
            if log is not None:
                log.attempt(what, error, attempt, started)
            if is_throttling(error):
                flow.throttled()
            raise
        except Exception as error:
            if log is not None:
                log.attempt(what, error, attempt, started)
            raise
        if log is not None:
            log.attempt(what, None, attempt, started)
        return answer


def is_throttling(error: S3Error) -> bool:
    """S3 asks us to slow down: the flow control halves its rate, not only this request."""
    return isinstance(error, Throttled) or error.status in Throttled.statuses
