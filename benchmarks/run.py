"""The speed benchmark: the project's req/s beside each case's ceiling, in one run.

    .venv/bin/python benchmarks/run.py                       # 1M updates, 10k releases
    .venv/bin/python benchmarks/run.py --updates 20000 --releases 1000 --duration 5

Starts a throwaway PostgreSQL (``scripts/pgtmp.py``), builds the dataset (``seed --sessions N``
and ``bench_list --releases N``, then ``VACUUM ANALYZE``), serves the project with gunicorn and
its production config (``config/gunicorn.conf.py``, gevent workers, connection pool) and, in the
same server, the ceiling of each case (``benchmarks/ceiling.py``: a DRF view returning the body
the project answered for that case as a static object). ``wrk`` (installed with apt-get when
missing and run as root) drives both; the table gives req/s, p50/p99 and the share of the
ceiling, then ingestion of 100-update gzip envelopes in updates/s, counted in the database
after the run, beside its own ceiling (each envelope committed whole as one row, nothing
else). The last line is a one-line summary. Rate limits stay on with limits that the load
never reaches, so their counting is part of what is measured. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from random import Random

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the project's packages by their names
from benchmarks.envelopes import sdk_envelope  # noqa: E402

PYTHON = sys.executable
HUGE_RATE = "100000000/min"  # counted like any limit, never reached
#: The cases in the summary line, in the table's order.
SHORT = ("details", "details/project", "list+health", "list", "list/10k")


def log(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def manage(*args: str, env: dict[str, str], capture: bool = False) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        text=True,
    )
    return result.stdout if capture else ""


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        sys.exit("bench: wrk is missing; install it (apt-get install -y wrk)")
    log("installing wrk (apt-get install -y wrk)")
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, stdout=subprocess.DEVNULL)
    return shutil.which("wrk") or sys.exit("bench: wrk not found after apt-get install")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx/3xx answers plus socket errors (timeouts included)
    timeouts: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(url: str, args: argparse.Namespace, headers: dict[str, str], script: str = "") -> Load:
    command = [
        args.wrk,
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--timeout",
        "5s",
        "--latency",
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if script:
        command += ["-s", script]
    command.append(url)
    if script:
        command += ["--", *args.script_args]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    socket_errors = [int(n) for n in sockets.groups()] if sockets else [0, 0, 0, 0]
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + sum(socket_errors)
    return Load(rps, p50, p99, errors, socket_errors[3])


# Each wrk thread posts its own share of the envelopes (no update is sent twice unless the
# run outlasts them: then the count in the database shows it, as duplicates count once).
INGEST_LUA = """
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  local dir, count, nthreads = args[1], tonumber(args[2]), tonumber(args[3])
  bodies = {}
  for n = tid, count - 1, nthreads do
    local f = io.open(dir .. "/" .. n .. ".gz", "rb")
    table.insert(bodies, f:read("*all"))
    f:close()
  end
  i = 0
end
function request()
  i = i % #bodies + 1
  return wrk.format("POST", nil, nil, bodies[i])
end
"""


def start_server(env: dict[str, str], work: Path, name: str) -> tuple[str, subprocess.Popen[bytes]]:
    """gunicorn with the production config on a free port, once ``/_health/`` answers."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(work / f"gunicorn-{name}.log", "w") as server_log:
        server = subprocess.Popen(
            [str(Path(PYTHON).parent / "gunicorn"), "-c", "config/gunicorn.conf.py"],
            cwd=ROOT,
            env=dict(env, PORT=str(port), HOST="127.0.0.1"),
            stdout=server_log,
            stderr=subprocess.STDOUT,
        )
    for _ in range(200):
        try:
            urllib.request.urlopen(base + "/_health/", timeout=1).read()
            return base, server
        except OSError:
            time.sleep(0.1)
    server.terminate()
    sys.exit(f"bench: gunicorn did not start (see {work / f'gunicorn-{name}.log'})")


