"""SQLite as the embedded database: reads never wait for the write lock, and a write that cannot
get it within SQLITE_BUSY_TIMEOUT is a JSON 503 with Retry-After (docs/reliability.md).

Runs ``sqlite_contention.py`` in its own process on a SQLite file, with the real settings and
``DEBUG=1`` (which once answered a locked database with an HTML traceback), whatever database
the suite itself uses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).with_name("sqlite_contention.py")


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    database = tmp_path_factory.mktemp("sqlite") / "db.sqlite3"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DATABASE_URL=f"sqlite:///{database}",
        DEBUG="1",
        SQLITE_BUSY_TIMEOUT="0.2",
        DATABASE_RETRY_AFTER="3",
    )
    result = subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout.decode().splitlines()[-1])


def test_a_read_answers_while_a_writer_holds_the_lock(answers):
    read = answers["read_while_locked"]

    assert read["status"] == 200, read
    assert [r["version"] for r in json.loads(read["body"])] == ["a@1"]


def test_a_write_that_cannot_get_the_lock_is_503_json_with_retry_after(answers):
    write = answers["write_while_locked"]

    assert write["status"] == 503, write
    assert write["content_type"] == "application/json"
    assert write["retry_after"] == "3"
    assert json.loads(write["body"]) == {
        "detail": "The database is unavailable or busy; retry later."
    }


def test_writes_go_through_once_the_lock_is_released_and_the_failed_one_left_nothing(answers):
    assert answers["write_after"]["status"] == 201, answers["write_after"]
    versions = {r["version"] for r in json.loads(answers["read_after"]["body"])}
    assert versions == {"a@1", "c@1"}
