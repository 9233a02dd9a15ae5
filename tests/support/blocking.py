"""An awaitable object store called from plain test code: each request on a loop of its own."""

from __future__ import annotations

import asyncio
from typing import Any


class Blocking:
    """The store's async requests as plain calls; everything else as the store has it."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.store, name)
        if not asyncio.iscoroutinefunction(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            return asyncio.run(attribute(*args, **kwargs))

        return call
