"""Shards of one prefix: which job instance of a GoCD fan-out annotates which keys. Pure."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from gos3matic.errors import InputError

RUN_INDEX_ENV = "GO_JOB_RUN_INDEX"  # 1-based, set by GoCD on "run multiple instances" jobs
RUN_COUNT_ENV = "GO_JOB_RUN_COUNT"
_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")

Shard = tuple[int, int]  # (K, N): this is shard K of N, 1-based


def parse_shard(spec: str, what: str = "--shard") -> Shard:
    match = _SHARD.fullmatch(spec)
    if not match:
        raise InputError(f"invalid {what} {spec!r}: expected K/N, e.g. 2/4")
    try:
        index, count = int(match.group(1)), int(match.group(2))
    except ValueError:  # over Python's 4300 digits: no shard count is that large either
        raise InputError(f"invalid {what} {spec[:40]!r}...: K/N needs 1 <= K <= N") from None
    if count < 1 or not 1 <= index <= count:
        raise InputError(f"invalid {what} {spec!r}: K/N needs 1 <= K <= N")
    return index, count


def shard_from_env(env: Mapping[str, str]) -> Shard | None:
    """GoCD's run-instance variables, when both are set: job instance K of N is shard K/N."""
    index, count = env.get(RUN_INDEX_ENV), env.get(RUN_COUNT_ENV)
    if not index or not count:
        return None
    return parse_shard(f"{index}/{count}", f"${RUN_INDEX_ENV}/${RUN_COUNT_ENV}")


def shard_of(key: str, count: int) -> int:
    """The shard (1-based) that owns KEY: SHA-1 of its UTF-8 bytes, mod COUNT.

    Stable across processes, machines and Python versions, unlike hash().
    """
    digest = hashlib.sha1(key.encode("utf-8"), usedforsecurity=False).digest()
    return int.from_bytes(digest, "big") % count + 1


def owns(shard: Shard, key: str) -> bool:
    index, count = shard
    return shard_of(key, count) == index
