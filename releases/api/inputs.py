"""Input serializers of the write endpoints: releases, commits, refs, deploys and repositories.

They validate with Sentry's messages (docs/api.md §4.1 and §5.5) and turn the wire format
into the keyword arguments of ``services.py``. Unknown keys are ignored, as in Sentry.
"""

from __future__ import annotations

import re
from typing import Any

from django.db.models import Q
from rest_framework import serializers

from accounts.models import User

from ..access import Access, find_projects, is_id
from ..models import PROVIDER_NAMES, Project, ReleaseStatus
from ..services import CommitData, RefData
from ..versioning import MAX_VERSION_LENGTH, validate_version

MAX_COMMIT_LENGTH = 64
RANGE = ".."
STATUSES = {"open": ReleaseStatus.OPEN, "archived": ReleaseStatus.ARCHIVED}
PATCH_TYPES = ("A", "D", "M")
# Sentry's ``Environment.is_valid_name``.
ENVIRONMENT_NAME = re.compile(r"^[^\n\r\f/]*$")


def _optional_text(max_length: int | None = None) -> serializers.CharField:
    return serializers.CharField(
        max_length=max_length, required=False, allow_null=True, allow_blank=True
    )


class PatchSetItemSerializer(serializers.Serializer):
    """One ``patch_set`` item: ``{"path": ..., "type": "A" | "D" | "M"}``."""

    path = serializers.CharField(max_length=510, trim_whitespace=False)
    type = serializers.CharField()

    default_error_messages = {
        "invalid": "Each patch_set item must be an object with a path and a type (A, D or M).",
        "null": "Each patch_set item must be an object with a path and a type (A, D or M).",
    }

    def validate_type(self, value: str) -> str:
        if value not in PATCH_TYPES:
            raise serializers.ValidationError(f"Commit patch_set type {value} is not supported.")
        return value

    def to_internal_value(self, data: Any) -> tuple[str, str]:
        values = super().to_internal_value(data)
        return values["path"], values["type"]


class CommitInputSerializer(serializers.Serializer):
    """One item of ``commits`` (what ``set-commits --local`` sends)."""

    id = serializers.CharField(max_length=MAX_COMMIT_LENGTH)
    repository = _optional_text(64)
    message = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, trim_whitespace=False
    )
    author_name = _optional_text(128)
    author_email = _optional_text(200)
    timestamp = serializers.DateTimeField(required=False, allow_null=True)
    # A ListField, not ``many=True``: with ``many=True`` the list's ``allow_null`` reaches the
    # items too, and ``[null]`` would pass.
    patch_set = serializers.ListField(
        child=PatchSetItemSerializer(), required=False, allow_null=True
    )

    def to_internal_value(self, data: Any) -> CommitData:
        values = super().to_internal_value(data)
        return CommitData(
            id=values["id"],
            repository=values.get("repository") or None,
            message=values.get("message"),
            author_name=values.get("author_name") or None,
            author_email=values.get("author_email") or None,
            timestamp=values.get("timestamp"),
            patch_set=tuple(values.get("patch_set") or ()),
        )


class RefSerializer(serializers.Serializer):
    """One item of ``refs``: ``commit`` may be a range ``prev..cur``."""

    repository = serializers.CharField(max_length=200)
    commit = serializers.CharField()
    previousCommit = _optional_text(MAX_COMMIT_LENGTH)

    def validate_commit(self, value: str) -> str:
        if RANGE not in value:
            if len(value) > MAX_COMMIT_LENGTH:
                raise serializers.ValidationError("Commit too long - max is 64 chars")
            return value
        parts = value.split(RANGE)
        if len(parts) != 2 or not all(parts):
            raise serializers.ValidationError("Commit cannot begin or end with ..")
        if any(len(part) > MAX_COMMIT_LENGTH for part in parts):
            raise serializers.ValidationError("Start or end commit too long - max is 64 chars each")
        return value

    def to_internal_value(self, data: Any) -> RefData:
        values = super().to_internal_value(data)
        previous, commit = values.get("previousCommit") or None, values["commit"]
        if RANGE in commit:
            previous, commit = commit.split(RANGE)
        return RefData(repository=values["repository"], commit=commit, previous_commit=previous)


class HeadCommitSerializer(serializers.Serializer):
    """One item of the deprecated ``headCommits``: a ref under other names."""

    currentId = serializers.CharField(max_length=MAX_COMMIT_LENGTH)
    repository = serializers.CharField(max_length=64)
    previousId = _optional_text(MAX_COMMIT_LENGTH)

    def to_internal_value(self, data: Any) -> RefData:
        values = super().to_internal_value(data)
        return RefData(
            repository=values["repository"],
            commit=values["currentId"],
            previous_commit=values.get("previousId") or None,
        )


