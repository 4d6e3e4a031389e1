"""gunicorn settings for production (``make serve``); each value can be overridden by env.

gevent workers: a slow or stalled client costs a greenlet, not a worker or a thread; the
figures behind the choice are in docs/operations.md. On PostgreSQL each worker keeps a psycopg
pool (``DB_POOL_MAX_SIZE``), since greenlets would otherwise each hold a connection. Each worker
also runs the background scheduler (releases/scheduler.py) unless ``SCHEDULER=0``.
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

_host = os.environ.get("HOST", "127.0.0.1")
bind = os.environ.get("GUNICORN_BIND", f"{_host}:{os.environ.get('PORT', '8000')}")
# CPUs + 1 rather than gunicorn's 2 x CPUs + 1 (advice for sync workers): each gevent worker
# serves many requests, and PostgreSQL on the same machine needs CPU too (docs/performance.md §6.5).
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() + 1))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gevent")
# Simultaneous connections per gevent worker (slow ones included); threads per gthread worker.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "1000"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
wsgi_app = "config.wsgi:application"
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Client address, request line, status, response bytes, duration in ms, user agent.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
# gunicorn 27's control socket (``gunicornc``) only when asked for, at a path of our choosing:
# its default, one path per user, would be shared by every server the user runs.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not control_socket
# Proxies whose X-Forwarded-* headers are believed.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

if worker_class == "gevent":
    # Read by config/settings.py when the workers import the app (no preload).
    os.environ.setdefault("DB_POOL_MAX_SIZE", "10")


def post_worker_init(worker: Any) -> None:
    """Start this worker's scheduler thread (jobs are deduplicated across workers)."""
    if os.environ.get("SCHEDULER", "1").lower() in ("1", "true", "yes", "on"):
        from releases.health.scheduler import start

        start()


def worker_exit(server: Any, worker: Any) -> None:
    """Let a running job finish its batch and stop the scheduler."""
    from releases.health.scheduler import stop

    stop()
