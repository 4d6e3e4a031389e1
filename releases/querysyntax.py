"""Sentry's search query grammar: turn a ``query`` string into a small, typed syntax tree.

This module is pure: no Django, no knowledge of which keys exist. It reproduces the grammar of
Sentry's ``event_search`` (docs/search.md §1) and its error messages (§2), with our
product decisions (docs/decisions.md): ``AND``, ``OR`` and parentheses are supported, ``AND``
(explicit or implicit, by adjacency) binds tighter than ``OR``, and the operator words are
case-insensitive whole words. The filter backend validates keys and gives values a meaning.

The tree
--------
``parse(text)`` returns ``None`` for a query without terms, else one :data:`Node`:

- :class:`Term` for a filter. ``op`` is the operator as *written* after the colon (``=`` when
  none was), or ``IN`` for a list, whose ``value`` is then a tuple. ``negated`` records a
  leading ``!``; it is never folded into ``op``, so ``!a:>1`` is ``op=">", negated=True``.
  ``has:x`` and ``is:x`` are ordinary terms with the key ``has`` / ``is``: the backend
  decides whether it supports them. Aggregate filters (``count():>10``, events search) are
  terms too, keyed by the normalised function text (``count()``, ``p95(a, b)``).
- :class:`FreeText` for text that is not a filter. As in Sentry (docs/search.md §1.10), a run of
  consecutive unquoted words is *one* token: the spaces inside the run are kept and the spaces
  around it are dropped, so ``hello   there`` is ``FreeText("hello   there")`` and ``1.0 (1234)``
  stays together for the backend's ``X (Y)`` build-code rule. A filter or an operator word ends the
  run. A quoted string on its own is a separate token (``\\"`` unescaped; ``""`` is dropped). Free
  text has no wildcards and no escapes beyond that: ``1.2.*`` is literal text. Several tokens are
  several leaves joined by AND; each is matched on its own (our product rule: free text is matched
  against the free-text words only, never the whole raw query).
- :class:`And` / :class:`Or` with at least two children. Same-operator chains are flattened
  and parenthesised groups are dissolved into the tree, so ``(a b) c`` is ``And(a, b, c)``.

Values, escapes and wildcards
-----------------------------
Values are unquoted, and ``\\"`` becomes ``"``; every other backslash is kept as written. An
``*`` preceded by an even number of backslashes (usually none) is a wildcard; with an odd
number it is a literal asterisk. ``Term.value`` keeps those backslashes (``foo\\*`` stays
``foo\\*``) so the two remain distinguishable; ``Term.wildcard`` is true when the value (or
any list item) has an unescaped ``*``. Consumers should not interpret backslashes themselves:
:func:`split_wildcard` gives literal chunks and :data:`WILDCARD` markers (for startswith /
endswith / contains lookups), :func:`wildcard_to_regex` an anchored regex that works in
Python and PostgreSQL, and :func:`unescape` the literal text of a value without wildcards.
In all three, a run of *n* backslashes right before ``*`` stands for ``n // 2`` literal
backslashes; backslashes anywhere else are literal.

Errors
------
Every problem raises :class:`QuerySyntaxError` with Sentry's exact message where Sentry has
one. The whole text is parsed before any key is judged, as Sentry parses first and validates
keys second: first a query that cannot be read to its end (``Parse error at …``), then filter
problems from left to right (empty values, bad quotes, empty list items, ``has:`` without a
key), then the AND/OR structure, outermost level first, and only then the keys (through
``check_key``), in order of appearance.

Deliberate differences from Sentry
----------------------------------
- A query that is only operators (``OR``, ``(AND)``) is an error, not "no condition".
- Parentheses nested more than :data:`MAX_NESTING` deep are an error (Sentry overflows).
- A bare ``"`` in an unquoted value is always an error; Sentry's check misses some forms.
- A group holding nothing but ``""`` is dropped like ``""`` itself.
- One escape rule for all values (above). Sentry resolves ``\\\\\\*`` differently with and
  without a wildcard elsewhere in the value, and drops other backslashes in wildcard values.
- The UI-only contains/starts-with markers (U+F00D) are not recognised.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

__all__ = [
    "MAX_NESTING",
    "WILDCARD",
    "And",
    "FreeText",
    "Node",
    "Or",
    "QuerySyntaxError",
    "Term",
    "Wildcard",
    "has_wildcard",
    "parse",
    "split_wildcard",
    "unescape",
    "wildcard_to_regex",
]

MAX_NESTING: Final = 50
"""Deepest nesting of parentheses (or of ``tags[…]`` keys) that :func:`parse` accepts."""


class QuerySyntaxError(ValueError):
    """A query that cannot be parsed; ``str(exc)`` is the message to show the user.

    ``position`` is the 0-based offset in the query of the character the problem is about
    (where parsing stopped, the value, the empty list item, the operator word), or ``None``
    when the error has no single place (for example one raised by a key check).
    """

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Term:
    """A ``key:value`` filter. See the module docstring for ``op``, ``value`` and escapes."""

    key: str
    op: str
    value: str | tuple[str, ...]
    negated: bool
    wildcard: bool = False
    quoted: bool = False


@dataclass(frozen=True)
class FreeText:
    """Text that is not a filter, matched as a whole (one run of words or one quoted string)."""

    text: str


@dataclass(frozen=True)
class And:
    """All children must match. Never nested directly in another ``And``."""

    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    """At least one child must match. Never nested directly in another ``Or``."""

    children: tuple[Node, ...]


Node: TypeAlias = Term | FreeText | And | Or


class Wildcard(enum.Enum):
    """The type of :data:`WILDCARD`, the marker for an unescaped ``*``."""

    STAR = "*"


WILDCARD: Final = Wildcard.STAR

# Sentry's exact messages (docs/search.md §2).
_PARSE_ERROR: Final = (
    "Parse error at '{context}' (column {column}). This is commonly caused by unmatched "
    "parentheses. Enclose any text in double quotes."
)
_EMPTY_LIST_ITEM: Final = "Lists should not have empty values"
_EMPTY_VALUE: Final = "Empty string after '{key}:'"
_INVALID_QUOTE: Final = "Invalid quote at '{value}': quotes must enclose text or be escaped."
_HAS_WITHOUT_KEY: Final = 'Invalid format for "has" search: was expecting a field or tag instead'
_MISSING_LEFT: Final = "Condition is missing on the left side of '{op}' operator"
_MISSING_RIGHT: Final = "Condition is missing on the right side of '{op}' operator"
_MISSING_BETWEEN: Final = "Missing condition in between two condition operators: '{left} {right}'"
# Ours: Sentry has no limit and fails with a server error instead.
_TOO_DEEP: Final = "Parentheses are nested too deeply: at most {limit} levels are supported."

# Token patterns, copied rule for rule from Sentry's grammar. The possessive ``*+`` keeps
# the regexes from backtracking into an escaped quote, which the PEG grammar never does.
_KEY_RE: Final = re.compile(r"[a-zA-Z0-9_.-]+")
_QUOTED_KEY_RE: Final = re.compile(r'"([a-zA-Z0-9_.:-]+)"')
_QUOTED_VALUE_RE: Final = re.compile(r'"((?:\\"|[^"])*+)"')
_VALUE_RE: Final = re.compile(r"[^()\t\n ]*")
_FREE_WORD_RE: Final = re.compile(r"[^()\n ]+")
_OR_RE: Final = re.compile(r"OR", re.IGNORECASE)
_AND_RE: Final = re.compile(r"AND", re.IGNORECASE)
_NUMERIC_RE: Final = re.compile(r"[0-9]+(?:\.[0-9]*)?")
_NUMERIC_UNIT_RE: Final = re.compile(r"[kmb]", re.IGNORECASE)
_BOOLEAN_RE: Final = re.compile(r"true|1|false|0", re.IGNORECASE)
_SIZE_UNIT_RES: Final = (
    re.compile(r"bit|kib|mib|gib|tib|pib|eib|zib|yib", re.IGNORECASE),
    re.compile(r"bytes|nb|kb|mb|gb|tb|pb|eb|zb|yb", re.IGNORECASE),
)
_DURATION_UNITS: Final = ("ms", "s", "min", "m", "hr", "h", "day", "d", "wk", "w")
_DATE_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME_RE: Final = re.compile(r"T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?")
_TIMEZONE_RE: Final = re.compile(r"Z|[+-]\d{2}:\d{2}")
_RELATIVE_DATE_RE: Final = re.compile(r"[+-][0-9]+[wdhm]")
_RAW_PARAM_RE: Final = re.compile(r'[^()\t\n, "]+')
_QUOTED_PARAM_RE: Final = re.compile(r'"((?:\\"|[^\t\n"])*+)"')
# Every filter form starts like this (a key followed by ":", or by "(" / "[" for aggregate
# and explicit keys); checking it first keeps ordinary free-text words cheap.
_FILTER_START_RE: Final = re.compile(r'!?(?:"[a-zA-Z0-9_.:-]+":|[a-zA-Z0-9_.-]+[:(\[])')
_OPERATORS: Final = (">=", "<=", ">", "<", "=", "!=")  # longest match first
_END_OF_VALUE: Final = "\t\n )"
_NOT_IN_LIST_ITEM: Final = "(), "

_WILDCARD_RE: Final = re.compile(r"(?<!\\)(?:\\\\)*\*")
_STAR_RE: Final = re.compile(r"(\\*)\*")


def parse(text: str, *, check_key: Callable[[str], object] | None = None) -> Node | None:
    """Parse a search query into a tree; ``None`` when it has no terms (empty, spaces, ``""``).

    Only U+0020 separates terms; a tab is part of the text around it and a newline outside
    quotes is a parse error, as in Sentry.

    ``check_key``, when given, is called with the key of every :class:`Term` in query order
    (including ``has``, ``is`` and aggregate keys), once the whole query is known to be
    well-formed: a syntax error anywhere (quotes, empty values or list items, dangling or
    doubled operators, parentheses) wins over an unknown key, as in Sentry.

    Raises :class:`QuerySyntaxError`.
    """
    items = _Parser(text).parse_query()
    _check_filters(items)
    tree = _resolve(items) if items else None
    if check_key is not None:
        _check_keys(items, check_key)
    return tree


def has_wildcard(value: str) -> bool:
    """Whether a value has an unescaped ``*`` (one after an even number of backslashes)."""
    return _WILDCARD_RE.search(value) is not None


def split_wildcard(value: str) -> list[str | Wildcard]:
    """Split a value into literal chunks and :data:`WILDCARD` markers.

    Escapes are resolved (``a\\*b`` → ``["a*b"]``); empty chunks are left out and adjacent
    wildcards collapse into one, so ``*foo*`` is ``[WILDCARD, "foo", WILDCARD]``.
    """
    parts: list[str | Wildcard] = []
    literal = ""
    last = 0
    for match in _STAR_RE.finditer(value):
        backslashes = len(match.group(1))
        literal += value[last : match.start()] + "\\" * (backslashes // 2)
        if backslashes % 2:
            literal += "*"
        else:
            if literal:
                parts.append(literal)
                literal = ""
            if not parts or parts[-1] is not WILDCARD:
                parts.append(WILDCARD)
        last = match.end()
    literal += value[last:]
    if literal:
        parts.append(literal)
    return parts


def unescape(value: str) -> str:
    """The literal text of a value: escaped asterisks lose their backslash.

    Meant for values without wildcards; any unescaped ``*`` is returned as ``*``.
    """
    return _STAR_RE.sub(lambda match: "\\" * (len(match.group(1)) // 2) + "*", value)


def wildcard_to_regex(value: str) -> str:
    """An anchored regex for a value: ``*`` becomes ``.*`` and everything else is literal.

    The escaping (``re.escape``) is valid both for Python's ``re`` and for PostgreSQL's
    ``~`` operator, so the result can go to Django's ``__regex`` / ``__iregex`` lookups.
    """
    body = "".join(".*" if part is WILDCARD else re.escape(part) for part in split_wildcard(value))
    return f"^{body}$"


# --- Raw parse: the grammar's terms, before the boolean structure is resolved ---------------


@dataclass(frozen=True)
class _Filter:
    term: Term
    # The first problem Sentry's visitor would report for this filter, as (message,
    # position). It is kept, not raised, because the parser also tries filters it then
    # throws away (the "is this word a filter?" look-ahead in free text).
    error: tuple[str, int] | None = None


@dataclass(frozen=True)
class _Operator:
    word: str  # "AND" or "OR", upper-cased
    position: int


@dataclass(frozen=True)
class _Group:
    items: tuple[_Item, ...]


_Item: TypeAlias = _Filter | FreeText | _Operator | _Group


@dataclass(frozen=True)
class _Scalar:
    value: str
    end: int
    quoted: bool = False
    error: tuple[str, int] | None = None


@dataclass(frozen=True)
class _List:
    items: tuple[str, ...]
    end: int
    quoted: bool
    empty_at: int | None


_Format: TypeAlias = Callable[[int], int | None]


class _Parser:
    """A recursive-descent rendering of Sentry's PEG grammar (ordered choice, no backtracking
    into a choice that matched), memoised by position so that the free-text look-aheads stay
    linear."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.length = len(text)
        self.paren_depth = 0
        self.key_depth = 0
        self.term_memo: dict[int, tuple[_Item | None, int] | None] = {}
        self.filter_memo: dict[int, tuple[_Filter, int] | None] = {}
        self.free_text_memo: dict[int, tuple[FreeText | None, int] | None] = {}
        # Every filter form starts by reading a key, so keys are read once per position.
        self.search_key_memo: dict[int, tuple[str, int] | None] = {}
        self.text_key_memo: dict[int, tuple[str, int] | None] = {}

    def parse_query(self) -> list[_Item]:
        """``search = spaces term*``; the whole input must be consumed."""
        position = self.spaces(0)
        items: list[_Item] = []
        while position < self.length:
            term = self.term(position)
            if term is None:
                break
            item, position = term
            if item is not None:
                items.append(item)
        if position < self.length:
            raise _parse_error(self.text, position)
        return items

    # --- Characters ---

    def at(self, position: int, literal: str) -> bool:
        return self.text.startswith(literal, position)

    def spaces(self, position: int) -> int:
        while position < self.length and self.text[position] == " ":
            position += 1
        return position

    def at_end_of_value(self, position: int) -> bool:
        return position >= self.length or self.text[position] in _END_OF_VALUE

    def regex(self, pattern: re.Pattern[str], position: int) -> int | None:
        match = pattern.match(self.text, position)
        return match.end() if match else None

    # --- Terms ---

    def term(self, position: int) -> tuple[_Item | None, int] | None:
        """``term = (boolean_operator / paren_group / filter / free_text) spaces``.

        The item is ``None`` for a term that stands for nothing (``""``, ``("")``).
        """
        if position in self.term_memo:
            return self.term_memo[position]
        found: tuple[_Item | None, int] | None = (
            self.boolean_operator(position)
            or self.paren_group(position)
            or self.filter(position)
            or self.free_text(position)
        )
        result = None if found is None else (found[0], self.spaces(found[1]))
        self.term_memo[position] = result
        return result

    def boolean_operator(self, position: int) -> tuple[_Operator, int] | None:
        for word, pattern in (("OR", _OR_RE), ("AND", _AND_RE)):
            end = self.regex(pattern, position)
            if end is not None and self.at_end_of_value(end):
                return _Operator(word, position), end
        return None

    def paren_group(self, position: int) -> tuple[_Group | None, int] | None:
        """``paren_group = "(" spaces term+ ")"``."""
        if not self.at(position, "("):
            return None
        self.enter_parens(position)
        try:
            cursor = self.spaces(position + 1)
            items: list[_Item] = []
            matched = False
            while (term := self.term(cursor)) is not None:
                item, cursor = term
                matched = True
                if item is not None:
                    items.append(item)
        finally:
            self.paren_depth -= 1
        if not matched or not self.at(cursor, ")"):
            return None
        return (_Group(tuple(items)) if items else None), cursor + 1

    def enter_parens(self, position: int) -> None:
        # Each level costs a few Python frames; stop well before the interpreter's limit.
        if self.paren_depth >= MAX_NESTING:
            raise QuerySyntaxError(_TOO_DEEP.format(limit=MAX_NESTING), position)
        self.paren_depth += 1

    def free_text(self, position: int) -> tuple[FreeText | None, int] | None:
        """``quoted_value / (!filter !boolean_operator (free_parens / word) spaces)+``."""
        if position in self.free_text_memo:
            return self.free_text_memo[position]
        result: tuple[FreeText | None, int] | None
        quoted = self.quoted_value(position)
        if quoted is not None:
            result = (FreeText(quoted.value) if quoted.value else None), quoted.end
        else:
            cursor = position
            while self.filter(cursor) is None and self.boolean_operator(cursor) is None:
                end = self.free_parens(cursor)
                if end is None:
                    end = self.regex(_FREE_WORD_RE, cursor)
                if end is None:
                    break
                cursor = self.spaces(end)
            text = self.text[position:cursor].strip(" ")
            result = (FreeText(text), cursor) if cursor > position else None
        self.free_text_memo[position] = result
        return result

    def free_parens(self, position: int) -> int | None:
        """``free_parens = "(" free_text? ")"``: balanced parentheses inside free text."""
        if not self.at(position, "("):
            return None
        self.enter_parens(position)
        try:
            inner = self.free_text(position + 1)
        finally:
            self.paren_depth -= 1
        cursor = position + 1 if inner is None else inner[1]
        return cursor + 1 if self.at(cursor, ")") else None

    # --- Filters, in Sentry's order of alternatives ---

    def filter(self, position: int) -> tuple[_Filter, int] | None:
        """Try every filter form in Sentry's order; the first that matches wins.

        The typed forms (dates, durations, numbers…) rarely change the outcome, since terms
        keep the written text, but they decide where a value ends: ``a:1,2`` is the number
        ``a:1`` followed by the free text ``,2``, exactly as in Sentry.
        """
        if position in self.filter_memo:
            return self.filter_memo[position]
        if _FILTER_START_RE.match(self.text, position) is None:
            self.filter_memo[position] = None
            return None
        result = (
            self.typed_filter(position, False, "required", self.iso_date)
            or self.typed_filter(position, False, "none", self.iso_date)
            or self.typed_filter(position, False, "none", self.relative_date)
            or self.typed_filter(position, True, "optional", self.duration)
            or self.typed_filter(position, True, "optional", self.size)
            or self.typed_filter(position, True, "none", self.boolean)
            or self.list_filter(position, self.search_key, self.numeric_item)
            or self.typed_filter(position, True, "optional", self.numeric_value)
            or self.aggregate_filter(position)
            or self.has_filter(position)
            or self.is_filter(position)
            or self.list_filter(position, self.text_key, self.text_item)
            or self.text_filter(position)
        )
        self.filter_memo[position] = result
        return result

    def key_and_separator(
        self, position: int, negatable: bool, key: Callable[[int], tuple[str, int] | None]
    ) -> tuple[bool, str, int] | None:
        """``negation? key ":"``: (negated, key name, position after the colon)."""
        negated = negatable and self.at(position, "!")
        found = key(position + 1 if negated else position)
        if found is None or not self.at(found[1], ":"):
            return None
        return negated, found[0], found[1] + 1

    def operator(self, position: int) -> tuple[str, int]:
        """``operator?``: the written operator (``=`` when there is none) and where it ends."""
        for operator in _OPERATORS:
            if self.at(position, operator):
                return operator, position + len(operator)
        return "=", position

    def typed_filter(
        self,
        position: int,
        negatable: bool,
        operator: Literal["none", "optional", "required"],
        value_format: _Format,
    ) -> tuple[_Filter, int] | None:
        head = self.key_and_separator(position, negatable, self.search_key)
        if head is None:
            return None
        negated, key, cursor = head
        op = "="
        if operator != "none":
            op, after = self.operator(cursor)
            if after == cursor and operator == "required":
                return None
            cursor = after
        end = value_format(cursor)
        if end is None:
            return None
        return _Filter(Term(key, op, self.text[cursor:end], negated)), end

    def aggregate_filter(self, position: int) -> tuple[_Filter, int] | None:
        """``negation? function(args) ":" operator? value``, value typed as in Sentry."""
        negated = self.at(position, "!")
        found = self.aggregate_key(position + 1 if negated else position)
        if found is None:
            return None
        key, cursor, error = found
        if not self.at(cursor, ":"):
            return None
        op, cursor = self.operator(cursor + 1)
        for value_format in (
            self.duration,
            self.percentage,
            self.numeric_value,
            self.size,
            self.iso_date,
            self.relative_date,
        ):
            end = value_format(cursor)
            if end is not None:
                return _Filter(Term(key, op, self.text[cursor:end], negated), error), end
        return None

    def has_filter(self, position: int) -> tuple[_Filter, int] | None:
        """``negation? "has:" (search_key / search_value)``; only a key is valid after it."""
        negated = self.at(position, "!")
        cursor = position + 1 if negated else position
        if not self.at(cursor, "has:"):
            return None
        cursor += len("has:")
        key = self.search_key(cursor)
        if key is not None:
            quoted = self.at(cursor, '"')
            return _Filter(Term("has", "=", key[0], negated, quoted=quoted)), key[1]
        value = self.search_value(cursor)
        error = value.error or (_HAS_WITHOUT_KEY, cursor)
        term = Term("has", "=", value.value, negated, quoted=value.quoted)
        return _Filter(term, error), value.end

    def is_filter(self, position: int) -> tuple[_Filter, int] | None:
        """``negation? "is:" search_value``; what ``is`` means is up to the backend."""
        negated = self.at(position, "!")
        cursor = position + 1 if negated else position
        if not self.at(cursor, "is:"):
            return None
        value = self.search_value(cursor + len("is:"))
        wildcard = has_wildcard(value.value)
        term = Term("is", "=", value.value, negated, wildcard=wildcard, quoted=value.quoted)
        return _Filter(term, value.error), value.end

    def list_filter(
        self,
        position: int,
        key: Callable[[int], tuple[str, int] | None],
        item: Callable[[int], _Scalar | None],
    ) -> tuple[_Filter, int] | None:
        """``negation? key ":" "[" item ("," item?)* "]"`` followed by the end of the value."""
        head = self.key_and_separator(position, True, key)
        if head is None:
            return None
        negated, name, cursor = head
        found = self.in_list(cursor, item)
        if found is None:
            return None
        wildcard = any(has_wildcard(value) for value in found.items)
        term = Term(name, "IN", found.items, negated, wildcard=wildcard, quoted=found.quoted)
        error = None if found.empty_at is None else (_EMPTY_LIST_ITEM, found.empty_at)
        return _Filter(term, error), found.end

    def text_filter(self, position: int) -> tuple[_Filter, int] | None:
        """``negation? text_key ":" operator? search_value``, the catch-all filter."""
        head = self.key_and_separator(position, True, self.text_key)
        if head is None:
            return None
        negated, key, cursor = head
        op, cursor = self.operator(cursor)
        value = self.search_value(cursor)
        error = value.error
        if error is None and not value.value and not value.quoted:
            error = (_EMPTY_VALUE.format(key=key), cursor)
        wildcard = has_wildcard(value.value)
        term = Term(key, op, value.value, negated, wildcard=wildcard, quoted=value.quoted)
        return _Filter(term, error), value.end

    # --- Keys ---

    def search_key(self, position: int) -> tuple[str, int] | None:
        """``explicit_number_flag_key / explicit_number_tag_key / key / quoted_key``."""
        if position not in self.search_key_memo:
            self.search_key_memo[position] = (
                self.explicit_key(position, "flags", "number")
                or self.explicit_key(position, "tags", "number")
                or self.plain_key(position)
                or self.quoted_key(position)
            )
        return self.search_key_memo[position]

    def text_key(self, position: int) -> tuple[str, int] | None:
        """The keys allowed on text filters: also ``tags[x]``, ``tags[x,string]`` and flags."""
        if position not in self.text_key_memo:
            self.text_key_memo[position] = (
                self.explicit_key(position, "flags", None)
                or self.explicit_key(position, "flags", "string")
                or self.explicit_key(position, "tags", None)
                or self.explicit_key(position, "tags", "string")
                or self.search_key(position)
            )
        return self.text_key_memo[position]

    def plain_key(self, position: int) -> tuple[str, int] | None:
        end = self.regex(_KEY_RE, position)
        return None if end is None else (self.text[position:end], end)

    def quoted_key(self, position: int) -> tuple[str, int] | None:
        match = _QUOTED_KEY_RE.match(self.text, position)
        return None if match is None else (match.group(1), match.end())

    def explicit_key(self, position: int, prefix: str, kind: str | None) -> tuple[str, int] | None:
        """``prefix "[" search_key ("," kind)? "]"``, named like Sentry: ``tags[x,number]``."""
        if not self.at(position, f"{prefix}[") or self.key_depth >= MAX_NESTING:
            return None
        self.key_depth += 1
        try:
            inner = self.search_key(position + len(prefix) + 1)
        finally:
            self.key_depth -= 1
        if inner is None:
            return None
        name, cursor = inner
        if kind is not None:
            cursor = self.spaces(cursor)
            if not self.at(cursor, ","):
                return None
            cursor = self.spaces(cursor + 1)
            if not self.at(cursor, kind):
                return None
            cursor += len(kind)
            name = f"{name},{kind}"
        if not self.at(cursor, "]"):
            return None
        return f"{prefix}[{name}]", cursor + 1

    def aggregate_key(self, position: int) -> tuple[str, int, tuple[str, int] | None] | None:
        """``key "(" spaces args? spaces ")"``, normalised to ``name(a, b)`` as in Sentry."""
        name_end = self.regex(_KEY_RE, position)
        if name_end is None or not self.at(name_end, "("):
            return None
        cursor = self.spaces(name_end + 1)
        params: list[str] = []
        error: tuple[str, int] | None = None
        first = self.aggregate_param(cursor)
        if first is not None:
            params.append(first[0])
            cursor = first[1]
            while True:
                after_comma = self.comma(cursor)
                if after_comma is None:
                    break
                param = self.aggregate_param(after_comma)
                if param is None:
                    error = error or (_EMPTY_LIST_ITEM, after_comma)
                    cursor = after_comma
                else:
                    params.append(param[0])
                    cursor = param[1]
        cursor = self.spaces(cursor)
        if not self.at(cursor, ")"):
            return None
        return f"{self.text[position:name_end]}({', '.join(params)})", cursor + 1, error

    def aggregate_param(self, position: int) -> tuple[str, int] | None:
        quoted = _QUOTED_PARAM_RE.match(self.text, position)
        if quoted is not None:
            return f'"{quoted.group(1)}"', quoted.end()
        end = self.regex(_RAW_PARAM_RE, position)
        return None if end is None else (self.text[position:end], end)

    def comma(self, position: int) -> int | None:
        """``spaces "," spaces !","``: where the next list item starts, if there is one."""
        cursor = self.spaces(position)
        if not self.at(cursor, ","):
            return None
        cursor = self.spaces(cursor + 1)
        return None if self.at(cursor, ",") else cursor

    # --- Values ---

    def quoted_value(self, position: int) -> _Scalar | None:
        """``'"' ('\\"' / [^"])* '"'``, with ``\\"`` unescaped."""
        match = _QUOTED_VALUE_RE.match(self.text, position)
        if match is None:
            return None
        return _Scalar(match.group(1).replace('\\"', '"'), match.end(), quoted=True)

    def search_value(self, position: int) -> _Scalar:
        """``quoted_value / [^()\\t\\n ]*``; a bare ``"`` in an unquoted value is an error."""
        quoted = self.quoted_value(position)
        if quoted is not None:
            return quoted
        # The pattern also matches the empty string, so ``or`` only satisfies the type.
        end = self.regex(_VALUE_RE, position) or position
        raw = self.text[position:end]
        error = None
        if any(char == '"' and (i == 0 or raw[i - 1] != "\\") for i, char in enumerate(raw)):
            error = (_INVALID_QUOTE.format(value=raw), position)
        return _Scalar(raw.replace('\\"', '"'), end, error=error)

    def in_list(self, position: int, item: Callable[[int], _Scalar | None]) -> _List | None:
        """``"[" item (spaces "," spaces !"," item?)* "]" &end_value``."""
        if not self.at(position, "["):
            return None
        first = item(position + 1)
        if first is None:
            return None
        values = [first.value]
        quoted = first.quoted
        empty_at: int | None = None
        cursor = first.end
        while (after_comma := self.comma(cursor)) is not None:
            found = item(after_comma)
            if found is None:
                empty_at = after_comma if empty_at is None else empty_at
                cursor = after_comma
            else:
                values.append(found.value)
                quoted = quoted or found.quoted
                cursor = found.end
        if not self.at(cursor, "]") or not self.at_end_of_value(cursor + 1):
            return None
        return _List(tuple(values), cursor + 1, quoted, empty_at)

    def text_item(self, position: int) -> _Scalar | None:
        """A list item: a quoted string, or characters up to ``]`` or ``,`` (``in_value``).

        Sentry accepts a character only if a ``]`` or a comma comes before the next space or
        parenthesis, which is what keeps ``[h e]`` from being a list; brackets inside an
        item are kept (``[[h]]`` is the item ``[h]``).
        """
        quoted = self.quoted_value(position)
        if quoted is not None:
            return quoted
        cursor = position
        while cursor < self.length and self.text[cursor] not in _NOT_IN_LIST_ITEM:
            # Every character from here to the next list end (or list-breaking character)
            # has the same look-ahead outcome, so the run is accepted or refused at once.
            stop = cursor + 1
            while (
                stop < self.length
                and self.text[stop] not in _NOT_IN_LIST_ITEM
                and not self.at(stop, "]")
            ):
                stop += 1
            if not (self.at(stop, "]") or self.at(self.spaces(stop), ",")):
                break
            cursor = stop
        if cursor == position:
            return None
        return _Scalar(self.text[position:cursor].replace('\\"', '"'), cursor)

    def numeric_item(self, position: int) -> _Scalar | None:
        end = self.numeric_value(position)
        return None if end is None else _Scalar(self.text[position:end], end)

    # --- Typed value formats: each returns where the value ends, or None ---

    def numeric(self, position: int) -> int | None:
        return self.regex(_NUMERIC_RE, position)

    def numeric_value(self, position: int) -> int | None:
        """``"-"? numeric [kmb]? &(end_value / "," / "]")``."""
        end = self.numeric(position + 1 if self.at(position, "-") else position)
        if end is None:
            return None
        end = self.regex(_NUMERIC_UNIT_RE, end) or end
        if self.at_end_of_value(end) or self.at(end, ",") or self.at(end, "]"):
            return end
        return None

    def duration(self, position: int) -> int | None:
        end = self.numeric(position)
        if end is None:
            return None
        for unit in _DURATION_UNITS:
            if self.at(end, unit):
                end += len(unit)
                return end if self.at_end_of_value(end) else None
        return None

    def size(self, position: int) -> int | None:
        end = self.numeric(position)
        if end is None:
            return None
        for pattern in _SIZE_UNIT_RES:
            unit_end = self.regex(pattern, end)
            if unit_end is not None:
                return unit_end if self.at_end_of_value(unit_end) else None
        return None

    def percentage(self, position: int) -> int | None:
        end = self.numeric(position)
        return end + 1 if end is not None and self.at(end, "%") else None

    def boolean(self, position: int) -> int | None:
        end = self.regex(_BOOLEAN_RE, position)
        return end if end is not None and self.at_end_of_value(end) else None

    def iso_date(self, position: int) -> int | None:
        end = self.regex(_DATE_RE, position)
        if end is None:
            return None
        end = self.regex(_TIME_RE, end) or end
        end = self.regex(_TIMEZONE_RE, end) or end
        return end if self.at_end_of_value(end) else None

    def relative_date(self, position: int) -> int | None:
        end = self.regex(_RELATIVE_DATE_RE, position)
        return end if end is not None and self.at_end_of_value(end) else None


