"""Envelope bytes to items: content decoding, size limits and the envelope framing."""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass
from typing import Any

import brotli
import orjson
from django.conf import settings


class EnvelopeError(ValueError):
    """The request body is not a readable envelope; the message is the 400's ``detail``."""


class EnvelopeTooLarge(EnvelopeError):
    """The body, compressed or not, exceeds ``ENVELOPE_MAX_BYTES``."""


def max_envelope_bytes() -> int:
    return int(settings.ENVELOPE_MAX_BYTES)


#: Item types counted against a cap, and the setting that caps them: Relay counts ``session``
#: and ``sessions`` items together (``max_session_count``) and takes one event per envelope.
CAPPED_TYPES = {
    "session": "ENVELOPE_MAX_SESSIONS",
    "sessions": "ENVELOPE_MAX_SESSIONS",
    "event": "ENVELOPE_MAX_EVENTS",
}
#: Item types whose payload we read: their size is capped by ``ENVELOPE_MAX_ITEM_BYTES``.
READ_TYPES = frozenset(CAPPED_TYPES)


def decode_body(body: bytes, content_encoding: str | None) -> bytes:
    """Undo ``Content-Encoding`` (identity, gzip, deflate, br, or a comma-separated chain).

    The output is bounded by ``ENVELOPE_MAX_BYTES`` so that a small compressed bomb cannot
    exhaust memory.
    """
    limit = max_envelope_bytes()
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    for coding in reversed(codings):
        if coding == "identity":
            continue
        if coding in ("gzip", "x-gzip"):
            body = _inflate(body, zlib.MAX_WBITS | 16, limit, coding)
        elif coding == "deflate":
            # RFC 9110 deflate is zlib-wrapped; some clients send raw deflate.
            try:
                body = _inflate(body, zlib.MAX_WBITS, limit, coding)
            except EnvelopeTooLarge:
                raise
            except EnvelopeError:
                body = _inflate(body, -zlib.MAX_WBITS, limit, coding)
        elif coding == "br":
            body = _unbrotli(body, limit)
        else:
            raise EnvelopeError(f"Unsupported Content-Encoding: {coding}")
    return body


def _inflate(data: bytes, wbits: int, limit: int, coding: str) -> bytes:
    decompressor = zlib.decompressobj(wbits)
    try:
        out = decompressor.decompress(data, limit + 1)
    except zlib.error as exc:
        raise EnvelopeError(f"Invalid {coding} body: {exc}") from None
    if len(out) > limit:
        raise EnvelopeTooLarge("Envelope exceeds the size limit once decompressed")
    if not decompressor.eof:
        raise EnvelopeError(f"Invalid {coding} body: truncated stream")
    return out


def _unbrotli(data: bytes, limit: int) -> bytes:
    decompressor = brotli.Decompressor()
    chunks: list[bytes] = []
    size = 0
    try:
        chunk = decompressor.process(data, output_buffer_limit=limit + 1)
        while True:
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise EnvelopeTooLarge("Envelope exceeds the size limit once decompressed")
            if decompressor.is_finished() or decompressor.can_accept_more_data():
                break
            chunk = decompressor.process(b"", output_buffer_limit=limit + 1 - size)
    except brotli.error as exc:
        raise EnvelopeError(f"Invalid br body: {exc}") from None
    if not decompressor.is_finished():
        raise EnvelopeError("Invalid br body: truncated stream")
    return b"".join(chunks)


@dataclass(frozen=True)
class Item:
    headers: dict[str, Any]
    payload: bytes

    @property
    def type(self) -> str:
        return str(self.headers["type"])


@dataclass(frozen=True)
class Envelope:
    headers: dict[str, Any]
    items: list[Item]


#: A ``\\uD800``-``\\uDFFF`` escape: the only way a JSON text can spell a lone surrogate.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_ONLY_NEWLINES = re.compile(rb"\n*\Z")

#: Deepest nesting of arrays and objects accepted in a header or payload: the default limit of
#: serde_json, the parser Relay is built on.
MAX_JSON_DEPTH = 128


#: Digits to ``0``, every other byte to a space: in the translated text, a run of 19 digits
#: (possibly an integer beyond 64 bits) is one substring search, several times cheaper than a
#: regular expression.
_DIGITS_TO_ZERO = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_DIGITS = b"0" * 19


def loads(data: bytes) -> Any:
    """``json.loads`` as Relay's parser (serde_json) reads JSON: a lone surrogate (``"\\ud800"``
    without its pair) is invalid, and so is nesting deeper than :data:`MAX_JSON_DEPTH`, even
    under a key nobody reads. No text column can hold a lone surrogate, and nothing deeper
    than the limit reaches code that might walk it recursively.

    Raises ``ValueError`` for all of these.
    """
    value = _fast_loads(data)
    if value is _SLOW:
        value = _json_loads(data)
    if data.count(b"{") + data.count(b"[") > MAX_JSON_DEPTH and _too_deep(value):
        raise ValueError(f"nesting deeper than {MAX_JSON_DEPTH}")
    return value


_SLOW = object()


