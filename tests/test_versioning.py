"""Tests for releases.versioning: Sentry's release parser, versionInfo and semver columns.

Pure functions only: no database, no Django settings needed. Vectors come from
docs/api.md §2.2 / §5.5 / §7 and from sentry-release-parser's snapshot tests.
"""

from __future__ import annotations

from typing import Any

import pytest

from releases.versioning import (
    BIGINT_MAX,
    ParsedVersion,
    build_number_from_code,
    is_build_hash,
    is_valid_version,
    parse_release,
    semver_columns,
    validate_version,
    version_info,
)

SHA40 = "085240e737828d8326719bf97730188e927e49ca"
SHA64 = "a" * 32 + "0123456789abcdef" * 2
NO_COLUMNS: dict[str, Any] = {
    "package": None,
    "major": None,
    "minor": None,
    "patch": None,
    "revision": None,
    "prerelease": "",
    "build_code": None,
    "build_number": None,
}


def parsed(
    raw: str,
    major: int,
    minor: int,
    patch: int,
    pre: str | None = None,
    build_code: str | None = None,
    components: int = 3,
) -> dict[str, Any]:
    """A ``versionInfo.version`` object for a version that parsed."""
    return {
        "raw": raw,
        "major": major,
        "minor": minor,
        "patch": patch,
        "pre": pre,
        "buildCode": build_code,
        "components": components,
    }


def info(
    package: str | None,
    version: dict[str, Any],
    description: str,
    build_hash: str | None = None,
) -> dict[str, Any]:
    return {
        "package": package,
        "version": version,
        "description": description,
        "buildHash": build_hash,
    }


def must_parse(version: str) -> ParsedVersion:
    result = parse_release(version)
    assert result is not None, version
    return result


# --- docs/api.md §2.2 table: every row ---------------------------------------------

SPEC_TABLE = [
    pytest.param(
        "foo.bar.BazApp@1.0a+20200101100",
        info(
            "foo.bar.BazApp",
            parsed("1.0a+20200101100", 1, 0, 0, "a", "20200101100", 2),
            "1.0a (20200101100)",
        ),
        id="mobile-implied-prerelease",
    ),
    pytest.param(SHA40, info(None, {"raw": SHA40}, SHA40[:12], SHA40), id="bare-sha"),
    pytest.param(
        f"pkg@1.2.3+{SHA40}",
        info("pkg", parsed(f"1.2.3+{SHA40}", 1, 2, 3, None, SHA40), "1.2.3 (085240e73782)", SHA40),
        id="sha-build-code",
    ),
    pytest.param(
        "backend@1.0.0-rc.1+build.5",
        info(
            "backend",
            parsed("1.0.0-rc.1+build.5", 1, 0, 0, "rc.1", "build.5"),
            "1.0.0-rc.1 (build.5)",
        ),
        id="rc-with-build",
    ),
    pytest.param("my-app@2.0.0", info("my-app", parsed("2.0.0", 2, 0, 0), "2.0.0"), id="plain"),
    pytest.param("1.2.3", info(None, {"raw": "1.2.3"}, "1.2.3"), id="no-package-no-parse"),
    # The docs example claims buildHash "abc123"; 6 characters is not a hash length.
    pytest.param(
        "control@abc123",
        info("control", {"raw": "abc123"}, "control@abc123"),
        id="docs-example-follows-parser",
    ),
    pytest.param(
        "20210505090610352561",
        info(None, {"raw": "20210505090610352561"}, "202105050906", "20210505090610352561"),
        id="20-digits-is-a-hash",
    ),
]


@pytest.mark.parametrize(("version", "expected"), SPEC_TABLE)
def test_spec_table_version_info(version: str, expected: dict[str, Any]) -> None:
    assert version_info(version) == expected


# --- sentry-release-parser snapshot tests ---------------------------------------------

