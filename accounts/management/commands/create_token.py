"""``create_token``: create a user token (``--user``) or an organization token (``--org``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import credentials
from accounts.models import ApiToken, Organization, User, hash_token
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
        parser.add_argument(
            "--reuse",
            action="store_true",
            help="keep the token in the credentials file under --name and print that one "
            "again while it still works with the same owner and scopes (for make run)",
        )
        parser.add_argument(
            "--credentials",
            type=Path,
            default=None,
            help="the file --reuse uses (default: .demo-credentials in the project)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        token = self.build(options)
        try:
            token.full_clean(exclude=["token_hash", "token_last_characters"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        if not options["reuse"]:
            secret = token.set_new_token()
            token.save()
            self.stdout.write(secret)
            return
        if not options["name"]:
            raise CommandError("--reuse needs --name: the name the token is kept under.")
        path = options["credentials"] or credentials.default_path()
        try:
            kept = credentials.load(path)["tokens"].get(options["name"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if kept and self.still_works(kept, token):
            self.stdout.write(kept)
            return
        secret = token.set_new_token()
        token.save()
        credentials.remember(path, "tokens", options["name"], secret)
        self.stdout.write(secret)

    def build(self, options: dict[str, Any]) -> ApiToken:
        """The token asked for, not saved and without a secret yet."""
        if options["org"]:
            if options["scopes"]:
                raise CommandError("--scopes applies to user tokens; org tokens carry org:ci.")
            organization = Organization.objects.filter(slug=options["org"]).first()
            if organization is None:
                raise CommandError(f"No organization with slug {options['org']!r}.")
            return ApiToken(
                kind=ApiToken.Kind.ORGANIZATION,
                organization=organization,
                scopes=sorted(ORG_TOKEN_SCOPES),
                name=options["name"],
            )
        user = User.objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user with username {options['user']!r}.")
        scopes = (options["scopes"] or DEFAULT_USER_SCOPES).replace(",", " ").split()
        if not scopes:
            raise CommandError("Give at least one scope.")
        return ApiToken(user=user, scopes=scopes, name=options["name"])

    @staticmethod
    def still_works(secret: str, wanted: ApiToken) -> bool:
        """The kept token exists, has not expired and has the wanted owner and scopes."""
        kept = ApiToken.objects.active().filter(token_hash=hash_token(secret)).first()
        return (
            kept is not None
            and (kept.kind, kept.user_id, kept.organization_id)
            == (wanted.kind, wanted.user_id, wanted.organization_id)
            and sorted(set(kept.scopes)) == wanted.scopes
        )
