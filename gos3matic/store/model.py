"""boto3's shapes on the hot path: tables built once from botocore's service model.

`HeadParser` reads a HeadObject answer's headers into the dict boto3 would return, and
`CopySerializer` turns CopyObject's boto3 parameters into the headers boto3 would send. Both walk
a table of the operation's members (header name, type, timestamp format) made at start from the
same model botocore serializes and parses with: nothing here is a hand-kept list of headers, and
neither calls botocore's serializer or parser per request. Where boto3 applies customisations of
its own (the Expires header kept raw as ExpiresString, CopySource quoting, the SSE-C key digests,
ASCII-only metadata), the same botocore handlers run, or the rule is mirrored and tested against
boto3 (tests/unit/test_model_fidelity.py).
"""

from __future__ import annotations

import calendar
import datetime as dt
import email.utils
from collections.abc import Mapping
from typing import Any

import botocore.handlers
import botocore.utils

from gos3matic.store.boto import add_object_lock_md5, parse_timestamp

Header = tuple[str, str]


class HeadParser:
    """HeadObject's answer headers -> boto3's response dict (without ResponseMetadata)."""

    def __init__(self, output_shape: Any) -> None:
        # lower-cased header name -> (member name, type, shape)
        self.members: dict[str, tuple[str, str, Any]] = {}
        self.map_member = ""
        self.map_prefix = ""
        self.expires_member: str | None = None
        for name, member in output_shape.members.items():
            where = member.serialization.get("location")
            header = member.serialization.get("name", name)
            if where == "header":
                self.members[header.lower()] = (name, member.type_name, member)
                if name == "Expires" and header == "Expires":
                    self.expires_member = name  # botocore's handle_expires_header applies
            elif where == "headers":
                self.map_member, self.map_prefix = name, header.lower()

    def parse(self, raw: list[Header]) -> dict[str, Any]:
        # As urllib3 and botocore's HeadersDict see them: one entry per name, whatever its case,
        # spelt as it first came, repeated values joined with ', '.
        headers: dict[str, list[str]] = {}
        for name, value in raw:
            lower = name.lower()
            seen = headers.get(lower)
            if seen is None:
                headers[lower] = [name, value]
            else:
                seen[1] = f"{seen[1]}, {value}"
        parsed: dict[str, Any] = {}
        if self.expires_member is not None and "expires" in headers:
            value = headers["expires"][1]
            if value:
                parsed["ExpiresString"] = value
                try:
                    botocore.utils.parse_timestamp(value)
                except (ValueError, RuntimeError):
                    del headers["expires"]  # the raw value only, as boto3 keeps it
        metadata: dict[str, str] = {}
        prefix, cut = self.map_prefix, len(self.map_prefix)
        for lower, (name, value) in headers.items():
            if lower.startswith(prefix):
                metadata[name[cut:]] = value
                continue
            member = self.members.get(lower)
            if member is not None:
                parsed[member[0]] = _parse_value(member[1], member[2], value)
        if self.map_member:
            parsed[self.map_member] = metadata
        return parsed


def _parse_value(type_name: str, shape: Any, value: str) -> Any:
    """One header's value as botocore's rest-xml parser reads it."""
    if type_name == "string":
        if shape.serialization.get("jsonvalue"):
            import base64
            import json

            return json.loads(base64.b64decode(value).decode("utf-8"))
        return value
    if type_name == "timestamp":
        return parse_timestamp(value)
    if type_name in ("integer", "long"):
        return int(value)
    if type_name == "boolean":
        return value == "true"
    if type_name in ("float", "double"):
        return float(value)
    if type_name == "list":
        return [
            _parse_value(shape.member.type_name, shape.member, e.strip()) for e in value.split(",")
        ]
    return value


class CopySerializer:
    """CopyObject's (or UploadPartCopy's) boto3 parameters -> the headers boto3 sends."""

    def __init__(self, operation_model: Any) -> None:
        self.operation = operation_model.name
        # member name -> (header name or prefix, location, type, timestamp format, shape)
        self.members: dict[str, tuple[str, str, str, str, Any]] = {}
        self.uri: set[str] = set()
        self.query: dict[str, str] = {}
        for name, member in operation_model.input_shape.members.items():
            where = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if where in ("header", "headers"):
                stamp = member.serialization.get("timestampFormat", "rfc822")
                self.members[name] = (wire, where, member.type_name, stamp, member)
            elif where == "uri":
                self.uri.add(name)
            elif where == "querystring":
                self.query[name] = wire

    def headers(self, params: Mapping[str, Any]) -> list[Header]:
        unknown = set(params) - self.members.keys() - self.uri - self.query.keys()
        if unknown:
            raise TypeError(f"not a {self.operation} parameter: {', '.join(sorted(unknown))}")
        given = dict(params)
        # Sent as read: boto3 would parse and re-format it, and refuse one it cannot parse.
        raw_expires = given.pop("Expires") if isinstance(given.get("Expires"), str) else None
        # botocore's before-parameter-build handlers for these operations, in its order
        botocore.handlers.handle_copy_source_param(given)
        botocore.handlers.validate_ascii_metadata(given)
        botocore.handlers.sse_md5(given)
        botocore.handlers.copy_source_sse_md5(given)
        headers: dict[str, str] = {}
        for name, value in given.items():
            if value is None or name not in self.members:
                continue
            wire, where, type_name, stamp, shape = self.members[name]
            if where == "headers":
                for key, item in value.items():
                    headers[wire + key] = item.strip(_WHITESPACE)
            elif type_name == "list" and not value:
                continue
            else:
                headers[wire] = _header_value(type_name, stamp, shape, value).strip(_WHITESPACE)
        add_object_lock_md5(_HeadersOf(headers))
        if raw_expires is not None:
            headers["Expires"] = raw_expires
        return list(headers.items())


# HTTP's optional whitespace (RFC 9110 5.5): no part of a field value, so a server never sees it
# at either end. botocore trims it when awscrt is installed and sends it otherwise; the store
# trims it always, so what reaches S3 is the same either way.
_WHITESPACE = " \t"


class _HeadersOf:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


def _header_value(type_name: str, stamp: str, shape: Any, value: Any) -> str:
    """One parameter as botocore's rest serializer writes it into a header."""
    if type_name == "timestamp":
        seconds = calendar.timegm(botocore.utils.parse_to_aware_datetime(value).utctimetuple())
        if stamp == "iso8601":
            when = dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
            return when.strftime("%Y-%m-%dT%H:%M:%SZ")
        if stamp == "unixtimestamp":
            return str(seconds)
        return email.utils.formatdate(seconds, usegmt=True)
    if type_name == "boolean":
        return str(value).lower()
    if type_name in ("float", "double"):
        return str(float(value))
    if type_name == "list":
        return ",".join(
            _quoted_item(v) if shape.member.type_name == "string" else str(v)
            for v in value
            if v is not None
        )
    if type_name == "string" and shape.serialization.get("jsonvalue"):
        import base64
        import json

        return base64.b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()
    return str(value)


def _quoted_item(value: str) -> str:
    if '"' in value or "," in value:
        return '"' + value.replace('"', '\\"') + '"'
    return value
