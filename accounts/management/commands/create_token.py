"""``create_token``: create a user token (``--user``) or an organization token (``--org``)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import ApiToken, Organization, User
from accounts.scopes import ORG_TOKEN_SCOPES

DEFAULT_USER_SCOPES = "org:read project:read project:releases"


class Command(BaseCommand):
    help = "Create an API token and print it (only the token, on the last line)."

    def add_arguments(self, parser: CommandParser) -> None:
        owner = parser.add_mutually_exclusive_group(required=True)
        owner.add_argument("--user", help="username: create a user token acting as this user")
        owner.add_argument("--org", help="organization slug: create an org:ci token")
        parser.add_argument(
            "--scopes",
            help=f"user token scopes, space/comma-separated (default: {DEFAULT_USER_SCOPES})",
        )
        parser.add_argument("--name", default="", help="a label shown in the admin")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["org"]:
            if options["scopes"]:
                raise CommandError("--scopes applies to user tokens; org tokens carry org:ci.")
            organization = Organization.objects.filter(slug=options["org"]).first()
            if organization is None:
                raise CommandError(f"No organization with slug {options['org']!r}.")
            token = ApiToken(
                kind=ApiToken.Kind.ORGANIZATION,
                organization=organization,
                scopes=sorted(ORG_TOKEN_SCOPES),
                name=options["name"],
            )
        else:
            user = User.objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user with username {options['user']!r}.")
            scopes = (options["scopes"] or DEFAULT_USER_SCOPES).replace(",", " ").split()
            if not scopes:
                raise CommandError("Give at least one scope.")
            token = ApiToken(user=user, scopes=scopes, name=options["name"])
        secret = token.set_new_token()
        try:
            token.full_clean()
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        token.save()
        self.stdout.write(secret)