# (version, package, raw, (major, minor, patch, revision) or None, pre, build_code,
#  components, build_hash, description)
SNAPSHOTS = [
    pytest.param(
        "@foo.bar.baz--blah@1.2.3-dev+BUILD-code",
        "@foo.bar.baz--blah",
        "1.2.3-dev+BUILD-code",
        (1, 2, 3, 0),
        "dev",
        "BUILD-code",
        3,
        None,
        "1.2.3-dev (BUILD-code)",
        id="basic-leading-at-package",
    ),
    pytest.param(
        "foo.bar.baz.App@1.0+20200101100",
        "foo.bar.baz.App",
        "1.0+20200101100",
        (1, 0, 0, 0),
        None,
        "20200101100",
        2,
        None,
        "1.0 (20200101100)",
        id="mobile",
    ),
    pytest.param(
        "foo.bar.baz.App@1.0.0+20200101100",
        "foo.bar.baz.App",
        "1.0.0+20200101100",
        (1, 0, 0, 0),
        None,
        "20200101100",
        3,
        None,
        "1.0.0 (20200101100)",
        id="mobile-three-components",
    ),
    pytest.param(
        "foo.bar.baz.App@1.0+1.0.200",
        "foo.bar.baz.App",
        "1.0+1.0.200",
        (1, 0, 0, 0),
        None,
        "1.0.200",
        2,
        None,
        "1.0 (1.0.200)",
        id="mobile-dotted-secondary",
    ),
    pytest.param(
        f"package@{SHA40}",
        "package",
        SHA40,
        None,
        None,
        None,
        None,
        SHA40,
        "085240e73782",
        id="qualified-hash",
    ),
    pytest.param(
        "com.foogame.FooGame@7211+7211",
        "com.foogame.FooGame",
        "7211+7211",
        (7211, 0, 0, 0),
        None,
        "7211",
        1,
        None,
        "7211 (7211)",
        id="single-component",
    ),
    pytest.param(
        "some-api@2020.05.26-01.38.42",
        "some-api",
        "2020.05.26-01.38.42",
        None,
        None,
        None,
        None,
        None,
        "some-api@2020.05.26-01.38.42",
        id="invalid-date-release",
    ),
    pytest.param(
        "some-api@2020.2-1.2.3",
        "some-api",
        "2020.2-1.2.3",
        (2020, 2, 0, 0),
        "1.2.3",
        None,
        2,
        None,
        "2020.2-1.2.3",
        id="valid-dotted-release",
    ),
    pytest.param(
        "some-api@1.2.3-test",
        "some-api",
        "1.2.3-test",
        (1, 2, 3, 0),
        "test",
        None,
        3,
        None,
        "1.2.3-test",
        id="basic-prerelease",
    ),
    pytest.param(
        "some-api@1.0alpha2",
        "some-api",
        "1.0alpha2",
        (1, 0, 0, 0),
        "alpha2",
        None,
        2,
        None,
        "1.0alpha2",
        id="implied-prerelease",
    ),
    pytest.param(
        "some-api@1.0.0.0",
        "some-api",
        "1.0.0.0",
        (1, 0, 0, 0),
        None,
        None,
        4,
        None,
        "1.0.0.0",
        id="four-components",
    ),
    pytest.param(
        "some-api@1.0-1234",
        "some-api",
        "1.0-1234",
        (1, 0, 0, 0),
        "1234",
        None,
        2,
        None,
        "1.0-1234",
        id="dashed-numeric-prerelease",
    ),
    pytest.param(
        "foo@01.02.003.4-alpha+1234",
        "foo",
        "01.02.003.4-alpha+1234",
        (1, 2, 3, 4),
        "alpha",
        "1234",
        4,
        None,
        "01.02.003.4-alpha (1234)",
        id="leading-zeroes",
    ),
    pytest.param(
        "foo@20210505090610352561",
        "foo",
        "20210505090610352561",
        None,
        None,
        None,
        None,
        "20210505090610352561",
        "202105050906",
        id="version-only-is-hash",
    ),
    pytest.param(
        "hackweek@6f85d2f",
        "hackweek",
        "6f85d2f",
        None,
        None,
        None,
        None,
        None,
        "hackweek@6f85d2f",
        id="not-a-version",
    ),
    pytest.param(
        "bla-internal@1.0dev1",
        "bla-internal",
        "1.0dev1",
        (1, 0, 0, 0),
        "dev1",
        None,
        2,
        None,
        "1.0dev1",
        id="hash-on-dotted-two",
    ),
    pytest.param(
        "bla-internal@0.0.0.4bfe251b96",
        "bla-internal",
        "0.0.0.4bfe251b96",
        (0, 0, 0, 4),
        "bfe251b96",
        None,
        4,
        None,
        "0.0.0.4bfe251b96",
        id="hash-on-dotted-quad",
    ),
    pytest.param(
        "org.example.FooApp@1.0rc1+1.2.3",
        "org.example.FooApp",
        "1.0rc1+1.2.3",
        (1, 0, 0, 0),
        "rc1",
        "1.2.3",
        2,
        None,
        "1.0rc1 (1.2.3)",
        id="ios-dotted-build",
    ),
    pytest.param(
        f"@foo.bar.baz--blah@1-a+{SHA40}",
        "@foo.bar.baz--blah",
        f"1-a+{SHA40}",
        (1, 0, 0, 0),
        "a",
        SHA40,
        1,
        SHA40,
        "1-a (085240e73782)",
        id="build-code-is-hash",
    ),
]


