"""Serving for real: ``/_health/``, gunicorn with the production settings, static files, and
``check --deploy`` with the documented production environment."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import sys

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from tests.factories import ReleaseFactory
from tests.gunicorn_server import ROOT, base_env, free_port, get, serve

# -- /_health/ in process ----------------------------------------------------------------------


def test_liveness_answers_without_touching_the_database(client):
    # Not marked django_db: pytest-django fails any database access here.
    response = client.get("/_health/")

    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readiness_checks_database_and_migrations(client):
    response = client.get("/_health/?full=1")

    assert response.status_code == 200, response.content
    assert response.json() == {"ok": True, "problems": []}


@pytest.mark.django_db
def test_readiness_names_an_unapplied_migration(client):
    # The test transaction rolls this back: the migration is recorded as applied again.
    (leaf,) = MigrationLoader(connection).graph.leaf_nodes("releases")
    MigrationRecorder(connection).record_unapplied(*leaf)

    response = client.get("/_health/?full=1")

    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert body["detail"] == f"Unapplied migrations: releases.{leaf[1]}"
    assert body["problems"] == [body["detail"]]


@pytest.mark.postgresql
@pytest.mark.django_db
def test_postgresql_connections_run_without_jit():
    # config/settings.py: JIT off (DB_JIT), docs/performance.md §6.5.
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone() == ("off",)


@pytest.mark.django_db
def test_health_check_is_never_redirected_to_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/_health/?full=1").status_code == 200
    redirected = client.get("/api/0/")
    assert redirected.status_code == 301
    assert redirected["Location"] == "https://testserver/api/0/"


def test_health_check_refuses_other_methods_in_json(client):
    response = client.post("/_health/")

    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "POST" not allowed.'}
    assert response["Allow"] == "GET, HEAD"


# -- gunicorn ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_gunicorn_serves_api_health_and_styled_admin(tmp_path, token, org, project):
    ReleaseFactory(organization=org, version="app@1.0.0", projects=[project])
    bearer = {"Authorization": f"Bearer {token()}"}

    with serve(tmp_path / "gunicorn.log") as url:
        api = get(f"{url}/api/0/organizations/acme/releases/", **bearer)
        ready = get(f"{url}/_health/?full=1")
        login = get(f"{url}/admin/login/")
        stylesheet = re.search(rb'href="(/static/admin/css/base\.[0-9a-f]+\.css)"', login[2])
        assert stylesheet, login[2][:2000]
        css = get(f"{url}{stylesheet.group(1).decode()}", **{"Accept-Encoding": "gzip"})
        missing = get(f"{url}/static/admin/css/nothing.css")
    log = (tmp_path / "gunicorn.log").read_text()

    assert api[0] == 200, api[2]
    assert [r["version"] for r in json.loads(api[2])] == ["app@1.0.0"]
    assert (ready[0], json.loads(ready[2])) == (200, {"ok": True, "problems": []})
    assert login[0] == 200
    assert css[0] == 200
    assert css[1]["Content-Type"].startswith("text/css")
    assert css[1].get("Content-Encoding") == "gzip"
    assert "immutable" in css[1]["Cache-Control"]
    assert missing[0] == 404
    # The access log (config/gunicorn.conf.py's format): request line, status, duration.
    assert re.search(r'"GET /api/0/organizations/acme/releases/ HTTP/1.1" 200 \d+ \d+ms', log)
    assert "Booting worker with pid" in log
    assert "[ERROR]" not in log, log


@pytest.mark.django_db(transaction=True)
def test_gunicorn_keeps_answering_while_slow_clients_hold_connections(tmp_path, token, project):
    # Issue 12: with sync workers, two such clients stopped a two-worker server.
    bearer = {"Authorization": f"Bearer {token()}"}
    head = b"GET /_health/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    body = (
        f"POST /api/{project.pk}/envelope/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Length: 1000\r\n\r\n{{{{{{{{{{"
    ).encode()

    with serve(tmp_path / "gunicorn.log") as url, contextlib.ExitStack() as stack:
        port = int(url.rsplit(":", 1)[1])
        for n in range(40):
            slow = stack.enter_context(socket.create_connection(("127.0.0.1", port)))
            slow.sendall(head if n % 2 else body)
        live = get(f"{url}/_health/")
        api = get(f"{url}/api/0/organizations/acme/releases/", **bearer)

    assert live[0] == 200
    assert api[0] == 200, api[2]


def test_gunicorn_liveness_holds_while_the_database_is_unreachable(tmp_path):
    nowhere = f"postgres://nobody@127.0.0.1:{free_port()}/nothing"

    with serve(
        tmp_path / "gunicorn.log",
        DATABASE_URL=nowhere,
        DB_POOL_TIMEOUT="2",
    ) as url:
        live = get(f"{url}/_health/")
        ready = get(f"{url}/_health/?full=1")

    assert (live[0], json.loads(live[2])) == (200, {"ok": True})
    assert ready[0] == 503
    body = json.loads(ready[2])
    assert body["ok"] is False
    assert body["detail"].startswith("Database unreachable:"), body


# -- manage.py check --deploy ------------------------------------------------------------------

# The production environment documented in docs/operations.md (behind a TLS proxy).
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "x7Qp2mVb9Lr4Tz8Wc1Ny6Hd3Ks5Fg0Ja_-+Ue7Io9Pl2Mn4Bv6Cx8Zq1Wr3Ty5",
    "ALLOWED_HOSTS": "releases.example.com",
    "DATABASE_URL": "postgres://releases@127.0.0.1:5432/releases",
    "SECURE_PROXY_SSL_HEADER": "1",
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_COOKIES": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
}


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=base_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_is_silent_with_the_documented_production_environment():
    result = check_deploy(PRODUCTION_ENV)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."


def test_check_deploy_warns_on_the_loopback_defaults():
    env = {**PRODUCTION_ENV}
    for name in [k for k in env if k.startswith("SECURE_")]:
        del env[name]

    result = check_deploy(env)

    assert result.returncode == 1
    for code in ("W004", "W008", "W012", "W016"):
        assert f"security.{code}" in result.stderr
