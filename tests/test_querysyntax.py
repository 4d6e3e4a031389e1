"""Tests for the search query parser (docs/search.md §1 and §2, docs/decisions.md)."""

from __future__ import annotations

import dataclasses
import re

import pytest

from releases.querysyntax import (
    MAX_NESTING,
    WILDCARD,
    And,
    FreeText,
    Node,
    Or,
    QuerySyntaxError,
    Term,
    Wildcard,
    has_wildcard,
    parse,
    split_wildcard,
    unescape,
    wildcard_to_regex,
)


def t(
    key: str,
    value: str | tuple[str, ...],
    op: str = "=",
    *,
    negated: bool = False,
    wildcard: bool = False,
    quoted: bool = False,
) -> Term:
    return Term(key, op, value, negated, wildcard=wildcard, quoted=quoted)


def ft(text: str) -> FreeText:
    return FreeText(text)


def and_(*children: Node) -> And:
    return And(children)


def or_(*children: Node) -> Or:
    return Or(children)


def parse_error(context: str, column: int) -> str:
    return (
        f"Parse error at '{context}' (column {column}). This is commonly caused by unmatched "
        "parentheses. Enclose any text in double quotes."
    )


def assert_parses(query: str, expected: Node | None) -> None:
    assert parse(query) == expected


def assert_rejects(query: str, message: str, position: int | None) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse(query)

    assert str(info.value) == message
    assert info.value.message == message
    assert info.value.position == position


# --- Empty queries ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["", " ", "     ", '""', '"" ""', '("")', ' "" '],
)
def test_parse_returns_none_when_query_has_no_terms(query: str) -> None:
    assert parse(query) is None


# --- key:value -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("release:foo", t("release", "foo")),
        ("release.version:1.2.3", t("release.version", "1.2.3")),
        ("user.email:foo@example.com", t("user.email", "foo@example.com")),
        ("project_id:123", t("project_id", "123")),
        ("some-key:v", t("some-key", "v")),
        ("Release:foo", t("Release", "foo")),
        ("HAS:release", t("HAS", "release")),
        ('"hi:there":value', t("hi:there", "value")),
        ("tags[project_id]:123", t("tags[project_id]", "123")),
        ("tags[foo,string]:bar", t("tags[foo,string]", "bar")),
        ("tags[foo,number]:1", t("tags[foo,number]", "1")),
        ("tags[foo , number]:1", t("tags[foo,number]", "1")),
        ('tags["a:b"]:c', t("tags[a:b]", "c")),
        ("flags[beta]:on", t("flags[beta]", "on")),
        ("flags[beta,string]:on", t("flags[beta,string]", "on")),
        ("flags[beta,number]:2", t("flags[beta,number]", "2")),
        ("url:http://example.com/a?b=c", t("url", "http://example.com/a?b=c")),
        ("foo:bar:baz", t("foo", "bar:baz")),
        ("release:frontend@1.2.3+456", t("release", "frontend@1.2.3+456")),
        ("key:[]", t("key", "[]")),
        ("user.email:[a@b.com]user.email:x", t("user.email", "[a@b.com]user.email:x")),
        ("release:ünïcødé", t("release", "ünïcødé")),
        ("release:2024-01-01", t("release", "2024-01-01")),
        ("release.created:-7d", t("release.created", "-7d")),
        ("finalized:true", t("finalized", "true")),
        ("finalized:TRUE", t("finalized", "TRUE")),
        ("transaction.duration:5s", t("transaction.duration", "5s")),
        ("release:a b:c", and_(t("release", "a"), t("b", "c"))),
        ("release:1.2.3,4", t("release", "1.2.3,4")),
        # Sentry's numeric rule ends a number at "," or "]"; the rest is free text.
        ("a:1,2", and_(t("a", "1"), ft(",2"))),
        ("a:1]", and_(t("a", "1"), ft("]"))),
        ("a:-1.5k,x", and_(t("a", "-1.5k"), ft(",x"))),
    ],
)
def test_parse_reads_filter_when_key_colon_value(query: str, expected: Node) -> None:
    assert_parses(query, expected)