@pytest.mark.parametrize(
    (
        "version",
        "package",
        "raw",
        "quad",
        "pre",
        "build_code",
        "components",
        "build_hash",
        "description",
    ),
    SNAPSHOTS,
)
def test_parser_snapshots(
    version: str,
    package: str | None,
    raw: str,
    quad: tuple[int, int, int, int] | None,
    pre: str | None,
    build_code: str | None,
    components: int | None,
    build_hash: str | None,
    description: str,
) -> None:
    result = must_parse(version)
    assert result.package == package
    assert result.raw == raw
    if quad is None:
        assert not result.is_semver
        assert (result.major, result.minor, result.patch, result.revision) == (None,) * 4
    else:
        assert result.is_semver
        assert (result.major, result.minor, result.patch, result.revision) == quad
    assert result.pre == pre
    assert result.build_code == build_code
    assert result.components == components
    assert result.build_hash == build_hash
    assert result.description == description


# --- one numeric component needs a dash before its pre-release ----------------------


@pytest.mark.parametrize(
    ("raw", "expected_pre"),
    [
        pytest.param("1a1", None, id="1a1-rejected"),
        pytest.param("1a", None, id="1a-rejected"),
        pytest.param("1rc1+5", None, id="1rc1-with-build-rejected"),
        pytest.param("1-a1", "a1", id="1-a1-accepted"),
        pytest.param("1-1", "1", id="1-1-accepted"),
        pytest.param("1.0a1", "a1", id="two-components-no-dash-ok"),
        pytest.param("1.0.0a1", "a1", id="three-components-no-dash-ok"),
    ],
)
def test_single_component_prerelease_needs_dash(raw: str, expected_pre: str | None) -> None:
    result = must_parse(f"pkg@{raw}")
    assert result.package == "pkg"
    if expected_pre is None:
        assert not result.is_semver
        assert result.description == f"pkg@{raw}"
        assert semver_columns(f"pkg@{raw}") == NO_COLUMNS
    else:
        assert result.is_semver
        assert result.pre == expected_pre
        assert result.components == raw.count(".") + 1


