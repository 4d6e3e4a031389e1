"""The local, git-ignored file in which ``make run`` keeps its demo password and token.

Tokens are stored hashed, so a token that should be printed again on the next start has to be
kept in plain text somewhere: here, ``.demo-credentials`` in the project directory, readable
by its owner only. It is for a local demo server; see docs/admin.md.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from django.conf import settings


def default_path() -> Path:
    return Path(settings.BASE_DIR) / ".demo-credentials"


def load(path: Path) -> dict[str, dict[str, str]]:
    """``{"passwords": {username: password}, "tokens": {name: token}}``; empty if absent."""
    try:
        data: Any = json.loads(path.read_text())
    except FileNotFoundError:
        data = {}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a credentials file: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a credentials file.")
    return {
        section: {str(k): str(v) for k, v in dict(data.get(section) or {}).items()}
        for section in ("passwords", "tokens")
    }


def remember(path: Path, section: str, key: str, value: str) -> None:
    """Store ``value`` under ``section``/``key``, keeping the rest; the file is mode 0600."""
    data = load(path)
    data.setdefault(section, {})[key] = value
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=2, sort_keys=True)
        out.write("\n")
    tmp.replace(path)
