"""Users, organizations, teams, memberships and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from typing import ClassVar

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from . import scopes as scope_names


class User(AbstractUser):
    """A person. ``email`` is the primary address; ``emails`` holds all of them."""

    class AvatarType(models.TextChoices):
        LETTER = "letter_avatar"
        UPLOAD = "upload"
        GRAVATAR = "gravatar"

    name = models.CharField(max_length=200, blank=True)
    avatar_type = models.CharField(
        max_length=20, choices=AvatarType.choices, default=AvatarType.LETTER
    )
    avatar_ident = models.CharField(max_length=64, blank=True)
    has_2fa = models.BooleanField("has 2FA", default=False)
    is_managed = models.BooleanField(default=False)
    last_active = models.DateTimeField(null=True, blank=True)

    def get_display_name(self) -> str:
        return self.name or self.email or self.username


class UserEmail(models.Model):
    """An e-mail address of a user, primary or not, with its verification state."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="emails")
    email = models.EmailField(max_length=200)
    is_verified = models.BooleanField(default=False)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["user", "email"], name="unique_user_email"),
        ]

    def __str__(self) -> str:
        return self.email


class Organization(models.Model):
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=64)
    open_membership = models.BooleanField(
        default=False, help_text="Members may access every team's projects."
    )
    date_added = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.slug


class Team(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="teams")
    slug = models.SlugField(max_length=50)
    name = models.CharField(max_length=64)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["organization", "slug"], name="unique_team_slug"),
        ]

    def __str__(self) -> str:
        return f"{self.organization.slug}/{self.slug}"


class OrganizationMember(models.Model):
    class Role(models.TextChoices):
        MEMBER = "member"
        ADMIN = "admin"
        MANAGER = "manager"
        OWNER = "owner"
        BILLING = "billing"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    teams = models.ManyToManyField(Team, blank=True, related_name="members")
    date_added = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["organization", "user"], name="unique_org_member"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def active(self) -> ApiTokenQuerySet:
        return self.filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=timezone.now())
        )


class ApiToken(models.Model):
    """A bearer token. Only its SHA-256 is stored; the token itself is shown once.

    A *user* token acts as its user, limited to its scopes. An *organization* token (``org:ci``)
    sees every project of its own organization and nothing else.
    """

    class Kind(models.TextChoices):
        USER = "user"
        ORGANIZATION = "org"

    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.USER)
    user = models.ForeignKey(
        User, on_delete=models.CASCADE, null=True, blank=True, related_name="api_tokens"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, null=True, blank=True, related_name="api_tokens"
    )
    name = models.CharField(max_length=255, blank=True)
    scopes = models.JSONField(default=list)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_last_characters = models.CharField(max_length=4, editable=False)
    date_added = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=(
                    models.Q(kind="user", user__isnull=False, organization__isnull=True)
                    | models.Q(kind="org", user__isnull=True, organization__isnull=False)
                ),
                name="api_token_owner_matches_kind",
            ),
        ]

    def __str__(self) -> str:
        owner = self.user if self.kind == self.Kind.USER else self.organization
        return f"{self.name or 'token'} of {owner} (…{self.token_last_characters})"

    def clean(self) -> None:
        """Scopes are a list of known names; organization tokens carry only ``org:ci``."""
        if not isinstance(self.scopes, list) or not all(isinstance(s, str) for s in self.scopes):
            raise ValidationError({"scopes": "Give a list of scope names."})
        unknown = sorted(set(self.scopes) - scope_names.ALL_SCOPES)
        if unknown:
            raise ValidationError(
                {
                    "scopes": f"Unknown scope(s): {', '.join(unknown)}. "
                    f"Valid: {' '.join(sorted(scope_names.ALL_SCOPES))}"
                }
            )
        if (
            self.kind == self.Kind.ORGANIZATION
            and not set(self.scopes) <= scope_names.ORG_TOKEN_SCOPES
        ):
            raise ValidationError({"scopes": "Organization tokens carry org:ci only."})
        self.scopes = sorted(set(self.scopes))

    def set_new_token(self) -> str:
        """Generate a fresh secret, store its hash and return the secret (shown once)."""
        prefix = "sntryu_" if self.kind == self.Kind.USER else "sntryo_"
        token = prefix + secrets.token_hex(32)
        self.token_hash = hash_token(token)
        self.token_last_characters = token[-4:]
        return token


class RateLimitWindow(models.Model):
    """Requests counted for one rate-limit scope and identity in one fixed window
    (``accounts.ratelimits``); windows older than a day are pruned as hits arrive. ``UNLOGGED``
    on PostgreSQL (migration 0003): a count's commit waits for no disk flush."""

    key = models.CharField(max_length=200, help_text="Scope and identity, e.g. api_token:42.")
    window_start = models.BigIntegerField(help_text="Unix time the window starts at.")
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["key", "window_start"], name="unique_ratelimit_window"),
        ]
        indexes: ClassVar = [models.Index(fields=["window_start"], name="ratelimit_window_start")]

    def __str__(self) -> str:
        return f"{self.key} @ {self.window_start}: {self.count}"