# --- more pattern edges ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "is_semver", "pre", "build_code"),
    [
        pytest.param("1", True, None, None, id="bare-major"),
        pytest.param("1+5", True, None, "5", id="major-with-build"),
        pytest.param("1.0RC1", False, None, None, id="uppercase-implied-pre-rejected"),
        pytest.param("1.0-RC1", True, "RC1", None, id="uppercase-dashed-pre-ok"),
        pytest.param("1.0-01", False, None, None, id="leading-zero-numeric-pre-rejected"),
        pytest.param("1.0-0", True, "0", None, id="zero-pre-ok"),
        pytest.param("1.0-0a", True, "0a", None, id="alnum-pre-with-leading-zero-ok"),
        pytest.param("1.0-rc-1", True, "rc-1", None, id="hyphen-inside-pre"),
        pytest.param("1.0--1", True, "-1", None, id="double-dash-keeps-one"),
        pytest.param("1.0-", True, None, None, id="lone-dash-is-empty-pre"),
        pytest.param("1.0a.b.3", True, "a.b.3", None, id="dotted-implied-pre"),
        pytest.param("1.0.0+", False, None, None, id="empty-build"),
        pytest.param("1.0.0+a..b", False, None, None, id="empty-build-identifier"),
        pytest.param("1.0.0+a_b", False, None, None, id="underscore-in-build"),
        pytest.param("1.0.0+a+b", False, None, None, id="two-plus-signs"),
        pytest.param("v1.0.0", False, None, None, id="v-prefix"),
        pytest.param("1..0", False, None, None, id="empty-component"),
        pytest.param("1.0.", False, None, None, id="trailing-dot"),
        pytest.param("1.2.3.4.5", False, None, None, id="five-components"),
        pytest.param("b@c", False, None, None, id="second-at-stays-in-raw"),
    ],
)
def test_version_pattern_edges(
    raw: str, is_semver: bool, pre: str | None, build_code: str | None
) -> None:
    result = must_parse(f"pkg@{raw}")
    assert result.raw == raw
    assert result.is_semver is is_semver
    assert result.pre == pre
    assert result.build_code == build_code


def test_lone_dash_description_keeps_text_as_written() -> None:
    assert version_info("pkg@1.0-") == info("pkg", parsed("1.0-", 1, 0, 0, None, None, 2), "1.0-")


# --- build hashes -----------------------------------------------------------------------


@pytest.mark.parametrize("length", [12, 16, 20, 32, 40, 64])
def test_hash_lengths_are_build_hashes(length: int) -> None:
    value = (SHA40 * 2)[:length]
    assert is_build_hash(value)
    assert version_info(value) == info(None, {"raw": value}, value[:12], value)
    assert version_info(f"pkg@{value}") == info("pkg", {"raw": value}, value[:12], value)
    assert version_info(f"pkg@1.0+{value}") == info(
        "pkg", parsed(f"1.0+{value}", 1, 0, 0, None, value, 2), f"1.0 ({value[:12]})", value
    )
    assert semver_columns(f"pkg@{value}") == NO_COLUMNS


@pytest.mark.parametrize("length", [1, 6, 11, 13, 15, 17, 21, 31, 33, 39, 41, 63, 65])
def test_other_lengths_are_not_build_hashes(length: int) -> None:
    value = ("abcdef0123" * 7)[:length]
    assert not is_build_hash(value)
    result = must_parse(value)
    assert result.build_hash is None
    assert result.description == value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("ABCDEF012345", True, id="uppercase-hex"),
        pytest.param("abcdef01234g", False, id="non-hex-letter"),
        pytest.param("123456789012", True, id="all-digits"),
        pytest.param("", False, id="empty"),
    ],
)
def test_is_build_hash(value: str, expected: bool) -> None:
    assert is_build_hash(value) is expected


def test_numeric_version_of_hash_length_is_a_hash_not_a_version() -> None:
    # 12 digits is hex of a hash length: it is not parsed even with a package.
    result = must_parse("pkg@123456789012")
    assert not result.is_semver
    assert result.build_hash == "123456789012"
    assert result.description == "123456789012"
    # 11 digits parses as a one-component version.
    assert must_parse("pkg@12345678901").major == 12345678901


def test_non_hash_build_code_wins_over_nothing() -> None:
    assert version_info("pkg@1.0+abc") == info(
        "pkg", parsed("1.0+abc", 1, 0, 0, None, "abc", 2), "1.0 (abc)"
    )


