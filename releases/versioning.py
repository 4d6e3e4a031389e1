"""Release version parsing compatible with Sentry (sentry-release-parser v1.4).

A pure-Python re-implementation of the parser Sentry uses through Relay's
``sentry_relay.processing.parse_release`` (see ``docs/api.md`` §2.2 and
``docs/search.md`` §3.4), plus Sentry's API-level version validation (docs/api.md §5.5).
No Django imports, so it can be used from models, serializers, search and tests.

Public API:

- :func:`parse_release` -> :class:`ParsedVersion` or ``None`` (parser rejects the string).
- :func:`version_info` -> the ``versionInfo`` JSON object of the release serializer.
- :func:`semver_columns` -> the semver columns stored on the ``Release`` model.
- :func:`validate_version` / :func:`is_valid_version` -> the POST ``version`` rules.

Parser rules, in order (each one verified against the upstream snapshot tests):

1. Trim surrounding whitespace (Rust ``str::trim``: Unicode ``White_Space`` only).
2. Reject (``None``) when longer than 200 UTF-8 *bytes*, equal to ``.``/``..``, equal
   to ``latest`` in any ASCII case, or containing ``/``, ``\\``, C0 control
   characters or DEL.
3. ``<pkg>@<rest>`` splits into package and raw version when ``pkg`` is an optional
   ``@`` followed by at least one non-``@`` character and ``rest`` is non-empty. The
   split happens at the first ``@`` after the package, so ``a@b@c`` is package ``a``
   with raw version ``b@c``. Otherwise there is no package and raw is the whole string.
4. With a package, and when raw is not a build hash, raw is matched against the
   relaxed semver pattern ``MAJOR[.MINOR[.PATCH[.REVISION]]][PRE][+BUILD]``; a
   one-component version needs a ``-`` before its pre-release (``1a1`` does not
   parse, ``1-a1`` and ``1.0a1`` do).
5. A build hash is hex text of length 12, 16, 20, 32, 40 or 64: the build code if it
   is one, else the raw version if it is one.

Decisions (where the spec left room):

- Numeric components follow the Rust parser exactly: leading zeros are allowed, and
  a component that overflows an unsigned 64-bit integer reads as ``0``
  (``parse::<u64>().unwrap_or_default()``), which is what ``versionInfo`` shows.
- Semver columns are only filled when the version parsed *and* major, minor, patch
  and revision each fit a signed 64-bit integer, as Sentry's
  ``massage_semver_cols_into_release_object_data`` does. The check is made on the
  digits as written: a component of 2**64 or more gives no columns (Sentry would
  store the parser's ``0`` there, which would make ``pkg@18446744073709551616.1``
  equal to ``0.1`` in searches and sorts). **The package column is
  ``None`` for non-semver releases** (``control@abc123`` stores no package), matching
  ``docs/search.md`` §3.4 and Sentry, so ``release.package:control`` does not match
  it and "has a package" stays equivalent to "is semver".
- ``prerelease`` is ``""`` whenever there is no pre-release, including non-semver
  rows (Sentry leaves NULL there); test semver-ness with ``major is not None``.
- :func:`validate_version` mirrors the order DRF applies the checks in:
  blank, then ``max_length=200`` (characters, DRF's messages), then Sentry's
  ``Release.is_valid_version`` (``Release with name <v> is not allowed``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final, NotRequired, TypedDict

__all__ = [
    "BIGINT_MAX",
    "BUILD_HASH_LENGTHS",
    "MAX_VERSION_LENGTH",
    "ParsedVersion",
    "SemverColumns",
    "VersionInfo",
    "VersionInfoVersion",
    "build_number_from_code",
    "is_build_hash",
    "is_valid_version",
    "parse_release",
    "semver_columns",
    "validate_version",
    "version_info",
]

#: Longest version accepted by the API (DRF ``max_length``) and by the parser (bytes).
MAX_VERSION_LENGTH: Final = 200
#: Largest value of a signed 64-bit integer (PostgreSQL ``bigint``).
BIGINT_MAX: Final = 2**63 - 1
#: Largest value of an unsigned 64-bit integer (the parser's ``u64``).
_U64_MAX: Final = 2**64 - 1
#: Lengths at which a hexadecimal string counts as a build hash.
BUILD_HASH_LENGTHS: Final = frozenset({12, 16, 20, 32, 40, 64})

#: Characters rejected by Sentry's ``Release.is_valid_version`` (``\f`` is ``\x0c``).
_BAD_RELEASE_CHARS: Final = "\r\n\f\t/\\"
#: Characters Rust's ``str::trim`` removes (the Unicode ``White_Space`` property).
_RUST_WHITESPACE: Final = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)

_BAD_PARSER_CHARS_RE: Final = re.compile(r"[\\/\x00-\x1f\x7f]")
_HEX_RE: Final = re.compile(r"[0-9a-fA-F]+")
_PACKAGE_RE: Final = re.compile(r"(?P<package>@?[^@]+)@(?P<rest>.+)")
# A pre-release identifier: a number without leading zeros, or an alphanumeric run
# (hyphens allowed) containing at least one letter or hyphen.
_IDENT: Final = r"(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)"
_VERSION_RE: Final = re.compile(
    rf"""
    (?P<major>[0-9]+)
    (?:\.(?P<minor>[0-9]+))?
    (?:\.(?P<patch>[0-9]+))?
    (?:\.(?P<revision>[0-9]+))?
    (?P<pre>(?:-|[a-z]){_IDENT}?(?:\.{_IDENT})*)?
    (?:\+(?P<build>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?
    """,
    re.VERBOSE,
)

_BLANK_MESSAGE: Final = "This field may not be blank."
_TOO_LONG_MESSAGE: Final = f"Ensure this field has no more than {MAX_VERSION_LENGTH} characters."


class VersionInfoVersion(TypedDict):
    """The ``versionInfo.version`` object; the parsed parts exist only if it parsed."""

    raw: str
    major: NotRequired[int]
    minor: NotRequired[int]
    patch: NotRequired[int]
    pre: NotRequired[str | None]
    buildCode: NotRequired[str | None]
    components: NotRequired[int]


class VersionInfo(TypedDict):
    """The ``versionInfo`` object of the release serializer."""

    package: str | None
    version: VersionInfoVersion
    description: str
    buildHash: str | None


class SemverColumns(TypedDict):
    """The semver columns of the ``Release`` model, ready for ``Release(**columns)``."""

    package: str | None
    major: int | None
    minor: int | None
    patch: int | None
    revision: int | None
    prerelease: str
    build_code: str | None
    build_number: int | None


@dataclass(frozen=True, slots=True)
class ParsedVersion:
    """The result of parsing one release version string.

    ``raw`` is the version part (after the package, if any; the whole trimmed string
    otherwise). The numeric fields, ``pre``, ``build_code`` and ``components`` are
    ``None`` unless the version part parsed (see :attr:`is_semver`).
    """

    package: str | None
    raw: str
    major: int | None
    minor: int | None
    patch: int | None
    revision: int | None
    pre: str | None
    build_code: str | None
    components: int | None
    build_hash: str | None
    description: str
    #: The version text before ``+build`` as written (``None`` unless it parsed).
    raw_short: str | None = None
    #: The numeric components as written, ``None`` for the missing ones.
    raw_quad: tuple[str, str | None, str | None, str | None] | None = None

    @property
    def is_semver(self) -> bool:
        """True when the version part matched the (relaxed) semver pattern."""
        return self.major is not None

    @property
    def fits_bigint(self) -> bool:
        """True when it parsed and every written numeric component fits a signed bigint.

        Checked on the digits as written: a component of 2**64 or more, which the
        parser reports as 0, does not fit either.
        """
        if self.raw_quad is None:
            return False
        return all(int(part) <= BIGINT_MAX for part in self.raw_quad if part is not None)

    @property
    def build_number(self) -> int | None:
        """The build code as an integer when it is one and fits a signed bigint."""
        return build_number_from_code(self.build_code)

    def to_version_info(self) -> VersionInfo:
        """The ``versionInfo`` object exactly as Sentry's release serializer emits it."""
        version: VersionInfoVersion = {"raw": self.raw}
        if (
            self.major is not None
            and self.minor is not None
            and self.patch is not None
            and self.components is not None
        ):
            version["major"] = self.major
            version["minor"] = self.minor
            version["patch"] = self.patch
            version["pre"] = self.pre
            version["buildCode"] = self.build_code
            version["components"] = self.components
        return {
            "package": self.package,
            "version": version,
            "description": self.description,
            "buildHash": self.build_hash,
        }

    def to_semver_columns(self) -> SemverColumns:
        """The model's semver columns (all ``None`` unless semver and bigint-sized)."""
        if not self.fits_bigint:
            return _empty_columns()
        return {
            "package": self.package,
            "major": self.major,
            "minor": self.minor,
            "patch": self.patch,
            "revision": self.revision,
            "prerelease": self.pre or "",
            "build_code": self.build_code,
            "build_number": self.build_number,
        }


def is_build_hash(value: str) -> bool:
    """True for hexadecimal text of length 12, 16, 20, 32, 40 or 64."""
    return len(value) in BUILD_HASH_LENGTHS and _HEX_RE.fullmatch(value) is not None


def build_number_from_code(build_code: str | None) -> int | None:
    """Sentry's ``_convert_build_code_to_build_number``: ``int()`` that fits a bigint."""
    if build_code is None:
        return None
    try:
        number = int(build_code)
    except ValueError:
        return None
    return number if 0 <= number <= BIGINT_MAX else None


def _u64(digits: str | None) -> int:
    """Rust's ``digits.parse::<u64>().unwrap_or_default()``."""
    if not digits:
        return 0
    value = int(digits)
    return value if value <= _U64_MAX else 0


def _parser_rejects(release: str) -> bool:
    """``validate_release`` of the parser, applied to the trimmed string."""
    try:
        size = len(release.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates cannot cross into the parser
        return True
    if size > MAX_VERSION_LENGTH:
        return True
    if release in {".", ".."} or (release.isascii() and release.lower() == "latest"):
        return True
    return _BAD_PARSER_CHARS_RE.search(release) is not None


def parse_release(version: str) -> ParsedVersion | None:
    """Parse a release version the way Sentry does; ``None`` when it is rejected.

    Results are immutable and cached (the list endpoint serializes many releases).
    """
    return _parse_cached(version)


@functools.lru_cache(maxsize=4096)
def _parse_cached(version: str) -> ParsedVersion | None:
    release = version.strip(_RUST_WHITESPACE)
    if _parser_rejects(release):
        return None

    package: str | None = None
    raw = release
    split = _PACKAGE_RE.fullmatch(release)
    if split is not None:
        package = split.group("package")
        raw = split.group("rest")

    match = None
    components = 0
    if package is not None and not is_build_hash(raw):
        match = _VERSION_RE.fullmatch(raw)
        if match is not None:
            components = 1 + sum(
                match.group(name) is not None for name in ("minor", "patch", "revision")
            )
            pre_text = match.group("pre")
            if components == 1 and pre_text is not None and not pre_text.startswith("-"):
                match = None  # `1a1` is not a version, `1-a1` is

    if match is None:
        build_hash = raw if is_build_hash(raw) else None
        if build_hash is not None:
            description = build_hash[:12]
        else:
            description = f"{package}@{raw}" if package is not None else raw
        return ParsedVersion(
            package=package,
            raw=raw,
            major=None,
            minor=None,
            patch=None,
            revision=None,
            pre=None,
            build_code=None,
            components=None,
            build_hash=build_hash,
            description=description,
        )

    pre = match.group("pre")
    if pre is not None and pre.startswith("-"):
        pre = pre[1:]
    build_code = match.group("build")
    # build_hash: the build code if it is a hash; `raw` is never a hash here.
    build_hash = build_code if build_code is not None and is_build_hash(build_code) else None
    before_build = raw[: match.start("build") - 1] if build_code is not None else raw
    if build_hash is not None:
        description = f"{before_build} ({build_hash[:12]})"
    elif build_code is not None:
        description = f"{before_build} ({build_code})"
    else:
        description = before_build
    return ParsedVersion(
        package=package,
        raw=raw,
        major=_u64(match.group("major")),
        minor=_u64(match.group("minor")),
        patch=_u64(match.group("patch")),
        revision=_u64(match.group("revision")),
        pre=pre or None,
        build_code=build_code,
        components=components,
        build_hash=build_hash,
        description=description,
        raw_short=before_build,
        raw_quad=(
            match.group("major"),
            match.group("minor"),
            match.group("patch"),
            match.group("revision"),
        ),
    )


def version_info(version: str) -> VersionInfo | None:
    """The release serializer's ``versionInfo`` (``None`` when the parser rejects it)."""
    parsed = parse_release(version)
    return parsed.to_version_info() if parsed is not None else None


def _empty_columns() -> SemverColumns:
    return {
        "package": None,
        "major": None,
        "minor": None,
        "patch": None,
        "revision": None,
        "prerelease": "",
        "build_code": None,
        "build_number": None,
    }


def semver_columns(version: str) -> SemverColumns:
    """The ``Release`` semver columns for ``version`` (set once, at creation)."""
    parsed = parse_release(version)
    return parsed.to_semver_columns() if parsed is not None else _empty_columns()


def is_valid_version(version: str) -> bool:
    """Sentry's ``Release.is_valid_version`` (no length check)."""
    if any(char in version for char in _BAD_RELEASE_CHARS):
        return False
    stripped = version.strip()
    return not (not stripped or stripped in {".", ".."} or stripped.lower() == "latest")


def validate_version(version: str) -> str | None:
    """The error a POST with this ``version`` gets (docs/api.md §5.5), or ``None`` if it is fine.

    The version is *not* trimmed. Checks run in DRF's order, so an empty string gets
    DRF's blank message and a version over 200 characters DRF's ``max_length`` one.
    """
    if version == "":
        return _BLANK_MESSAGE
    if len(version) > MAX_VERSION_LENGTH:
        return _TOO_LONG_MESSAGE
    if not is_valid_version(version):
        return f"Release with name {version} is not allowed"
    return None
