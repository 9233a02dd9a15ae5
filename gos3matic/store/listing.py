"""ListObjectsV2 on the native store's own connections, parsed by the C XML parser.

A page of up to 1,000 keys is one signed GET; its XML is parsed by ElementTree's C accelerator
into `Listed` entries, keys URL-decoded as boto3 decodes them (it asks for `encoding-type=url`
too, so that keys with characters XML cannot carry still list). The next page is requested as
soon as a page arrives, before its keys are handed on, so the engine does not wait for S3 between
pages. Each page goes through the one retry policy; a flow control of its own keeps the listing
out of the objects' concurrency window and pacer.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ElementTree
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote_plus

from gos3matic.errors import NetworkError
from gos3matic.store.flow import FlowControl
from gos3matic.store.protocols import Listed
from gos3matic.store.retry import with_retries_async

if TYPE_CHECKING:
    from gos3matic.store.native import NativeObjectStore

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_CONTENTS, _KEY, _SIZE, _ETAG = (_NS + n for n in ("Contents", "Key", "Size", "ETag"))
_TRUNCATED, _NEXT, _ENCODING = (
    _NS + n for n in ("IsTruncated", "NextContinuationToken", "EncodingType")
)


def _q(value: str) -> str:
    # botocore's percent_encode for query strings
    return quote(value, safe="-_.~")


def parse_page(body: bytes) -> tuple[list[Listed], str | None]:
    """One ListObjectsV2 answer: its objects, and the token of the next page (None: the last)."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as error:
        raise NetworkError(f"an unreadable listing page ({error})") from None
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    if ns != _NS:  # a store that answers without S3's namespace
        return _parse_any(root, ns)
    decode = root.findtext(_ENCODING) == "url"
    listed = []
    for element in root.iter(_CONTENTS):
        key, size, etag = "", 0, ""
        for child in element:  # one pass over its fields, not a search for each
            tag = child.tag
            if tag == _KEY:
                key = child.text or ""
                if decode and ("%" in key or "+" in key):
                    key = unquote_plus(key)
            elif tag == _SIZE:
                size = int(child.text or 0)
            elif tag == _ETAG:
                etag = child.text or ""
        listed.append(Listed(key, size, etag))
    more = root.findtext(_TRUNCATED) == "true"
    return listed, (root.findtext(_NEXT) if more else None)


def _parse_any(root: ElementTree.Element, ns: str) -> tuple[list[Listed], str | None]:
    decode = root.findtext(ns + "EncodingType") == "url"
    listed = []
    for element in root.iter(ns + "Contents"):
        key = element.findtext(ns + "Key") or ""
        listed.append(
            Listed(
                unquote_plus(key) if decode else key,
                int(element.findtext(ns + "Size") or 0),
                element.findtext(ns + "ETag") or "",
            )
        )
    more = root.findtext(ns + "IsTruncated") == "true"
    return listed, (root.findtext(ns + "NextContinuationToken") if more else None)


class NativeListing:
    """The objects under a prefix, page by page, from the native store's connections."""

    def __init__(self, store: NativeObjectStore) -> None:
        self.store = store
        self.flow = FlowControl(ceiling=4)
        key_path = store.route.key_path
        self.path = key_path[:-1] if len(key_path) > 1 else key_path  # '/bucket' or '/'

    async def page(self, prefix: str, token: str | None) -> tuple[list[Listed], str | None]:
        query = f"encoding-type=url&list-type=2&prefix={_q(prefix)}"
        if token is not None:
            query = f"continuation-token={_q(token)}&{query}"
        answer = await with_retries_async(
            lambda: self.store.send("GET", "ListObjectsV2", self.path, query),
            self.flow,
            what=("ListObjectsV2", prefix),
            log=self.store.log,
        )
        return parse_page(answer.body)

    async def objects(self, prefix: str) -> AsyncIterator[list[Listed]]:
        """Pages of objects; the next one is on its way while the caller handles this one."""
        loop = asyncio.get_running_loop()
        ahead = loop.create_task(self.page(prefix, None))
        try:
            while True:
                listed, token = await ahead
                if token is not None:
                    ahead = loop.create_task(self.page(prefix, token))
                yield listed
                if token is None:
                    return
        finally:
            if not ahead.done():
                ahead.cancel()
