"""Run the real gunicorn (config/gunicorn.conf.py, DEBUG=0) against the test database.

``serve(**env)`` is a context manager yielding the base URL of a server on a free loopback
port, started with the production configuration and the test database's ``DATABASE_URL``
(pytest-django's ``test_<name>`` database: use it from a ``transaction=True`` test so that the
server sees committed rows). It waits for ``/_health/`` and stops the server afterwards.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
# As in the Makefile's ``serve`` target.
COLLECTSTATIC = ["collectstatic", "--no-input", "-v", "0", "--ignore", "rest_framework"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url_for_tests() -> str:
    """The URL of the database this test process uses (PostgreSQL only)."""
    db = connection.settings_dict
    assert db["ENGINE"] == "django.db.backends.postgresql", "a server needs a shared database"
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def base_env(**env: str) -> dict[str, str]:
    """The server's environment: ours less Django/test variables, plus production settings."""
    inherited = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "DEBUG") and "PROXY" not in k.upper()
    }
    return {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "0",
        "SECRET_KEY": "gunicorn-test-" + "k" * 50,
        "WEB_CONCURRENCY": "2",
        "SCHEDULER": "0",
        "GUNICORN_ACCESS_LOG": "-",
        **env,
    }


@functools.cache
def collected_static() -> Path:
    """A folder filled by ``collectstatic`` as ``make serve`` does, once per test run."""
    static_root = Path(tempfile.mkdtemp(prefix="static-"))
    atexit.register(shutil.rmtree, static_root, ignore_errors=True)
    result = subprocess.run(  # noqa: S603 - our own manage.py, fixed arguments
        [sys.executable, "manage.py", *COLLECTSTATIC],
        cwd=ROOT,
        env=base_env(STATIC_ROOT=str(static_root), DATABASE_URL="sqlite://"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return static_root


def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """``GET url`` → (status, headers, body), for any status."""
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback URL
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@contextlib.contextmanager
def serve(log: Path, **env: str) -> Iterator[str]:
    """Start gunicorn with ``env`` (DATABASE_URL defaults to the test database's)."""
    port = free_port()
    env.setdefault("DATABASE_URL", database_url_for_tests())
    env.setdefault("STATIC_ROOT", str(collected_static()))
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own server, fixed arguments
            [str(GUNICORN), "-c", "config/gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=base_env(**env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, log.read_text()
                with contextlib.suppress(OSError):
                    if get(f"{url}/_health/")[0] == 200:
                        break
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            yield url
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for(predicate: Any, *, seconds: float = 60, what: str = "condition") -> None:
    """Poll ``predicate()`` until it is true; fail after ``seconds`` (a bound, not a timing)."""
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.25)
