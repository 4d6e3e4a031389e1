"""Filters for the release page's commit list and deploy timeline."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def first_line(text: str | None) -> str:
    """A commit message's subject: its first non-empty line."""
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


@register.filter
def short_sha(key: str | None) -> str:
    """Seven characters, as git and Sentry's web UI show a commit."""
    return (key or "")[:7]