# --- Negation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("!release:foo", t("release", "foo", negated=True)),
        ("!release.version:>1.2.3", t("release.version", "1.2.3", ">", negated=True)),
        ("!release:!=foo", t("release", "foo", "!=", negated=True)),
        ("!release:[a,b]", t("release", ("a", "b"), "IN", negated=True)),
        ("!has:release", t("has", "release", negated=True)),
        ("!release.created:2024-01-01", t("release.created", "2024-01-01", negated=True)),
        ("!finalized:true", t("finalized", "true", negated=True)),
        ('!"hi:there":x', t("hi:there", "x", negated=True)),
        ("!tags[a]:b", t("tags[a]", "b", negated=True)),
        ("!count():>1", t("count()", "1", ">", negated=True)),
        ("release:!foo", t("release", "!foo")),
        ("!!release:foo", ft("!!release:foo")),
        ("! release:foo", and_(ft("!"), t("release", "foo"))),
        ("!(a OR b)", and_(ft("!"), or_(ft("a"), ft("b")))),
    ],
)
def test_parse_records_negation_when_key_has_bang(query: str, expected: Node) -> None:
    assert_parses(query, expected)


# --- Comparison operators ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("release.version:1", t("release.version", "1")),
        ("release.version:=1", t("release.version", "1", "=")),
        ("release.version:>1", t("release.version", "1", ">")),
        ("release.version:>=1", t("release.version", "1", ">=")),
        ("release.version:<1", t("release.version", "1", "<")),
        ("release.version:<=1", t("release.version", "1", "<=")),
        ("release.version:!=1", t("release.version", "1", "!=")),
        ("release.version:==1", t("release.version", "=1", "=")),
        ("release.version:>>1", t("release.version", ">1", ">")),
        ("release.version:=>1", t("release.version", ">1", "=")),
        ("release.version:<>1", t("release.version", ">1", "<")),
        ("release.version:>=<1", t("release.version", "<1", ">=")),
        ("release.version:!1", t("release.version", "!1")),
        ('release.version:>"1 2"', t("release.version", "1 2", ">", quoted=True)),
        ("release.version:>[1,2]", t("release.version", "[1,2]", ">")),
        ("release.build:>124", t("release.build", "124", ">")),
        ("random:>hello", t("random", "hello", ">")),
        ("release.stage:>adopted", t("release.stage", "adopted", ">")),
        ("release.created:>2024-01-01", t("release.created", "2024-01-01", ">")),
        (
            "release.created:<=2024-01-01T10:00:00.123+02:00",
            t("release.created", "2024-01-01T10:00:00.123+02:00", "<="),
        ),
        ("transaction.duration:>=5s", t("transaction.duration", "5s", ">=")),
    ],
)
def test_parse_keeps_written_operator_when_comparison(query: str, expected: Node) -> None:
    assert_parses(query, expected)


# --- Lists ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("release:[a,b]", t("release", ("a", "b"), "IN")),
        ("release:[a, b]", t("release", ("a", "b"), "IN")),
        ("release:[a ,b]", t("release", ("a", "b"), "IN")),
        ("release:[a  ,  b]", t("release", ("a", "b"), "IN")),
        ("release:[a]", t("release", ("a",), "IN")),
        ('release:["a b",c]', t("release", ("a b", "c"), "IN", quoted=True)),
        ('release:["a\\"b"]', t("release", ('a"b',), "IN", quoted=True)),
        ('release:[a\\"b]', t("release", ('a"b',), "IN")),
        ('release:["(x)", "y,z"]', t("release", ("(x)", "y,z"), "IN", quoted=True)),
        ("release:[a*,b]", t("release", ("a*", "b"), "IN", wildcard=True)),
        ("release:[a\\*,b]", t("release", ("a\\*", "b"), "IN")),
        ("test:[[h]]", t("test", ("[h]",), "IN")),
        ("project.id:[1,2,3]", t("project.id", ("1", "2", "3"), "IN")),
        ("project.id:[1, 2.5k]", t("project.id", ("1", "2.5k"), "IN")),
        ("tags[a]:[x,y]", t("tags[a]", ("x", "y"), "IN")),
        ("(release:[a,b])", t("release", ("a", "b"), "IN")),
        ("release:[a,b] release:c", and_(t("release", ("a", "b"), "IN"), t("release", "c"))),
        ("release:[a,b]\tx", and_(t("release", ("a", "b"), "IN"), ft("\tx"))),
        # Not lists: Sentry reads these as text values (docs/search.md §1.5).
        ("release:[h e]", and_(t("release", "[h"), ft("e]"))),
        ("release:[a, ,b]", and_(t("release", "[a,"), ft(",b]"))),
        ("release:[ a,b]", and_(t("release", "["), ft("a,b]"))),
        ("release:[a,b ]", and_(t("release", "[a,b"), ft("]"))),
        ("release:[a]b", t("release", "[a]b")),
        ("release:[a,,b]", t("release", "[a,,b]")),
        ("release:[,a]", t("release", "[,a]")),
    ],
)
def test_parse_reads_list_when_value_in_brackets(query: str, expected: Node) -> None:
    assert_parses(query, expected)