def _fast_loads(data: bytes) -> Any:
    """orjson's reading of ``data`` (several times faster than ``json``), or :data:`_SLOW`
    where it might differ from :func:`_json_loads`'s.

    orjson reads strict UTF-8 JSON and refuses the rest (lone surrogates, ``NaN``,
    ``Infinity``, ``1e400``, a byte order mark, UTF-16): those go the slow way, which decides
    as before. The one text it accepts but reads differently is an integer beyond 64 bits
    (a float to orjson, an exact integer to json); any run of 19 digits goes the slow way too.
    ``tests/test_framing.py`` compares both on generated texts.
    """
    if _LONG_DIGITS in data.translate(_DIGITS_TO_ZERO):
        return _SLOW
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return _SLOW


def _json_loads(data: bytes) -> Any:
    """The standard library's reading, with lone surrogates refused."""
    try:
        value = json.loads(data)
        if _SURROGATE_ESCAPE.search(data):
            # Pairs were joined by json.loads; what is left alone cannot be encoded.
            json.dumps(value, ensure_ascii=False).encode()
    except (UnicodeError, RecursionError) as exc:
        raise ValueError(str(exc)) from None
    return value


def _too_deep(value: Any) -> bool:
    """Whether arrays and objects nest deeper than :data:`MAX_JSON_DEPTH`: one level at a time,
    no recursion."""
    level = [value] if isinstance(value, dict | list) else []
    depth = 1
    while level:
        if depth > MAX_JSON_DEPTH:
            return True
        below = []
        for node in level:
            for child in node.values() if isinstance(node, dict) else node:
                if isinstance(child, dict | list):
                    below.append(child)
        level = below
        depth += 1
    return False


def _json_object(line: bytes, what: str) -> dict[str, Any]:
    try:
        value = loads(line)
    except ValueError:
        raise EnvelopeError(f"Invalid envelope: {what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise EnvelopeError(f"Invalid envelope: {what} is not a JSON object")
    return value


def parse_headers(body: bytes) -> dict[str, Any]:
    """The envelope headers alone (for the ``dsn`` form of authentication)."""
    first, _, _ = body.partition(b"\n")
    return _json_object(first, "the envelope header")


def parse_envelope(body: bytes) -> Envelope:
    """Split an envelope into headers and items (develop docs, "Envelopes").

    An item with ``length`` takes exactly that many bytes, then a newline or the end; one
    without it runs to the next newline. Anything else is an :class:`EnvelopeError`; an
    envelope over a cap (``ENVELOPE_MAX_ITEMS``, ``ENVELOPE_MAX_SESSIONS``,
    ``ENVELOPE_MAX_EVENTS``, ``ENVELOPE_MAX_ITEM_BYTES``) is an :class:`EnvelopeTooLarge`,
    raised as soon as the cap is passed.
    """
    max_items = int(settings.ENVELOPE_MAX_ITEMS)
    max_item_bytes = int(settings.ENVELOPE_MAX_ITEM_BYTES)
    caps = {name: int(getattr(settings, name)) for name in set(CAPPED_TYPES.values())}
    counts = dict.fromkeys(caps, 0)
    if not body.strip():
        raise EnvelopeError("Invalid envelope: empty body")
    newline = body.find(b"\n")
    end = len(body) if newline < 0 else newline
    headers = _json_object(body[:end], "the envelope header")
    pos = end + 1
    items: list[Item] = []
    while pos < len(body):
        if _ONLY_NEWLINES.match(body, pos):
            break  # trailing newlines (matched in place: copying the rest is quadratic)
        newline = body.find(b"\n", pos)
        end = len(body) if newline < 0 else newline
        item_headers = _json_object(body[pos:end], f"item header {len(items) + 1}")
        item_type = item_headers.get("type")
        if not isinstance(item_type, str) or not item_type:
            raise EnvelopeError(f"Invalid envelope: item {len(items) + 1} has no type")
        pos = end + 1
        length = item_headers.get("length")
        if length is not None:
            if isinstance(length, bool) or not isinstance(length, int) or length < 0:
                raise EnvelopeError(f"Invalid envelope: item {len(items) + 1} has a bad length")
            if pos + length > len(body):
                raise EnvelopeError(
                    f"Invalid envelope: item {len(items) + 1} is shorter than its length"
                )
            payload = body[pos : pos + length]
            pos += length
            if pos < len(body):
                if body[pos : pos + 1] != b"\n":
                    raise EnvelopeError(
                        f"Invalid envelope: item {len(items) + 1} is longer than its length"
                    )
                pos += 1
        else:
            newline = body.find(b"\n", pos) if pos <= len(body) else -1
            end = len(body) if newline < 0 else newline
            payload = body[pos:end] if pos <= len(body) else b""
            pos = end + 1
        if len(items) >= max_items:
            raise EnvelopeTooLarge(f"Envelope has more than {max_items} items")
        cap = CAPPED_TYPES.get(item_type)
        if cap is not None:
            counts[cap] += 1
            if counts[cap] > caps[cap]:
                what = "event" if item_type == "event" else "session and sessions"
                raise EnvelopeTooLarge(f"Envelope has more than {caps[cap]} {what} items")
        if item_type in READ_TYPES and len(payload) > max_item_bytes:
            raise EnvelopeTooLarge(
                f"Item {len(items) + 1} ({item_type}) is larger than {max_item_bytes} bytes"
            )
        items.append(Item(item_headers, payload))
    return Envelope(headers, items)