class ReleaseUpdateSerializer(serializers.Serializer):
    """``PUT …/releases/{version}/`` (docs/api.md §4.1)."""

    ref = _optional_text(MAX_VERSION_LENGTH)
    url = serializers.URLField(required=False, allow_null=True, allow_blank=True, max_length=200)
    dateReleased = serializers.DateTimeField(required=False, allow_null=True)
    status = serializers.CharField(required=False)
    commits = CommitInputSerializer(many=True, required=False)
    refs = RefSerializer(many=True, required=False)
    headCommits = HeadCommitSerializer(many=True, required=False)

    def validate_status(self, value: str) -> int:
        if value not in STATUSES:
            raise serializers.ValidationError(f"Invalid status {value}")
        return STATUSES[value]

    def commit_arguments(self) -> dict[str, Any]:
        """The keyword arguments of ``services.release_set_commits_and_refs``."""
        data = self.validated_data
        return {
            "commits": data.get("commits"),
            "refs": data.get("refs"),
            "head_commits": data.get("headCommits"),
        }


class ReleaseCreateSerializer(ReleaseUpdateSerializer):
    """``POST …/releases/`` (docs/api.md §5.5). Context: ``access`` (the caller's Access)."""

    version = serializers.CharField(trim_whitespace=False, allow_blank=True)
    projects = serializers.ListField()
    owner = serializers.CharField(required=False, allow_null=True, allow_blank=True)

    def validate_version(self, value: str) -> str:
        error = validate_version(value)
        if error:
            raise serializers.ValidationError(error)
        return value

    def validate_projects(self, values: list[Any]) -> list[Project]:
        """Ids (int or numeric string) or slugs of the caller's member projects."""
        if any(isinstance(v, bool) or not isinstance(v, int | str) for v in values):
            raise serializers.ValidationError("Invalid project ids or slugs")
        access: Access = self.context["access"]
        found = find_projects(access.member_projects(), values)
        if found is None:
            raise serializers.ValidationError("Invalid project ids or slugs")
        return found

    def validate_owner(self, value: str | None) -> User | None:
        if not value:
            return None
        lookup = Q(username__iexact=value) | Q(email__iexact=value)
        if is_id(value):
            lookup |= Q(pk=int(value))
        access: Access = self.context["access"]
        users = User.objects.filter(lookup, is_active=True).order_by("pk")
        # A member wins over another account that shares the username or e-mail.
        member = users.filter(memberships__organization=access.organization).first()
        if member is not None:
            return member
        if users.exists():
            raise serializers.ValidationError("User does not have access to this organization")
        raise serializers.ValidationError("Unable to find user")


class DeployCreateSerializer(serializers.Serializer):
    """``POST …/releases/{version}/deploys/``."""

    environment = serializers.CharField(max_length=64)
    name = _optional_text(64)
    url = serializers.URLField(required=False, allow_null=True, allow_blank=True, max_length=200)
    dateStarted = serializers.DateTimeField(required=False, allow_null=True)
    dateFinished = serializers.DateTimeField(required=False, allow_null=True)
    projects = serializers.ListField(child=serializers.CharField(), required=False)

    def validate_environment(self, value: str) -> str:
        if not ENVIRONMENT_NAME.match(value):
            raise serializers.ValidationError("Invalid value for environment")
        return value

    def validate_projects(self, values: list[str]) -> list[Project]:
        """Slugs or ids of the release's projects (context ``release_projects``)."""
        projects: list[Project] = self.context["release_projects"]
        known = {p.slug: p for p in projects} | {str(p.pk): p for p in projects}
        if not set(values) <= set(known):
            raise serializers.ValidationError("Invalid project ids or slugs")
        return list({known[value].pk: known[value] for value in values}.values())


class RepositoryCreateSerializer(serializers.Serializer):
    """``POST /organizations/{org}/repos/``: a repository without an integration."""

    name = serializers.CharField(max_length=200)
    url = serializers.URLField(required=False, allow_null=True, allow_blank=True, max_length=200)
    provider = serializers.ChoiceField(
        choices=sorted(PROVIDER_NAMES), required=False, allow_null=True
    )


class ProjectReleaseCreateSerializer(ReleaseCreateSerializer):
    """The legacy project-scoped POST: the project comes from the URL, ``projects`` is ignored."""

    projects = serializers.ListField(required=False)