@pytest.mark.parametrize(
    ("query", "position"),
    [
        ("release:[a,]", 11),
        ("release:[a, ]", 12),
        ("user.email:[a, ]", 15),
        ("release:[a,b,]", 13),
        ('release:["a",]', 13),
        ("project.id:[1,]", 14),
        ("!release:[a,]", 12),
        ("(release:[a, ])", 13),
        ("release:[a,,b,]x release:[c,]", 28),
        ("count(a,):>1", 8),
    ],
)
def test_parse_rejects_list_when_item_is_empty(query: str, position: int) -> None:
    assert_rejects(query, "Lists should not have empty values", position)


# --- Quoted values and escapes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('release:"a b"', t("release", "a b", quoted=True)),
        ('release:""', t("release", "", quoted=True)),
        ('release:"a\\"b"', t("release", 'a"b', quoted=True)),
        ('release:"a\\b"', t("release", "a\\b", quoted=True)),
        ('release:"a\\\\b"', t("release", "a\\\\b", quoted=True)),
        ('release:"(x)"', t("release", "(x)", quoted=True)),
        ('release:"a\nb"', t("release", "a\nb", quoted=True)),
        ('release:"a\tb"', t("release", "a\tb", quoted=True)),
        ('release:"OR"', t("release", "OR", quoted=True)),
        ('release:"a:b"', t("release", "a:b", quoted=True)),
        ('"hi:there":"x y"', t("hi:there", "x y", quoted=True)),
        ('url:"te"st', and_(t("url", "te", quoted=True), ft("st"))),
        ('url:te\\"st', t("url", 'te"st')),
        ('release:"a*"', t("release", "a*", wildcard=True, quoted=True)),
        ('release:"a\\*"', t("release", "a\\*", quoted=True)),
    ],
)
def test_parse_unquotes_value_when_quoted_or_escaped(query: str, expected: Node) -> None:
    assert_parses(query, expected)


# --- Wildcards -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("release:*", t("release", "*", wildcard=True)),
        ("release:foo*", t("release", "foo*", wildcard=True)),
        ("release:*foo", t("release", "*foo", wildcard=True)),
        ("release:*foo*", t("release", "*foo*", wildcard=True)),
        ("release:f*o", t("release", "f*o", wildcard=True)),
        ("release:**", t("release", "**", wildcard=True)),
        ("!release:foo*", t("release", "foo*", negated=True, wildcard=True)),
        ("release:foo\\*", t("release", "foo\\*")),
        ("release:foo\\\\*", t("release", "foo\\\\*", wildcard=True)),
        ("release:foo\\\\\\*", t("release", "foo\\\\\\*")),
        ("release:\\*foo*", t("release", "\\*foo*", wildcard=True)),
        ("release:fo?o[x]", t("release", "fo?o[x]")),
    ],
)
def test_parse_flags_wildcard_when_value_has_unescaped_star(query: str, expected: Node) -> None:
    assert_parses(query, expected)


