"""``GET /_health/``: liveness (no database) and, with ``?full=1``, readiness, as Sentry serves.

Liveness answers 200 ``{"ok": true}`` as long as the process serves requests, and touches no
database, so a load balancer does not take every worker out when PostgreSQL is slow. Readiness
(``?full=1``) also checks that the database answers and that no migration is left unapplied:
200 when both hold, else 503 with a ``detail`` naming the problem. See docs/operations.md.
"""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

TRUE_VALUES = {"1", "true", "yes", "on"}


def database_problem() -> str | None:
    """Why the default database cannot serve, or None when it answers a query."""
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return f"Database unreachable: {str(exc).strip() or type(exc).__name__}"
    return None


def migrations_problem() -> str | None:
    """The unapplied migrations of the default database, or None when it is up to date."""
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if not plan:
        return None
    names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in plan)
    return f"Unapplied migrations: {names}"


# No transaction (ATOMIC_REQUESTS would open a connection for liveness, and fail before the
# view could report an unreachable database), no CSRF, never cached by a proxy.
@csrf_exempt
@never_cache
@transaction.non_atomic_requests
def health_view(request: HttpRequest) -> JsonResponse:
    """Liveness, or readiness with ``?full=1``."""
    if request.method not in ("GET", "HEAD"):
        response = JsonResponse({"detail": f'Method "{request.method}" not allowed.'}, status=405)
        response["Allow"] = "GET, HEAD"
        return response
    if request.GET.get("full", "").lower() not in TRUE_VALUES:
        return JsonResponse({"ok": True})
    problems = []
    problem = database_problem()
    if problem:
        problems.append(problem)
    else:
        try:
            problem = migrations_problem()
        except DatabaseError as exc:
            problem = f"Migrations unreadable: {exc}"
        if problem:
            problems.append(problem)
    if problems:
        return JsonResponse(
            {"ok": False, "detail": "; ".join(problems), "problems": problems}, status=503
        )
    return JsonResponse({"ok": True, "problems": []})