def stored_updates(env: dict[str, str]) -> int:
    out = manage(
        "shell",
        "-c",
        "from django.db.models import Sum; from releases.models import SessionRollup; "
        "print(SessionRollup.objects.filter(release__version__startswith='bench@ingest.')"
        ".aggregate(n=Sum('updates'))['n'] or 0)",
        env=env,
        capture=True,
    )
    return int(out.strip().splitlines()[-1])


def build_dataset(args: argparse.Namespace, env: dict[str, str]) -> str:
    """Migrate, ``seed --sessions``, ``bench_list --releases``, ``VACUUM ANALYZE``; returns
    what it took."""
    log(f"dataset: {args.updates:,} session updates, {args.releases:,} releases")
    manage("migrate", "--no-input", env=env)
    started = time.perf_counter()
    manage("seed", "--sessions", str(args.updates), env=env)
    seed_seconds = time.perf_counter() - started
    started = time.perf_counter()
    manage("bench_list", "--releases", str(args.releases), "--requests", "0", env=env)
    list_seconds = time.perf_counter() - started
    started = time.perf_counter()
    manage("shell", "-c", "from django.db import connection; "
           "connection.cursor().execute('VACUUM ANALYZE')", env=env)  # fmt: skip
    vacuum_seconds = time.perf_counter() - started
    return (
        f"dataset built in {seed_seconds + list_seconds + vacuum_seconds:.0f} s: seed "
        f"--sessions {args.updates} {seed_seconds:.0f} s ({args.updates / seed_seconds:,.0f} "
        f"updates/s), bench_list --releases {args.releases} {list_seconds:.0f} s, "
        f"VACUUM ANALYZE {vacuum_seconds:.0f} s"
    )


def dataset_size(env: dict[str, str]) -> tuple[int, int]:
    """Session updates stored in project ``bench`` and releases of organization ``bench``."""
    out = manage(
        "shell",
        "-c",
        "from django.db.models import Sum; from releases.models import Release, SessionRollup; "
        "print(SessionRollup.objects.filter(project__slug='bench', "
        "project__organization__slug='sentry').aggregate(n=Sum('updates'))['n'] or 0, "
        "Release.objects.filter(organization__slug='bench').count())",
        env=env,
        capture=True,
    )
    updates, releases = out.strip().splitlines()[-1].split()
    return int(updates), int(releases)