# --- Free text -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("hello", ft("hello")),
        ("hello   there", ft("hello   there")),
        ("  hello  ", ft("hello")),
        (
            "hello what user.email:x where",
            and_(ft("hello what"), t("user.email", "x"), ft("where")),
        ),
        ('"quoted text"', ft("quoted text")),
        ('"a" b', and_(ft("a"), ft("b"))),
        ('"a" "b"', and_(ft("a"), ft("b"))),
        ('a "b c" d', ft('a "b c" d')),
        ('"a\\"b"', ft('a"b')),
        ('"a (b) OR c"', ft("a (b) OR c")),
        ('end"', ft('end"')),
        ('"beginning', ft('"beginning')),
        ('"a b', ft('"a b')),
        ("function(app/x)", ft("function(app/x)")),
        ("TypeError (evaluating x)", ft("TypeError (evaluating x)")),
        ("foo (bar baz)", ft("foo (bar baz)")),
        ("foo ()", ft("foo ()")),
        ("()", ft("()")),
        ("(test)", ft("test")),
        ("1.0 (1234)", ft("1.0 (1234)")),
        ("1.2.*", ft("1.2.*")),
        ("a\\*b", ft("a\\*b")),
        ("a\tb", ft("a\tb")),
        ("timestamp>2015-05-18", ft("timestamp>2015-05-18")),
        ("ORder", ft("ORder")),
        ("ANDroid", ft("ANDroid")),
        ("count():foo", ft("count():foo")),
        ("tags[a:b]:c", ft("tags[a:b]:c")),
        ('"hi there":value', and_(ft("hi there"), ft(":value"))),
        ("frontend release:frontend@1.2.4", and_(ft("frontend"), t("release", "frontend@1.2.4"))),
    ],
)
def test_parse_reads_free_text_when_not_a_filter(query: str, expected: Node) -> None:
    assert_parses(query, expected)


# --- has: and is: --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("has:release", t("has", "release")),
        ("!has:release", t("has", "release", negated=True)),
        ("has:release.version", t("has", "release.version")),
        ('has:"release"', t("has", "release", quoted=True)),
        ('has:"hi:there"', t("has", "hi:there", quoted=True)),
        ("has:tags[foo,number]", t("has", "tags[foo,number]")),
        ("has:foo*", and_(t("has", "foo"), ft("*"))),
        ("has:1", t("has", "1")),
        ("has:a has:b", and_(t("has", "a"), t("has", "b"))),
        ("is:unresolved", t("is", "unresolved")),
        ("!is:unresolved", t("is", "unresolved", negated=True)),
        ("is:[a,b]", t("is", "[a,b]")),
        ("is:", t("is", "")),
        ('is:"a b"', t("is", "a b", quoted=True)),
    ],
)
def test_parse_keeps_has_and_is_as_plain_terms(query: str, expected: Node) -> None:
    assert_parses(query, expected)


# --- Aggregate filters (events search) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("count():>1", t("count()", "1", ">")),
        ("count( ):1", t("count()", "1")),
        ("p95(transaction.duration):>5s", t("p95(transaction.duration)", "5s", ">")),
        ("count_if(a, equals, b):>=10", t("count_if(a, equals, b)", "10", ">=")),
        ("count_if(a ,b):1", t("count_if(a, b)", "1")),
        ('count_if(a,"b c"):1', t('count_if(a, "b c")', "1")),
        ("failure_rate():>50%", t("failure_rate()", "50%", ">")),
        ("last_seen():>2024-01-01", t("last_seen()", "2024-01-01", ">")),
        ("avg(x):-7d", t("avg(x)", "-7d")),
        ("sum(x):5mb", t("sum(x)", "5mb")),
        ("count():1,2", and_(t("count()", "1"), ft(",2"))),
        ("count():1 release:a", and_(t("count()", "1"), t("release", "a"))),
    ],
)
def test_parse_reads_aggregate_filter_when_key_is_a_function(query: str, expected: Node) -> None:
    assert_parses(query, expected)


# --- Parentheses ---------------------------------------------------------------------------------

