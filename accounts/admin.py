"""Admin for users, organizations, teams, members and tokens."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import HttpRequest

from .models import ApiToken, Organization, OrganizationMember, Team, User, UserEmail


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
    list_display = ("slug", "name", "open_membership", "date_added")
    search_fields = ("slug", "name")


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
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


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are generated on save and shown once, in the confirmation message."""

    list_display = ("__str__", "kind", "user", "organization", "date_added", "last_used")
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
                request, f"Token created: {secret} — copy it now, it will not be shown again."
            )