# --- package split ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "package", "raw", "description"),
    [
        pytest.param("foo@", None, "foo@", "foo@", id="empty-version-part"),
        pytest.param("@foo", None, "@foo", "@foo", id="only-leading-at"),
        pytest.param("@foo@1.0", "@foo", "1.0", "1.0", id="leading-at-package"),
        pytest.param("@@foo@1.0", None, "@@foo@1.0", "@@foo@1.0", id="double-leading-at"),
        pytest.param("@", None, "@", "@", id="just-at"),
        pytest.param("@@", None, "@@", "@@", id="just-two-ats"),
        pytest.param("a@b@c", "a", "b@c", "a@b@c", id="first-at-splits"),
        pytest.param("foo@@1.0", "foo", "@1.0", "foo@@1.0", id="at-after-at"),
        pytest.param("my app@1.0", "my app", "1.0", "1.0", id="space-in-package"),
        pytest.param("  pkg@1.0  ", "pkg", "1.0", "1.0", id="trimmed"),
        pytest.param("\u3000pkg@1.0\n", "pkg", "1.0", "1.0", id="unicode-and-newline-trimmed"),
        pytest.param("pkg@ 1.0", "pkg", " 1.0", "pkg@ 1.0", id="inner-space-not-trimmed"),
    ],
)
def test_package_split(version: str, package: str | None, raw: str, description: str) -> None:
    result = must_parse(version)
    assert (result.package, result.raw, result.description) == (package, raw, description)


def test_version_parsing_needs_a_package() -> None:
    for version in ("1.2.3", "1.0", "1", "1.0.0-rc.1+5"):
        result = must_parse(version)
        assert not result.is_semver
        assert version_info(version) == info(None, {"raw": version}, version)
        assert semver_columns(version) == NO_COLUMNS


def test_version_info_never_exposes_revision_or_raw_parts() -> None:
    result = version_info("pkg@1.2.3.4-beta+77")
    assert result == info(
        "pkg", parsed("1.2.3.4-beta+77", 1, 2, 3, "beta", "77", 4), "1.2.3.4-beta (77)"
    )
    assert must_parse("pkg@1.2.3.4-beta+77").revision == 4


def test_empty_string_parses_to_empty_release() -> None:
    assert version_info("") == info(None, {"raw": ""}, "")
    assert version_info("   ") == info(None, {"raw": ""}, "")


# --- strings the parser rejects ---------------------------------------------------------


@pytest.mark.parametrize(
    "version",
    [
        pytest.param("a" * 201, id="201-chars"),
        pytest.param("é" * 101, id="202-utf8-bytes"),
        pytest.param(".", id="dot"),
        pytest.param("..", id="dotdot"),
        pytest.param(" .. ", id="dotdot-trimmed"),
        pytest.param("latest", id="latest"),
        pytest.param("LATEST", id="latest-upper"),
        pytest.param("LaTeSt", id="latest-mixed"),
        pytest.param("  latest\t", id="latest-trimmed"),
        pytest.param("foo/bar", id="slash"),
        pytest.param("@scope/pkg@1.0.0", id="npm-scope-has-slash"),
        pytest.param("foo\\bar", id="backslash"),
        pytest.param("foo\nbar", id="newline"),
        pytest.param("foo\rbar", id="carriage-return"),
        pytest.param("foo\tbar", id="tab"),
        pytest.param("foo\x0cbar", id="form-feed"),
        pytest.param("foo\x00bar", id="nul"),
        pytest.param("foo\x1bbar", id="escape"),
        pytest.param("foo\x7fbar", id="del"),
        pytest.param("\x1cpkg@1.0", id="file-separator-is-not-trimmed"),
        pytest.param("bad\ud800", id="lone-surrogate"),
    ],
)
def test_rejected_by_parser(version: str) -> None:
    assert parse_release(version) is None
    assert version_info(version) is None
    assert semver_columns(version) == NO_COLUMNS


@pytest.mark.parametrize(
    "version",
    [
        pytest.param("a" * 200, id="200-chars"),
        pytest.param("é" * 100, id="200-utf8-bytes"),
        pytest.param("  " + "a" * 200 + "  ", id="200-after-trim"),
        pytest.param("latest2", id="latest-prefix"),
        pytest.param("...", id="three-dots"),
        pytest.param("pkg@latest", id="latest-as-version-part"),
        pytest.param("foo\x85bar", id="c1-control-allowed"),
    ],
)
def test_accepted_by_parser(version: str) -> None:
    assert parse_release(version) is not None


# --- 64-bit limits ----------------------------------------------------------------------