A, B, C, D = t("a", "1"), t("b", "2"), t("c", "3"), t("d", "4")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("(a:1)", A),
        ("((a:1))", A),
        ("( a:1 )", A),
        ("(a:1)(b:2)", and_(A, B)),
        ("a:1 (b:2)", and_(A, B)),
        ("(a:1 OR b:2) c:3", and_(or_(A, B), C)),
        ("((a:1 OR b:2) c:3) OR d:4", or_(and_(or_(A, B), C), D)),
        ("(a:1 OR b:2) AND (c:3 d:4)", and_(or_(A, B), C, D)),
        ("(a:1 (b:2 (c:3 OR d:4)))", and_(A, B, or_(C, D))),
        ("(a:1 OR b:2) OR (c:3 OR d:4)", or_(A, B, C, D)),
        ("x (a:1 OR b:2)", and_(ft("x"), or_(A, B))),
        ("(x y) a:1", and_(ft("x y"), A)),
        (
            "(transaction:foo AND release:abc) OR (transaction:[bar,baz] AND release:def)",
            or_(
                and_(t("transaction", "foo"), t("release", "abc")),
                and_(t("transaction", ("bar", "baz"), "IN"), t("release", "def")),
            ),
        ),
    ],
)
def test_parse_dissolves_groups_when_parenthesised(query: str, expected: Node) -> None:
    assert_parses(query, expected)


# --- AND / OR ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("a:1 AND b:2 OR c:3", or_(and_(A, B), C)),
        ("a:1 OR b:2 AND c:3", or_(A, and_(B, C))),
        ("a:1 b:2 c:3 OR d:4 e:5", or_(and_(A, B, C), and_(D, t("e", "5")))),
        ("a:1 OR b:2 OR c:3", or_(A, B, C)),
        ("a:1 AND b:2 AND c:3", and_(A, B, C)),
        ("a:1 AND b:2 c:3", and_(A, B, C)),
        ("a:1 b:2", and_(A, B)),
        ("a:1 and b:2", and_(A, B)),
        ("a:1 And b:2", and_(A, B)),
        ("a:1 aNd b:2", and_(A, B)),
        ("a:1 or b:2", or_(A, B)),
        ("a:1 Or b:2", or_(A, B)),
        ("a:1 oR b:2", or_(A, B)),
        ("rock and roll", and_(ft("rock"), ft("roll"))),
        ("a b OR c", or_(ft("a b"), ft("c"))),
        ("a:1 ORder:2", and_(A, t("ORder", "2"))),
        ("a:1 OR(b:2)", and_(A, ft("OR"), B)),
        ("a AND(b)", ft("a AND(b)")),
    ],
)
def test_parse_binds_and_tighter_than_or_when_mixed(query: str, expected: Node) -> None:
    assert_parses(query, expected)


# --- Whitespace ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("  release:foo  ", t("release", "foo")),
        ("release:foo    release:bar", and_(t("release", "foo"), t("release", "bar"))),
        ("release:a\trelease", and_(t("release", "a"), ft("\trelease"))),
        ("release:foo\t", and_(t("release", "foo"), ft("\t"))),
        ("\t", ft("\t")),
        ("a:1 OR\tb:2", or_(A, ft("\tb:2"))),
        ("   (   a:1   OR   b:2   )   ", or_(A, B)),
    ],
)
def test_parse_separates_terms_only_on_spaces(query: str, expected: Node) -> None:
    assert_parses(query, expected)


# --- Errors: input that cannot be read to the end -------------------------------------------------


def test_parse_reports_sentry_message_when_parenthesis_unmatched() -> None:
    assert_rejects(
        "(user.email:foo@example.com OR user.email:bar@example.com",
        "Parse error at '(user.' (column 1). This is commonly caused by unmatched parentheses. "
        "Enclose any text in double quotes.",
        0,
    )


@pytest.mark.parametrize(
    ("query", "context", "column", "position"),
    [
        ("user.email:foo@example.com OR user.email:bar@example.com)", ".com)", 57, 56),
        ("(a:b OR c:d", "(a:b O", 1, 0),
        ("release:foo)", ":foo)", 12, 11),
        (")", ")", 1, 0),
        ("a )", "a )", 3, 2),
        ("a:1 (b:2", "a:1 (b:2", 5, 4),
        ("(", "(", 1, 0),
        ("( )", "( )", 1, 0),
        ("foo(", "foo(", 4, 3),
        ("release:foo) OR bar", ":foo) OR b", 12, 11),
        ("a\nb", "a\nb", 2, 1),
        ("release:foo\nrelease:bar", ":foo\nrelea", 12, 11),
        # After a newline inside quotes, Sentry counts the column from that newline.
        ('"a\nb" )', '"a\nb" )', 4, 6),
        ("a:1 OR\nb:2", "1 OR\nb:2", 7, 6),
        ('device.family:"test )', "est )", 21, 20),
    ],
)
def test_parse_reports_parse_error_when_input_is_left_over(
    query: str, context: str, column: int, position: int
) -> None:
    assert_rejects(query, parse_error(context, column), position)


