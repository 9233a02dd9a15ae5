"""The poller's parse of a folder name, exactly as the plugin's Java does it.

`Revision(name)`: Java's `split("\\.")`, then `Integer.valueOf` of the first two parts and of
the third when there are exactly three. Checked by example and against the port of the JDK in
tests/support/poller.py, written separately.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import poller as java

from gos3matic.core.poller import java_integer, java_split, path_warning, poller_revision


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("42.1", (42, 1, 0)),
        ("42.10", (42, 10, 0)),
        ("42.1.3", (42, 1, 3)),
        ("+42.1", (42, 1, 0)),  # Integer.valueOf takes a sign
        ("-1.5", (-1, 5, 0)),
        ("042.1", (42, 1, 0)),  # and leading zeros
        ("42.1.", (42, 1, 0)),  # split drops the trailing empty part
        ("42.1..", (42, 1, 0)),
        ("42.1.3.x", (42, 1, 0)),  # four parts: the patch is never read
        ("42.1.3.4", (42, 1, 0)),
        ("2147483647.1", (2147483647, 1, 0)),
        ("\u0664\u0662.\u0661", (42, 1, 0)),  # Character.digit knows every script's digits
    ],
)
def test_names_the_poller_parses(name, version):
    assert poller_revision(name) == version


@pytest.mark.parametrize(
    "name",
    [
        "latest",
        "42",  # one part: parts[1] is out of bounds
        "42.1.x",  # three parts: the third is parsed
        ".42.1",  # a leading empty part
        "42..1",
        "...",
        "",
        "4 2.1",
        " 42.1",
        "2147483648.1",  # beyond Java's int
        "20240101120000.1",
        "v2.1",
        "1_0.1",  # Python's int() would take it, Java's does not
        "+.1",
        "\U0001d7ce.1",  # a digit outside the BMP: two UTF-16 units, neither a digit
    ],
)
def test_names_that_make_the_poller_throw(name):
    assert poller_revision(name) is None


def test_java_split_keeps_inner_and_leading_empties_and_drops_trailing_ones():
    assert java_split("a..b..", ".") == ["a", "", "b"]
    assert java_split("", ".") == [""]
    assert java_split("...", ".") == []


def test_java_integer_bounds():
    assert java_integer("-2147483648") == -(2**31)
    assert java_integer("-2147483649") is None
    assert java_integer("+") is None


def java_revision(name: str) -> tuple[int, int, int] | None:
    try:
        revision = java.Revision(name)
    except (java.NumberFormatException, java.ArrayIndexOutOfBoundsException):
        return None
    return revision.major, revision.minor, revision.patch


NAMES = st.text(alphabet="0123456789.+- x\u0664\uff14\U0001d7ce", max_size=12)


@settings(max_examples=2000)
@given(NAMES)
def test_the_parse_agrees_with_the_port_of_the_jdk(name):
    assert poller_revision(name) == java_revision(name)


@settings(max_examples=300)
@given(st.integers(min_value=-(2**33), max_value=2**33), st.sampled_from(["", "+", "0", "00"]))
def test_integers_agree_with_the_port_of_the_jdk_at_every_size(value, lead):
    text = f"{lead}{value}" if value >= 0 else str(value)
    try:
        expected: int | None = java.parse_int(text)
    except java.NumberFormatException:
        expected = None
    assert java_integer(text) == expected


def test_a_path_the_poller_parses_oddly_gets_a_quiet_warning():
    warning = path_warning("app/build/package/42.1.3.x/")
    assert warning is not None and not warning[1]
    assert "42.1.0" in warning[0]


def test_a_path_the_poller_cannot_parse_is_loud():
    warning = path_warning("app/build/package/42.1.x/")
    assert warning is not None and warning[1]