def test_bigint_max_fits() -> None:
    version = f"pkg@{BIGINT_MAX}.1.2.3"
    assert semver_columns(version) == {
        "package": "pkg",
        "major": BIGINT_MAX,
        "minor": 1,
        "patch": 2,
        "revision": 3,
        "prerelease": "",
        "build_code": None,
        "build_number": None,
    }


@pytest.mark.parametrize(
    "version",
    [
        pytest.param(f"pkg@{BIGINT_MAX + 1}.0.0", id="major-2**63"),
        pytest.param(f"pkg@1.{BIGINT_MAX + 1}", id="minor-2**63"),
        pytest.param(f"pkg@1.0.{2**64 - 1}", id="patch-u64-max"),
        pytest.param(f"pkg@1.0.0.{BIGINT_MAX + 1}-rc1", id="revision-2**63"),
    ],
)
def test_over_bigint_parses_but_has_no_columns(version: str) -> None:
    result = must_parse(version)
    assert result.is_semver
    assert not result.fits_bigint
    assert semver_columns(version) == NO_COLUMNS


def test_version_info_shows_big_components() -> None:
    value = BIGINT_MAX + 1
    expected = info("pkg", parsed(f"{value}.0.0", value, 0, 0), f"{value}.0.0")
    assert version_info(f"pkg@{value}.0.0") == expected


def test_over_u64_reads_as_zero_like_the_rust_parser() -> None:
    big = str(2**64)
    result = must_parse(f"pkg@{big}.1")
    assert (result.major, result.minor) == (0, 1)
    assert result.raw_quad == (big, "1", None, None)
    assert version_info(f"pkg@{big}.1") == info(
        "pkg", parsed(f"{big}.1", 0, 1, 0, None, None, 2), f"{big}.1"
    )
    # ...but the written number does not fit 64 bits, so no semver columns.
    assert semver_columns(f"pkg@{big}.1") == NO_COLUMNS


# --- semver columns -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        pytest.param(
            "frontend@1.2.3+456",
            ("frontend", 1, 2, 3, 0, "", "456", 456),
            id="integer-build",
        ),
        pytest.param(
            "backend@1.0.0-rc.1+build.5",
            ("backend", 1, 0, 0, 0, "rc.1", "build.5", None),
            id="text-build",
        ),
        pytest.param(
            "app@2.1.0.7a1",
            ("app", 2, 1, 0, 7, "a1", None, None),
            id="four-components",
        ),
        pytest.param(
            "app@1.0+007",
            ("app", 1, 0, 0, 0, "", "007", 7),
            id="build-leading-zeros",
        ),
        pytest.param(
            f"app@1.0+{BIGINT_MAX}",
            ("app", 1, 0, 0, 0, "", str(BIGINT_MAX), BIGINT_MAX),
            id="build-bigint-max",
        ),
        pytest.param(
            f"app@1.0+{BIGINT_MAX + 1}",
            ("app", 1, 0, 0, 0, "", str(BIGINT_MAX + 1), None),
            id="build-too-big",
        ),
        pytest.param(
            "app@1.0+-5",
            ("app", 1, 0, 0, 0, "", "-5", None),
            id="negative-build",
        ),
        pytest.param(
            f"app@1.0+{SHA40}",
            ("app", 1, 0, 0, 0, "", SHA40, None),
            id="hash-build",
        ),
        pytest.param(
            "@scoped@1-1",
            ("@scoped", 1, 0, 0, 0, "1", None, None),
            id="leading-at-package",
        ),
    ],
)
def test_semver_columns(version: str, expected: tuple[Any, ...]) -> None:
    keys = (
        "package",
        "major",
        "minor",
        "patch",
        "revision",
        "prerelease",
        "build_code",
        "build_number",
    )
    assert semver_columns(version) == dict(zip(keys, expected, strict=True))


@pytest.mark.parametrize(
    "version",
    ["control@abc123", "hackweek@6f85d2f", f"pkg@{SHA40}", "1.2.3", "foo@", "pkg@1a1"],
)
def test_non_semver_stores_no_package(version: str) -> None:
    assert semver_columns(version) == NO_COLUMNS


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (None, None),
        ("0", 0),
        ("123", 123),
        ("0042", 42),
        (str(BIGINT_MAX), BIGINT_MAX),
        (str(BIGINT_MAX + 1), None),
        ("-1", None),
        ("12a", None),
        ("1.2", None),
        ("", None),
    ],
)
def test_build_number_from_code(code: str | None, expected: int | None) -> None:
    assert build_number_from_code(code) == expected