# --- Errors: malformed filters -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "message", "position"),
    [
        ("release:", "Empty string after 'release:'", 8),
        ("release: foo", "Empty string after 'release:'", 8),
        ("release:(foo)", "Empty string after 'release:'", 8),
        ("release:>", "Empty string after 'release:'", 9),
        ("release:!=", "Empty string after 'release:'", 10),
        ("!release:", "Empty string after 'release:'", 9),
        ("tags[a]:", "Empty string after 'tags[a]:'", 8),
        ('"hi:there":', "Empty string after 'hi:there:'", 11),
        ("a:1 release:", "Empty string after 'release:'", 12),
        ("(release:)", "Empty string after 'release:'", 9),
        (
            'device.family:"test',
            "Invalid quote at '\"test': quotes must enclose text or be escaped.",
            14,
        ),
        ('url:te"st', "Invalid quote at 'te\"st': quotes must enclose text or be escaped.", 4),
        (
            'url:te\\"s"t',
            "Invalid quote at 'te\\\"s\"t': quotes must enclose text or be escaped.",
            4,
        ),
        ('release:"a b', "Invalid quote at '\"a': quotes must enclose text or be escaped.", 8),
        ('release:>"a', "Invalid quote at '\"a': quotes must enclose text or be escaped.", 9),
        ('is:"x', "Invalid quote at '\"x': quotes must enclose text or be escaped.", 3),
        ('has:"x', "Invalid quote at '\"x': quotes must enclose text or be escaped.", 4),
        (
            'has:"hi there"',
            'Invalid format for "has" search: was expecting a field or tag instead',
            4,
        ),
        ("has:", 'Invalid format for "has" search: was expecting a field or tag instead', 4),
        ("has:>foo", 'Invalid format for "has" search: was expecting a field or tag instead', 4),
        ("has:!x", 'Invalid format for "has" search: was expecting a field or tag instead', 4),
        ("!has:", 'Invalid format for "has" search: was expecting a field or tag instead', 5),
    ],
)
def test_parse_reports_value_error_when_filter_is_malformed(
    query: str, message: str, position: int
) -> None:
    assert_rejects(query, message, position)


# --- Errors: AND / OR structure ------------------------------------------------------------------

LEFT = "Condition is missing on the left side of '{}' operator"
RIGHT = "Condition is missing on the right side of '{}' operator"
BETWEEN = "Missing condition in between two condition operators: '{}'"


@pytest.mark.parametrize(
    ("query", "message", "position"),
    [
        ("OR a:b", LEFT.format("OR"), 0),
        ("AND a:b", LEFT.format("AND"), 0),
        ("(OR a:b) AND c:d", LEFT.format("OR"), 1),
        ("a:b AND", RIGHT.format("AND"), 4),
        ("a:b OR", RIGHT.format("OR"), 4),
        ("a:b Or And c:d", BETWEEN.format("OR AND"), 7),
        ("a:b AND AND c:d", BETWEEN.format("AND AND"), 8),
        ("a:b or or c:d", BETWEEN.format("OR OR"), 7),
        ("OR", LEFT.format("OR"), 0),
        ("and", LEFT.format("AND"), 0),
        ("(OR)", LEFT.format("OR"), 1),
        ("a:1 (b:2 OR)", RIGHT.format("OR"), 9),
        ("a:1 ( AND b:2)", LEFT.format("AND"), 6),
        ('OR ""', LEFT.format("OR"), 0),
        ('"" OR a:1', LEFT.format("OR"), 3),
        # The outer level is checked before the groups in it, groups left to right.
        ("a:1 OR (b:2 AND) OR (OR c:3)", RIGHT.format("AND"), 12),
        ("(a:1 AND) OR AND", BETWEEN.format("OR AND"), 13),
        ("a:1 OR AND b:2 AND", BETWEEN.format("OR AND"), 7),
    ],
)
def test_parse_reports_boolean_error_when_operator_is_misplaced(
    query: str, message: str, position: int
) -> None:
    assert_rejects(query, message, position)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("OR release:", "Empty string after 'release:'"),
        ("release: )", parse_error("se: )", 10)),
        ('a:b"c release:', "Invalid quote at 'b\"c': quotes must enclose text or be escaped."),
        ('release: a:"b', "Empty string after 'release:'"),
        ("(release:[a,]) OR", "Lists should not have empty values"),
    ],
)
def test_parse_reports_first_error_when_query_has_several(query: str, message: str) -> None:
    with pytest.raises(QuerySyntaxError, match=re.escape(message)):
        parse(query)


