"""Run by ``test_sqlite.py`` in its own process, on a SQLite file given as ``DATABASE_URL``.

Migrates, creates a member with a token, then answers a read and a write while a second
connection holds SQLite's write lock (``BEGIN IMMEDIATE``), and a write once it is released.
Prints the answers as JSON: ``{name: {"status", "retry_after", "content_type", "body"}}``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from tests.factories import (  # noqa: E402
    MemberFactory,
    OrganizationFactory,
    ProjectFactory,
    ReleaseFactory,
    TeamFactory,
    create_token,
)

SCOPES = ["org:read", "project:read", "project:write", "project:releases"]


def answer(response: Any) -> dict[str, Any]:
    return {
        "status": response.status_code,
        "retry_after": response.get("Retry-After"),
        "content_type": response.get("Content-Type"),
        "body": response.content.decode(),
    }


def main() -> None:
    call_command("migrate", verbosity=0)
    org = OrganizationFactory(slug="acme")
    team = TeamFactory(organization=org)
    project = ProjectFactory(organization=org, slug="backend", teams=[team])
    member = MemberFactory(organization=org, teams=[team])
    ReleaseFactory(organization=org, version="a@1", projects=[project])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {create_token(user=member.user, scopes=SCOPES)}")
    releases = "/api/0/organizations/acme/releases/"
    client.get(releases)  # records the token's last use

    def create(version: str) -> Any:
        return client.post(
            releases,
            {"version": version, "projects": ["backend"]},
            content_type="application/json",
        )

    holder = sqlite3.connect(settings.DATABASES["default"]["NAME"], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    answers = {"read_while_locked": answer(client.get(releases))}
    answers["write_while_locked"] = answer(create("b@1"))
    holder.execute("ROLLBACK")
    answers["write_after"] = answer(create("c@1"))
    answers["read_after"] = answer(client.get(releases))
    print(json.dumps(answers))


if __name__ == "__main__":
    main()
