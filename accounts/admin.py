"""Admin for users, organizations, teams, members and tokens."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import HttpRequest
from django.utils.html import format_html

from . import scopes as s
from .models import ApiToken, Organization, OrganizationMember, Team, User, UserEmail

_NOT_USED = "not used here (accepted, as Sentry does)"

# What each scope allows in this service (the scope maps of ``accounts.permissions``). A user
# token never exceeds its user's role in the organization; see docs/admin.md.
SCOPE_HELP: dict[str, str] = {
    s.ORG_READ: "list repositories (GET …/repos/)",
    s.ORG_WRITE: "list and add repositories",
    s.ORG_ADMIN: "list and add repositories",
    s.ORG_INTEGRATIONS: "list and add repositories",
    s.ORG_BILLING: _NOT_USED,
    s.ORG_CI: "organization tokens only: read and write releases and deploys of every project, "
    "list repositories",
    s.PROJECT_READ: "read releases, their commits and deploys",
    s.PROJECT_WRITE: "read, create and update releases, commits and deploys",
    s.PROJECT_ADMIN: "everything on releases, deleting them included",
    s.PROJECT_RELEASES: "everything on releases, deleting them included (sentry-cli's scope)",
    s.TEAM_READ: _NOT_USED,
    s.TEAM_WRITE: _NOT_USED,
    s.TEAM_ADMIN: _NOT_USED,
    s.MEMBER_READ: _NOT_USED,
    s.MEMBER_WRITE: _NOT_USED,
    s.MEMBER_ADMIN: _NOT_USED,
    s.EVENT_READ: _NOT_USED,
    s.EVENT_WRITE: _NOT_USED,
    s.EVENT_ADMIN: _NOT_USED,
    s.ALERTS_READ: _NOT_USED,
    s.ALERTS_WRITE: _NOT_USED,
}


def _scope_order(scope: str) -> tuple[int, str]:
    # Grouped by resource, the release scopes first: what people come for.
    groups = ("project", "org", "team", "member", "event", "alerts")
    resource = scope.split(":")[0]
    return (groups.index(resource) if resource in groups else len(groups), scope)


SCOPE_CHOICES = [
    (scope, format_html("<code>{}</code> — {}", scope, SCOPE_HELP.get(scope, "")))
    for scope in sorted(s.ALL_SCOPES, key=_scope_order)
]


class UserEmailInline(admin.TabularInline):
    model = UserEmail
    extra = 0


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "name", "email", "is_active", "is_staff", "has_2fa")
    search_fields = ("username", "name", "email")
    inlines = (UserEmailInline,)
    fieldsets = (
        *(DjangoUserAdmin.fieldsets or ()),
        (
            "Sentry profile",
            {"fields": ("name", "avatar_type", "avatar_ident", "has_2fa", "is_managed",
                        "last_active")},
        ),
    )  # fmt: skip


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    ordering = ("slug",)  # autocomplete pages through organizations
    list_display = ("slug", "name", "open_membership", "date_added")
    search_fields = ("slug", "name")


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    ordering = ("organization__slug", "slug")
    list_display = ("slug", "name", "organization")
    list_select_related = ("organization",)
    list_filter = ("organization",)
    search_fields = ("slug", "name")
    autocomplete_fields = ("organization",)


@admin.register(OrganizationMember)
class OrganizationMemberAdmin(admin.ModelAdmin):
    list_display = ("user", "organization", "role", "date_added")
    list_select_related = ("user", "organization")
    list_filter = ("role", "organization")
    search_fields = ("user__username", "user__email", "organization__slug")
    autocomplete_fields = ("user", "organization", "teams")


class ApiTokenForm(forms.ModelForm):
    """Scopes as checkboxes, each with what it allows, instead of a JSON list."""

    scopes = forms.MultipleChoiceField(
        choices=SCOPE_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Organization tokens carry org:ci only (ticked for you if you tick nothing).",
    )

    class Meta:
        model = ApiToken
        fields = ("kind", "user", "organization", "name", "scopes", "expires_at")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not cleaned.get("scopes") and cleaned.get("kind") == ApiToken.Kind.ORGANIZATION:
            cleaned["scopes"] = sorted(s.ORG_TOKEN_SCOPES)
        return cleaned


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are generated on save and shown once, in the confirmation message."""

    form = ApiTokenForm

    class Media:
        css = {"all": ("accounts/admin.css",)}

    list_display = ("__str__", "kind", "user", "organization", "scope_list", "date_added",
                    "last_used")  # fmt: skip
    list_select_related = ("user", "organization")
    list_filter = ("kind",)
    search_fields = ("name", "user__username", "organization__slug", "token_last_characters")
    autocomplete_fields = ("user", "organization")
    readonly_fields = ("token_last_characters", "last_used")
    fields = ("kind", "user", "organization", "name", "scopes", "expires_at",
              "token_last_characters", "last_used")  # fmt: skip

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        secret = None if change else obj.set_new_token()
        super().save_model(request, obj, form, change)
        if secret:
            messages.warning(
                request,
                format_html(
                    'Token created: <code class="new-token">{}</code> — copy it now, it will '
                    "not be shown again.",
                    secret,
                ),
            )

    @admin.display(description="scopes")
    def scope_list(self, obj: ApiToken) -> str:
        return " ".join(obj.scopes)