# --- Nesting limit -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "position"),
    [
        ("(" * (MAX_NESTING + 1) + "a:1" + ")" * (MAX_NESTING + 1), MAX_NESTING),
        ("x " + "(" * (MAX_NESTING + 1) + "a" + ")" * (MAX_NESTING + 1), MAX_NESTING + 2),
        ("(" * 1000, MAX_NESTING),
    ],
)
def test_parse_rejects_nesting_when_deeper_than_limit(query: str, position: int) -> None:
    message = f"Parentheses are nested too deeply: at most {MAX_NESTING} levels are supported."

    assert_rejects(query, message, position)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("(" * MAX_NESTING + "a:1" + ")" * MAX_NESTING, A),
        ("x " + "(" * MAX_NESTING + ")" * MAX_NESTING, ft("x " + "(" * 50 + ")" * 50)),
        ("tags[" * 200 + "a]:b", ft("tags[" * 200 + "a]:b")),
    ],
)
def test_parse_accepts_nesting_when_within_limit(query: str, expected: Node) -> None:
    assert_parses(query, expected)


# --- check_key -----------------------------------------------------------------------------------


def reject_all_but_release(key: str) -> None:
    if key != "release":
        raise QuerySyntaxError(f"Invalid key for this search: {key}")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        # Syntax first, wherever it is: the whole text is parsed before any key is judged.
        ("a:b AND c:d AND", "Condition is missing on the right side of 'AND' operator"),
        ("a:b c:d OR", "Condition is missing on the right side of 'OR' operator"),
        ("OR transaction:foo", "Condition is missing on the left side of 'OR' operator"),
        ("a:1 AND OR b:2", "Missing condition in between two condition operators: 'AND OR'"),
        ("(a:1 OR b:2) AND", "Condition is missing on the right side of 'AND' operator"),
        ("(a:1 AND) release:x", "Condition is missing on the right side of 'AND' operator"),
        ("transaction:foo release:", "Empty string after 'release:'"),
        ("release: transaction:foo", "Empty string after 'release:'"),
        ("transaction:foo release:[a, ]", "Lists should not have empty values"),
        (
            'transaction:foo release:a"b',
            "Invalid quote at 'a\"b': quotes must enclose text or be escaped.",
        ),
        (
            "transaction:foo has:",
            'Invalid format for "has" search: was expecting a field or tag instead',
        ),
        ("transaction:foo )", parse_error("foo )", 17)),
        ("transaction:foo (release:a", parse_error("foo (relea", 17)),
        ('has:"hi there"', 'Invalid format for "has" search: was expecting a field or tag instead'),
        # Then the keys, in order of appearance.
        ("has:release", "Invalid key for this search: has"),
        ("is:unresolved", "Invalid key for this search: is"),
        ("release:a (b:1 OR c:2)", "Invalid key for this search: b"),
        ("release:a OR c:2 b:1", "Invalid key for this search: c"),
        (
            "(transaction:foo AND release:abc) OR (transaction:[bar,baz] AND release:def)",
            "Invalid key for this search: transaction",
        ),
    ],
)
def test_parse_reports_key_error_in_query_order_when_check_key_given(
    query: str, message: str
) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse(query, check_key=reject_all_but_release)

    assert str(info.value) == message