# --- POST validation (docs/api.md §5.5 and §7 item 19) ------------------------------


@pytest.mark.parametrize(
    ("version", "error"),
    [
        pytest.param("", "This field may not be blank.", id="empty"),
        pytest.param(
            "a" * 201, "Ensure this field has no more than 200 characters.", id="too-long"
        ),
        pytest.param("1.2.3\n", "Release with name 1.2.3\n is not allowed", id="trailing-newline"),
        pytest.param("\n1.2.3", "Release with name \n1.2.3 is not allowed", id="leading-newline"),
        pytest.param("1.\n2.3", "Release with name 1.\n2.3 is not allowed", id="inner-newline"),
        pytest.param("1.2.3\f", "Release with name 1.2.3\f is not allowed", id="form-feed"),
        pytest.param("1.2.3\t", "Release with name 1.2.3\t is not allowed", id="tab"),
        pytest.param("1.2.3\r", "Release with name 1.2.3\r is not allowed", id="carriage-return"),
        pytest.param("a/b", "Release with name a/b is not allowed", id="slash"),
        pytest.param("a\\b", "Release with name a\\b is not allowed", id="backslash"),
        pytest.param("   ", "Release with name     is not allowed", id="whitespace-only"),
        pytest.param(".", "Release with name . is not allowed", id="dot"),
        pytest.param("..", "Release with name .. is not allowed", id="dotdot"),
        pytest.param(" .. ", "Release with name  ..  is not allowed", id="dotdot-spaces"),
        pytest.param("latest", "Release with name latest is not allowed", id="latest"),
        pytest.param("Latest", "Release with name Latest is not allowed", id="latest-title"),
        pytest.param(" LATEST ", "Release with name  LATEST  is not allowed", id="latest-spaced"),
    ],
)
def test_validate_version_rejects(version: str, error: str) -> None:
    assert validate_version(version) == error


@pytest.mark.parametrize(
    "version",
    [
        pytest.param("1.2.1", id="plain"),
        pytest.param("1.2.3+dev", id="build-suffix"),
        pytest.param("abcabcabc", id="free-text"),
        pytest.param("foo@1.0.0", id="package"),
        pytest.param(SHA40, id="sha"),
        pytest.param("a" * 200, id="200-chars"),
        pytest.param(" 1.2.3 ", id="spaces-kept"),
        pytest.param("latest-1", id="latest-prefix"),
        pytest.param("...", id="three-dots"),
        pytest.param("1.2.3\x00", id="nul-is-not-in-sentrys-list"),
    ],
)
def test_validate_version_accepts(version: str) -> None:
    assert validate_version(version) is None
    assert is_valid_version(version)


def test_validated_version_with_nul_has_null_version_info() -> None:
    # Sentry's API accepts it, but the parser rejects it: versionInfo is null.
    assert validate_version("1.2.3\x00") is None
    assert version_info("1.2.3\x00") is None


# --- the dataclass ----------------------------------------------------------------------


def test_parsed_version_is_frozen_and_cached() -> None:
    result = must_parse("pkg@1.2.3-rc1+9")
    with pytest.raises(AttributeError):
        result.major = 5  # type: ignore[misc]
    assert parse_release("pkg@1.2.3-rc1+9") is result
    assert result.raw_short == "1.2.3-rc1"
    assert result.raw_quad == ("1", "2", "3", None)
    assert result.build_number == 9
    assert result.fits_bigint
    assert result.to_version_info() == version_info("pkg@1.2.3-rc1+9")
    assert result.to_semver_columns() == semver_columns("pkg@1.2.3-rc1+9")


def test_unparsed_version_has_no_parts() -> None:
    result = must_parse("control@abc123")
    assert not result.is_semver
    assert not result.fits_bigint
    assert result.raw_short is None
    assert result.raw_quad is None
    assert result.build_number is None
