"""``framing.loads``: the fast parser reads every JSON text as the standard library's reading
(with lone surrogates refused) does, or leaves it to that reading. Generated texts, bounded and
derandomized; no database."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from releases.health import framing

EXAMPLES = settings(max_examples=400, derandomize=True, database=None, deadline=None)

_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def reference(data: bytes) -> Any:
    """What ``loads`` answered before orjson: ``json.loads``, a lone surrogate escape refused,
    nesting over 128 refused; ``"invalid"`` for a ``ValueError``."""
    try:
        value = json.loads(data)
        if _ESCAPE.search(data):
            json.dumps(value, ensure_ascii=False).encode()
    except (ValueError, UnicodeError, RecursionError):
        return "invalid"
    if _depth(value) > framing.MAX_JSON_DEPTH:
        return "invalid"
    return value


def answer(data: bytes) -> Any:
    try:
        return framing.loads(data)
    except ValueError:
        return "invalid"


def same(data: bytes) -> None:
    expected, got = reference(data), answer(data)
    # json.dumps tells 1 from 1.0 and True from 1, and keeps the keys' order; repr tells NaN.
    assert json.dumps(got) == json.dumps(expected), data
    assert repr(got) == repr(expected), data


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**62, max_value=2**66)
    | st.integers(min_value=-(2**66), max_value=-(2**62))
    | st.floats()
    | st.text(st.characters(codec=None, exclude_categories=()), max_size=8)
    | st.text(st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010), max_size=4)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


@EXAMPLES
@given(values, st.booleans())
def test_loads_reads_generated_json_as_the_standard_library(value, ensure_ascii):
    text = json.dumps(value, ensure_ascii=ensure_ascii)

    data = text.encode("utf-8", "surrogatepass")

    same(data)


@EXAMPLES
@given(st.binary(max_size=40))
def test_loads_reads_arbitrary_bytes_as_the_standard_library(data):
    same(data)


@pytest.mark.parametrize(
    "data",
    [
        b'"\\ud800"',
        b'"\\udc00x"',
        b'{"\\ud800": 1}',
        b'"\\ud83d\\ude00"',
        b'"\xed\xa0\x80"',  # a surrogate in UTF-8 bytes: json reads it (surrogatepass)
        b"NaN",
        b"[Infinity, -Infinity]",
        b"1e400",
        b"18446744073709551615",
        b"18446744073709551616",
        b"-9223372036854775809",
        b"[123456789012345678901234567890]",
        b'{"seq": 99999999999999999999999}',
        b'{"a": 1, "a": 2, "b": 3}',
        b"\xef\xbb\xbf{}",
        '{"a": "é"}'.encode("utf-16"),
        b" {} \n",
        b"-0",
        b"-0.0",
        b"[1E2, 0.1, 1.5e-400]",
        b'"\\u0000"',
        b'"\x01"',
        b"[" * 128 + b"]" * 128,
        b"[" * 129 + b"]" * 129,
        b'{"a":' * 129 + b"1" + b"}" * 129,
        b"[" * 5000 + b"]" * 5000,
        b"",
    ],
)
def test_loads_reads_edge_cases_as_the_standard_library(data):
    same(data)