def test_parse_calls_check_key_for_every_term_key_in_order() -> None:
    seen: list[str] = []

    parse("(a:1 OR b:2) c:[x] words has:d count():>1 !e:5", check_key=seen.append)

    assert seen == ["a", "b", "c", "has", "count()", "e"]


def test_parse_calls_check_key_only_when_query_is_well_formed() -> None:
    seen: list[str] = []

    with pytest.raises(QuerySyntaxError):
        parse("a:1 b:2 AND", check_key=seen.append)

    assert seen == []


# --- Wildcard helpers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("foo", False),
        ("*", True),
        ("foo*", True),
        ("f*o", True),
        ("foo\\*", False),
        ("foo\\\\*", True),
        ("foo\\\\\\*", False),
        ("\\*foo*", True),
        ("a\\b", False),
    ],
)
def test_has_wildcard_detects_unescaped_star(value: str, expected: bool) -> None:
    assert has_wildcard(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("foo", ["foo"]),
        ("", []),
        ("*", [WILDCARD]),
        ("**", [WILDCARD]),
        ("foo*", ["foo", WILDCARD]),
        ("*foo", [WILDCARD, "foo"]),
        ("*foo*", [WILDCARD, "foo", WILDCARD]),
        ("f*o*o", ["f", WILDCARD, "o", WILDCARD, "o"]),
        ("a\\*b", ["a*b"]),
        ("a\\*b*", ["a*b", WILDCARD]),
        ("a\\\\*", ["a\\", WILDCARD]),
        ("a\\\\\\*", ["a\\*"]),
        ("a\\b*", ["a\\b", WILDCARD]),
        ("a%_b*", ["a%_b", WILDCARD]),
    ],
)
def test_split_wildcard_resolves_escapes_when_splitting(
    value: str, expected: list[str | Wildcard]
) -> None:
    assert split_wildcard(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("foo", "foo"),
        ("foo\\*", "foo*"),
        ("foo\\\\*", "foo\\*"),
        ("foo\\\\\\*", "foo\\*"),
        ("a\\b", "a\\b"),
        ("a*b", "a*b"),
    ],
)
def test_unescape_returns_literal_text_when_stars_escaped(value: str, expected: str) -> None:
    assert unescape(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("foo", "^foo$"),
        ("foo*", "^foo.*$"),
        ("*foo*", "^.*foo.*$"),
        ("1.2.*", "^1\\.2\\..*$"),
        ("a\\*b*", "^a\\*b.*$"),
        ("a(b)[c]?+", "^a\\(b\\)\\[c\\]\\?\\+$"),
    ],
)
def test_wildcard_to_regex_escapes_literal_parts(value: str, expected: str) -> None:
    assert wildcard_to_regex(value) == expected


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("frontend@*", "frontend@1.2.3", True),
        ("frontend@*", "backend@1.2.3", False),
        ("*@1.2.3", "frontend@1.2.3", True),
        ("f*4", "frontend@1.2.4", True),
        ("f*4", "frontend@1.2.5", False),
        ("1.2.*", "1.2.3", True),
        ("1.2.*", "102.3", False),
        ("a\\*", "a*", True),
        ("a\\*", "ab", False),
        ("a?", "ab", False),
    ],
)
def test_wildcard_to_regex_matches_whole_string(pattern: str, text: str, matches: bool) -> None:
    assert (re.search(wildcard_to_regex(pattern), text) is not None) is matches


# --- Types ---------------------------------------------------------------------------------------


def test_query_syntax_error_is_value_error_with_message_and_position() -> None:
    error = QuerySyntaxError("Lists should not have empty values", 3)

    assert isinstance(error, ValueError)
    assert str(error) == "Lists should not have empty values"
    assert (error.message, error.position) == ("Lists should not have empty values", 3)
    assert QuerySyntaxError("x").position is None


def test_tree_nodes_are_frozen_and_hashable() -> None:
    tree = parse("(a:1 OR b:2) x")

    assert isinstance(tree, And)
    assert hash(tree) == hash(parse("(a:1 OR b:2) x"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        tree.children = ()  # type: ignore[misc]