def inner(args: argparse.Namespace) -> int:
    args.wrk = ensure_wrk()
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="benchmarks.settings",
        SECRET_KEY="bench-" + uuid.uuid4().hex,
        DEBUG="0",
        SCHEDULER="0",
        RATE_LIMIT_API_TOKEN=HUGE_RATE,
        RATE_LIMIT_API_ADDRESS=HUGE_RATE,
        RATE_LIMIT_ENVELOPE_KEY=HUGE_RATE,
        RATE_LIMIT_ENVELOPE_PROJECT=HUGE_RATE,
        BENCH_CEILING_FILE=str(work / "ceiling.json"),
    )
    durability = manage(
        "shell",
        "-c",
        "from django.db import connection; c = connection.cursor(); "
        "c.execute('SHOW fsync'); fsync = c.fetchone()[0]; c.execute('SHOW synchronous_commit'); "
        "print(f'fsync={fsync}, synchronous_commit={c.fetchone()[0]}')",
        env=env,
        capture=True,
    )
    figures: list[str] = [f"PostgreSQL {durability.strip().splitlines()[-1]}"]
    if args.reuse:
        args.updates, args.releases = dataset_size(env)
        figures.append("dataset reused (built earlier with seed and bench_list)")
    else:
        figures.append(build_dataset(args, env))

    def token(user: str, org: str) -> str:
        out = manage(
            "create_token", "--user", user, "--scopes",
            "org:read project:read project:releases", env=env, capture=True,
        )  # fmt: skip
        del org
        return out.strip().splitlines()[-1]

    sentry_token, bench_token = token("rajraspberry", "sentry"), token("bench", "bench")
    ids = manage(
        "shell",
        "-c",
        "from releases.models import Project, Release; "
        "p = Project.objects.get(organization__slug='sentry', slug='bench'); "
        "r = Release.objects.filter(projects=p).latest('date_added', 'id'); "
        "print(p.pk, r.version, p.keys.filter(is_active=True).first().public_key)",
        env=env,
        capture=True,
    )
    bench_project, bench_release, public_key = ids.strip().splitlines()[-1].split()

    # The project twice: as configured (answers cached, docs/performance.md §5) and with the
    # answer cache off, so that both the cached and the computed paths are measured.
    servers = [start_server(env, work, "cached")]
    try:
        servers.append(start_server(dict(env, RELEASE_CACHE_SECONDS="0"), work, "uncached"))
        base, uncached_base = (url for url, _ in servers)
        api = f"{base}/api/0/organizations"
        cases = [
            (
                "Details, documented request (control@abc123)",
                f"{api}/sentry/releases/control@abc123/?health=1&adoptionStages=1",
                sentry_token,
            ),
            (
                f"Details, health + project, {bench_release}",
                f"{api}/sentry/releases/{bench_release}/?health=1&adoptionStages=1"
                f"&project={bench_project}",
                sentry_token,
            ),
            (
                "List, 100 releases, health=1 (bench)",
                f"{api}/sentry/releases/?project={bench_project}&per_page=100&health=1",
                sentry_token,
            ),
            (
                "List, 100 releases, no health (bench)",
                f"{api}/sentry/releases/?project={bench_project}&per_page=100",
                sentry_token,
            ),
            (
                f"List, 100 of {args.releases:,} releases",
                f"{api}/bench/releases/?per_page=100",
                bench_token,
            ),
        ]
        bodies = []
        for _, url, secret in cases:
            request = urllib.request.Request(url, headers={"Authorization": f"Bearer {secret}"})
            with urllib.request.urlopen(request, timeout=60) as response:
                bodies.append(response.read())
        (work / "ceiling.json").write_text(
            "[" + ",".join(body.decode() for body in bodies) + "]", encoding="utf-8"
        )
        for n, body in enumerate(bodies):  # the ceiling answers the very same JSON
            with urllib.request.urlopen(f"{base}/_bench/ceiling/{n}/") as response:
                if json.loads(response.read()) != json.loads(body):
                    sys.exit(f"bench: ceiling {n} differs from the project's answer")

        rows = []
        for n, (label, url, secret) in enumerate(cases):
            if SHORT[n] not in args.cases:
                continue
            auth = {"Authorization": f"Bearer {secret}"}
            log(f"{label}: project, answer cache off")
            computed = wrk(url.replace(base, uncached_base, 1), args, auth)
            log(f"{label}: project")
            project = wrk(url, args, auth)
            log(f"{label}: ceiling")
            ceiling = wrk(f"{base}/_bench/ceiling/{n}/", args, {})
            rows.append((label, SHORT[n], len(bodies[n]), computed, project, ceiling))

        ingest = None
        if args.envelopes:
            log(f"ingestion: building {args.envelopes} envelopes of 100 updates")
            rng = Random(11)  # noqa: S311 - benchmark data
            now = datetime.now(UTC)
            folder = work / "envelopes"
            folder.mkdir()
            for n in range(args.envelopes):
                body = sdk_envelope(rng, f"bench@ingest.{n % 5}", 100, now)
                (folder / f"{n}.gz").write_bytes(body)
            script = work / "ingest.lua"
            script.write_text(INGEST_LUA, encoding="utf-8")
            args.script_args = [str(folder), str(args.envelopes), str(args.threads)]
            before = stored_updates(env)
            log("ingestion: posting")
            load = wrk(
                f"{base}/api/{bench_project}/envelope/",
                args,
                {
                    "X-Sentry-Auth": f"Sentry sentry_key={public_key}, sentry_version=7",
                    "Content-Type": "application/x-sentry-envelope",
                    "Content-Encoding": "gzip",
                },
                script=str(script),
            )
            stored = stored_updates(env) - before
            log("ingestion: ceiling")
            headers = {
                "Content-Type": "application/x-sentry-envelope",
                "Content-Encoding": "gzip",
            }
            ceiling = wrk(f"{base}/_bench/ceiling/envelope/", args, headers, script=str(script))
            ingest = (load, stored, ceiling)
            drop = "DROP TABLE IF EXISTS bench_envelope"  # the ceiling's rows: not kept
            manage("shell", "-c", "from django.db import connection; "
                   f"connection.cursor().execute({drop!r})", env=env)  # fmt: skip
    finally:
        for _, server in servers:
            server.terminate()
            server.wait(30)

    out = sys.stdout
    database = (
        "of DATABASE_URL" if os.environ.get("BENCH_DB") else "from scripts/pgtmp.py --durable"
    )
    out.write(
        f"\nwrk -t{args.threads} -c{args.connections} -d{args.duration}s, gunicorn "
        f"config/gunicorn.conf.py (gevent), PostgreSQL {database}, "
        f"{args.updates:,} session updates, {args.releases:,} releases\n"
    )
    for line in figures:
        out.write(line + "\n")
    out.write(
        "\n| Case | body | computed req/s | p50 | p99 | cached req/s | p50 | p99 | errors "
        "| ceiling req/s | ceiling p50 | share computed | share cached |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    )
    summary_parts = []
    for label, short, size, computed, project, ceiling in rows:
        computed_share = computed.rps / ceiling.rps * 100 if ceiling.rps else 0.0
        share = project.rps / ceiling.rps * 100 if ceiling.rps else 0.0
        summary_parts.append(f"{short} {computed_share:.0f} % ({share:.0f} % cached)")
        out.write(
            f"| {label} | {size / 1024:.1f} KB | {computed.rps:,.1f} | "
            f"{computed.p50_ms:.1f} ms | {computed.p99_ms:.1f} ms | {project.rps:,.1f} | "
            f"{project.p50_ms:.1f} ms | {project.p99_ms:.1f} ms | "
            f"{computed.errors + project.errors} | {ceiling.rps:,.1f} | "
            f"{ceiling.p50_ms:.1f} ms | {computed_share:.1f} % | {share:.1f} % |\n"
        )
    summary = " · ".join(summary_parts)
    if ingest is not None:
        load, stored, ceiling = ingest
        rate = stored / args.duration
        ceiling_rate = ceiling.rps * 100
        out.write(
            f"| Ingestion, 100-update gzip envelopes | - | {load.rps:,.1f} envelopes/s | "
            f"{load.p50_ms:.1f} ms | {load.p99_ms:.1f} ms | - | - | - | {load.errors} | "
            f"{ceiling.rps:,.1f} | {ceiling.p50_ms:.1f} ms "
            f"| {rate:,.0f} updates/s stored ({rate / ceiling_rate * 100:.1f} %) | - |\n"
        )
        summary += (
            f" · ingestion {rate:,.0f} updates/s ({rate / ceiling_rate * 100:.0f} % of "
            f"{ceiling_rate:,.0f})"
        )
    out.write(f"\nsummary: {args.updates:,} updates, share of ceiling: {summary}\n")
    shutil.rmtree(work, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=1_000_000, help="seed --sessions N")
    parser.add_argument("--releases", type=int, default=10_000, help="bench_list --releases N")
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk per run")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t")
    parser.add_argument("--connections", type=int, default=16, help="wrk -c")
    parser.add_argument(
        "--envelopes", type=int, default=4000, help="distinct ingestion envelopes (0: none)"
    )
    parser.add_argument(
        "--cases",
        type=lambda text: [name for name in text.split(",") if name],
        default=list(SHORT),
        help=f"read cases to measure, comma-separated ({','.join(SHORT)}; '' for none)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with BENCH_DB=1: measure the dataset already in DATABASE_URL, build nothing",
    )
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    unknown = set(args.cases) - set(SHORT)
    if unknown:
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")
    if args.inner:
        return inner(args)
    if os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ.get("BENCH_DB"):
        return inner(args)  # BENCH_DB=1: a PostgreSQL of your own, created empty
    # A durable server: each acknowledged envelope is on disk before its answer.
    pgtmp = [PYTHON, str(ROOT / "scripts" / "pgtmp.py"), "--durable", "--"]
    command = [*pgtmp, PYTHON, __file__, "--inner"]
    return subprocess.run([*command, *sys.argv[1:]], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
