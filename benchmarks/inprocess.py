"""In-process cost of the release reads: queries and ms a request, with an optional profile.

Run against a seeded database (docs/performance.md §2)::

    SECRET_KEY=x DEBUG=0 SCHEDULER=0 .venv/bin/python scripts/pgtmp.py -- sh -c \
      '.venv/bin/python manage.py migrate -v0 && .venv/bin/python manage.py seed --sessions 2000 \
       && .venv/bin/python benchmarks/inprocess.py --requests 30 [--profile details]'

Each case is asked once (warm-up), once under ``CaptureQueriesContext`` (the query count and,
with ``--sql``, the statements), then ``--requests`` times for the mean; ``--profile CASE``
repeats that case under cProfile and prints the top of the cumulative profile. Requests go
through ``django.test.Client``: the whole stack but the HTTP server.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# The loop would otherwise reach the token's rate limit.
os.environ.setdefault("RATE_LIMIT_API_TOKEN", "1000000/min")
os.environ.setdefault("RATE_LIMIT_API_ADDRESS", "1000000/min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--profile", default="", help="a case name: details, project, list, …")
    parser.add_argument("--sql", action="store_true", help="print each case's statements")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from releases.models import Project, Release

    out = io.StringIO()
    call_command(
        "create_token",
        user="rajraspberry",
        scopes="org:read project:read project:releases",
        stdout=out,
    )
    token = out.getvalue().strip().splitlines()[-1]
    bench = Project.objects.get(organization__slug="sentry", slug="bench")
    latest = Release.objects.filter(projects=bench).latest("date_added", "id").version
    api = "/api/0/organizations/sentry/releases/"
    cases = {
        "details": f"{api}control@abc123/?health=1&adoptionStages=1",
        "project": f"{api}{latest}/?health=1&adoptionStages=1&project={bench.pk}",
        "list-health": f"{api}?project={bench.pk}&per_page=100&health=1",
        "list": f"{api}?project={bench.pk}&per_page=100",
    }
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    def get(path: str) -> int:
        response = client.get(path)
        if response.status_code != 200:
            sys.exit(f"{path}: {response.status_code} {response.content[:300]!r}")
        return len(response.content)

    print(f"| case | queries | ms/request ({args.requests} requests) | body |")
    print("| --- | --- | --- | --- |")
    for name, path in cases.items():
        get(path)
        with CaptureQueriesContext(connection) as queries:
            size = get(path)
        # Read now: every request clears the connection's log (request_started).
        statements = list(queries.captured_queries)
        start = time.perf_counter()
        for _ in range(args.requests):
            get(path)
        ms = (time.perf_counter() - start) / args.requests * 1000
        print(f"| {name} | {len(statements)} | {ms:.1f} | {size:,} B |")
        if args.sql:
            for query in statements:
                print(f"    {query['time']}s  {query['sql'][:300]}")
    if args.profile:
        path = cases[args.profile]
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(args.requests):
            get(path)
        profile.disable()
        stats = pstats.Stats(profile)
        stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