def _parse_error(text: str, position: int) -> QuerySyntaxError:
    """Sentry's message for input it cannot read to the end.

    The column is 1-based and counted from the last newline (parsimonious' ``column()``), and
    Sentry then slices the context using that column as if it were an offset; both quirks
    are kept so the message matches Sentry's character for character.
    """
    newline = text.rfind("\n", 0, position)
    column = position - newline if newline >= 0 else position + 1
    context = text[max(0, column - 5) : column + 5]
    return QuerySyntaxError(_PARSE_ERROR.format(context=context, column=column), position)


# --- Checking and resolving the raw terms ----------------------------------------------------


def _check_filters(items: Sequence[_Item]) -> None:
    """Report the first malformed filter value, left to right."""
    for item in items:
        if isinstance(item, _Filter):
            if item.error is not None:
                raise QuerySyntaxError(*item.error)
        elif isinstance(item, _Group):
            _check_filters(item.items)


def _check_keys(items: Sequence[_Item], check_key: Callable[[str], object]) -> None:
    """Call ``check_key`` with every filter's key, left to right (groups included)."""
    for item in items:
        if isinstance(item, _Filter):
            check_key(item.term.key)
        elif isinstance(item, _Group):
            _check_keys(item.items, check_key)


def _resolve(items: Sequence[_Item]) -> Node:
    """Apply AND/OR precedence to one level of terms (Sentry's builder, flattened).

    The level is validated before any group inside it, and groups left to right, so the
    reported error is the one Sentry reports.
    """
    previous: _Item | None = None
    for item in items:
        if isinstance(item, _Operator):
            if previous is None:
                raise QuerySyntaxError(_MISSING_LEFT.format(op=item.word), item.position)
            if isinstance(previous, _Operator):
                message = _MISSING_BETWEEN.format(left=previous.word, right=item.word)
                raise QuerySyntaxError(message, item.position)
        previous = item
    if isinstance(previous, _Operator):
        raise QuerySyntaxError(_MISSING_RIGHT.format(op=previous.word), previous.position)

    alternatives: list[list[Node]] = [[]]
    for item in items:
        if isinstance(item, _Operator):
            if item.word == "OR":
                alternatives.append([])
        elif isinstance(item, _Group):
            alternatives[-1].append(_resolve(item.items))
        elif isinstance(item, _Filter):
            alternatives[-1].append(item.term)
        else:
            alternatives[-1].append(item)
    return _combine(Or, [_combine(And, conjunction) for conjunction in alternatives])


def _combine(kind: type[And] | type[Or], children: Sequence[Node]) -> Node:
    """One node for ``children`` joined by ``kind``, splicing in children of the same kind."""
    flat: list[Node] = []
    for child in children:
        if isinstance(child, kind):
            flat.extend(child.children)
        else:
            flat.append(child)
    return flat[0] if len(flat) == 1 else kind(tuple(flat))
