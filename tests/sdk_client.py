"""A tiny program using the real sentry-sdk, run by ``test_sdk.py`` in its own process.

``python tests/sdk_client.py DSN RELEASE MODE`` where MODE is ``application`` (three user
sessions: clean, a handled error, a crash through an unhandled exception) or ``request``
(four WSGI requests through ``SentryWsgiMiddleware``, the last one raising) or ``flood`` (five
errors one after another, to meet a rate limit). The SDK keeps
its default transport and compression; it is closed so that everything is delivered.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any
from urllib.parse import urlsplit
from wsgiref.util import setup_testing_defaults

import sentry_sdk
from sentry_sdk.integrations.wsgi import SentryWsgiMiddleware
from sentry_sdk.utils import event_from_exception


def application_mode() -> None:
    sentry_sdk.set_user({"id": "user-1"})
    sentry_sdk.start_session()
    sentry_sdk.end_session()

    sentry_sdk.set_user({"id": "user-2"})
    sentry_sdk.start_session()
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        sentry_sdk.capture_exception()
    sentry_sdk.end_session()

    sentry_sdk.set_user({"id": "user-3"})
    sentry_sdk.start_session()
    try:
        raise RuntimeError("fatal")
    except RuntimeError:
        # What the excepthook integration sends for an uncaught exception.
        event, hint = event_from_exception(
            sys.exc_info(),
            client_options=sentry_sdk.get_client().options,
            mechanism={"type": "excepthook", "handled": False},
        )
        sentry_sdk.capture_event(event, hint=hint)
    sentry_sdk.end_session()


def request_mode() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/boom":
            raise KeyError("missing")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    wrapped = SentryWsgiMiddleware(app)
    for path in ["/", "/a", "/b", "/boom"]:
        environ: dict[str, Any] = {"PATH_INFO": path}
        setup_testing_defaults(environ)
        with contextlib.suppress(KeyError):
            list(wrapped(environ, lambda status, headers, exc_info=None: None))


def flood_mode() -> None:
    """Five distinct errors, each delivered before the next is captured."""
    for n in range(5):
        sentry_sdk.capture_message(f"flood {n}", level="error")
        sentry_sdk.flush(timeout=10)


MODES = {"application": application_mode, "request": request_mode, "flood": flood_mode}


def main(dsn: str, release: str, mode: str) -> None:
    if urlsplit(dsn).hostname != "127.0.0.1":
        raise SystemExit("refusing to send anywhere but 127.0.0.1")
    sentry_sdk.init(
        dsn=dsn,
        release=release,
        environment="production",
        auto_session_tracking=True,
        default_integrations=False,
        auto_enabling_integrations=False,
        shutdown_timeout=10,
    )
    MODES[mode]()
    sentry_sdk.flush(timeout=10)
    sentry_sdk.get_client().close(timeout=10)


if __name__ == "__main__":
    main(*sys.argv[1:4])
