"""Reliability benchmark: the real gunicorn on a throwaway PostgreSQL, under load and faults.

``.venv/bin/python benchmarks/reliability.py [--clients 64] [--seconds 60] [--fault-seconds 20]
[--slow-seconds 20]``. Not part of ``make test``; docs/reliability.md ("Reliability benchmark")
says what each phase does and what the bars are. Loopback only; every phase is bounded in time.

Phases: ``load`` (mixed reads, writes and envelopes), ``pg-restart`` (the same load while
``pg_ctl restart -m fast`` runs), ``worker-kill`` (the same load while one gunicorn worker gets
``SIGKILL``), ``slow-clients`` (50 trickling connections while a probe times the release list).
Afterwards every acknowledged write is looked up in the database. The last line is the summary,
``PASS`` or ``FAIL`` against the bars.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.client import HTTPConnection, HTTPException
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
# The helper scripts (pgtmp: finding PostgreSQL and a free port; slowclients) are not a package.
sys.path.insert(0, str(ROOT / "scripts"))
import slowclients  # noqa: E402
from pgtmp import free_port, pg_bindir  # noqa: E402

PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
ORG = "sentry"
PROJECT = "sentry"
SCOPES = "org:read project:read project:write project:releases project:admin"
# Out of reach of any benchmark, but still counted: the counters' cost is part of the load.
UNREACHABLE = "1000000000/min"
RATE_LIMIT_VARS = [
    "RATE_LIMIT_API_TOKEN",
    "RATE_LIMIT_API_ADDRESS",
    "RATE_LIMIT_AUTH_FAILURES",
    "RATE_LIMIT_ENVELOPE_KEY",
    "RATE_LIMIT_ENVELOPE_PROJECT",
]
SESSION_RELEASE = "bench-sessions@1.0.0"


# --- the throwaway PostgreSQL --------------------------------------------------------------


class Postgres:
    """A cluster in a temporary folder (as scripts/pgtmp.py starts it), as ``postgres`` if root."""

    def __init__(self, workdir: Path) -> None:
        self.bindir = pg_bindir()
        self.prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.workdir = workdir / "pg"
        self.workdir.mkdir()
        if self.prefix:
            entry = pwd.getpwnam("postgres")
            os.chown(self.workdir, entry.pw_uid, entry.pw_gid)
        self.datadir = self.workdir / "data"
        self.log = self.workdir / "server.log"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(  # noqa: S603 - PostgreSQL's own tool, fixed arguments
            [*self.prefix, str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def start(self) -> None:
        subprocess.run(  # noqa: S603
            [
                *self.prefix,
                str(self.bindir / "initdb"),
                *("-D", str(self.datadir), "-U", "postgres", "-A", "trust", "-E", "UTF8"),
                "--no-sync",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        options = (
            f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        self.pg_ctl("-o", options, "-l", str(self.log), "-w", "start")

    def restart(self) -> None:
        self.pg_ctl("-m", "fast", "-l", str(self.log), "-w", "restart")

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self.pg_ctl("-m", "immediate", "stop")


# --- the server -----------------------------------------------------------------------------


def server_env(database_url: str, static_root: Path, workers: int | None) -> dict[str, str]:
    inherited = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "DEBUG") and "PROXY" not in k.upper()
    }
    env = {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "0",
        "SECRET_KEY": "reliability-benchmark-" + "k" * 50,
        "DATABASE_URL": database_url,
        "STATIC_ROOT": str(static_root),
        "SCHEDULER": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "GUNICORN_ACCESS_LOG": "-",
        **dict.fromkeys(RATE_LIMIT_VARS, UNREACHABLE),
    }
    if workers:
        env["WEB_CONCURRENCY"] = str(workers)
    return env


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(  # noqa: S603 - our own manage.py
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode:
        sys.exit(f"reliability: manage.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


@contextlib.contextmanager
def gunicorn(env: dict[str, str], log: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own server, production configuration
            [GUNICORN, "-c", "config/gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 120
            while request(port, "GET", "/_health/").status != 200:
                if process.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"reliability: gunicorn did not start; see {log}")
                time.sleep(0.3)
            yield port, process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def worker_pids(master: int) -> list[int]:
    try:
        text = Path(f"/proc/{master}/task/{master}/children").read_text()
    except OSError:
        return []
    return [int(pid) for pid in text.split()]


# --- HTTP -------------------------------------------------------------------------------------


@dataclass
class Answer:
    kind: str  # "read", "release", "deploy", "envelope", "probe"
    started: float
    ended: float
    status: int  # 0: no answer (connection refused, reset, timeout)
    json_503: bool = False  # a JSON body with Retry-After
    body: Any = None
    error: str = ""


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    kind: str = "",
    conn: HTTPConnection | None = None,
    timeout: float = 15,
) -> Answer:
    started = time.monotonic()
    own = conn is None
    connection = conn or HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        raw = response.read()
    except (OSError, HTTPException) as exc:
        connection.close()
        return Answer(kind, started, time.monotonic(), 0, error=type(exc).__name__)
    finally:
        if own:
            connection.close()
    ended = time.monotonic()
    parsed: Any = None
    if "json" in (response.getheader("Content-Type") or ""):
        with contextlib.suppress(ValueError):
            parsed = json.loads(raw)
    json_503 = (
        response.status == 503 and parsed is not None and bool(response.getheader("Retry-After"))
    )
    return Answer(kind, started, ended, response.status, json_503, parsed)


# --- the mixed load ---------------------------------------------------------------------------


@dataclass
class Acked:
    releases: list[str] = field(default_factory=list)
    deploys: list[tuple[str, int]] = field(default_factory=list)  # (version, deploy id)
    sessions: list[tuple[str, str]] = field(default_factory=list)  # (sid, did)
    lock: threading.Lock = field(default_factory=threading.Lock)


def now_ts() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def envelope_body(sessions: list[tuple[str, str]]) -> bytes:
    """Session updates as sentry-python sends them (tests/envelopes.py), one per (sid, did)."""
    lines = [b"{}"]
    for sid, did in sessions:
        payload = json.dumps(
            {
                "sid": sid,
                "did": did,
                "init": True,
                "started": now_ts(),
                "timestamp": now_ts(),
                "status": "errored",
                "errors": 1,
                "attrs": {"release": SESSION_RELEASE, "environment": "production"},
            }
        ).encode()
        header = json.dumps({"type": "session", "length": len(payload)}).encode()
        lines += [header, payload]
    return b"\n".join(lines) + b"\n"


class Load:
    """``clients`` threads doing reads, writes and envelopes until ``stop`` is set."""

    def __init__(
        self, port: int, token: str, project_id: int, dsn_key: str, tag: str, acked: Acked
    ) -> None:
        self.port, self.project_id, self.tag, self.acked = port, project_id, tag, acked
        self.api = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.envelope_headers = {
            "Content-Type": "application/x-sentry-envelope",
            "X-Sentry-Auth": f"Sentry sentry_key={dsn_key}, sentry_version=7, "
            "sentry_client=sentry.python/2.0.0",
        }
        self.answers: list[Answer] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()

    def run(self, clients: int, seconds: float, during: Any = None) -> list[Answer]:
        threads = [
            threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(clients)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        if during is not None:
            during()
        time.sleep(max(0.0, seconds - (time.monotonic() - started)))
        self.stop.set()
        for thread in threads:
            thread.join(timeout=30)
        return self.answers

    def _client(self, n: int) -> None:
        rng = random.Random(f"{self.tag}-{n}")  # noqa: S311 - a load mix, not a secret
        conn = HTTPConnection("127.0.0.1", self.port, timeout=15)
        mine: list[str] = []
        count = 0
        base = f"/api/0/organizations/{ORG}/releases/"
        while not self.stop.is_set():
            count += 1
            roll = rng.random()
            if roll < 0.25:
                answer = request(
                    self.port, "GET", f"{base}?health=1&per_page=25", None, self.api, kind="read",
                    conn=conn,
                )  # fmt: skip
            elif roll < 0.5:
                version = rng.choice(mine) if mine else "control@abc123"
                answer = request(
                    self.port, "GET", f"{base}{quote(version, safe='')}/?health=1", None,
                    self.api, kind="read", conn=conn,
                )  # fmt: skip
            elif roll < 0.65:
                version = f"bench-{self.tag}-{n}-{count}"
                body = json.dumps({"version": version, "projects": [PROJECT]}).encode()
                answer = request(self.port, "POST", base, body, self.api, kind="release", conn=conn)
                body_ok = isinstance(answer.body, dict) and answer.body.get("version") == version
                if answer.status == 201 and body_ok:
                    mine.append(version)
                    with self.acked.lock:
                        self.acked.releases.append(version)
            elif roll < 0.75 and mine:
                version = rng.choice(mine)
                body = json.dumps({"environment": "production", "name": f"d{count}"}).encode()
                answer = request(
                    self.port, "POST", f"{base}{quote(version, safe='')}/deploys/", body,
                    self.api, kind="deploy", conn=conn,
                )  # fmt: skip
                if answer.status == 201 and isinstance(answer.body, dict):
                    with self.acked.lock:
                        self.acked.deploys.append((version, int(answer.body["id"])))
            else:
                sessions = [
                    (str(uuid.uuid4()), str(uuid.uuid4())) for _ in range(rng.randint(1, 3))
                ]
                answer = request(
                    self.port, "POST", f"/api/{self.project_id}/envelope/",
                    envelope_body(sessions), self.envelope_headers, kind="envelope", conn=conn,
                )  # fmt: skip
                if answer.status == 200:
                    with self.acked.lock:
                        self.acked.sessions.extend(sessions)
            answer.body = None  # keep memory bounded
            with self._lock:
                self.answers.append(answer)
            if answer.status == 0:
                conn = HTTPConnection("127.0.0.1", self.port, timeout=15)
                time.sleep(0.05)  # a refused connection comes back at once: do not spin
            elif answer.status in (429, 503):
                time.sleep(0.05)
        conn.close()


# --- figures ----------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    answers: list[Answer]
    window: tuple[float, float] | None = None  # fault window (monotonic), 5xx there expected
    acked: int = 0
    notes: list[str] = field(default_factory=list)

    def in_window(self, answer: Answer) -> bool:
        return self.window is not None and (
            answer.ended >= self.window[0] and answer.started <= self.window[1]
        )

    def unexpected_5xx(self) -> int:
        return sum(1 for a in self.answers if a.status >= 500 and not self.in_window(a))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def statuses(answers: list[Answer]) -> str:
    counts = Counter("conn" if a.status == 0 else str(a.status) for a in answers)
    errors = {k: v for k, v in counts.items() if not k.startswith("2")}
    return " ".join(f"{k}:{v}" for k, v in sorted(errors.items())) or "-"


# --- phases -----------------------------------------------------------------------------------


def pg_restart_phase(
    make_load: Any, pg: Postgres, clients: int, seconds: float, grace: float
) -> Phase:
    times: dict[str, float] = {}

    def fault() -> None:
        time.sleep(min(3.0, seconds / 4))
        times["start"] = time.monotonic()
        pg.restart()
        times["end"] = time.monotonic()

    load = make_load("pgr")
    answers = load.run(clients, max(seconds, 10), during=fault)
    window = (times["start"], times["end"] + grace)
    phase = Phase("pg-restart", answers, window)
    during = [a for a in answers if phase.in_window(a) and not 200 <= a.status < 300]
    json_503 = sum(1 for a in during if a.json_503)
    conn = sum(1 for a in during if a.status == 0)
    other = len(during) - json_503 - conn
    resumed = [a.ended for a in answers if a.started > times["end"] and 200 <= a.status < 300]
    phase.notes.append(
        f"restart took {times['end'] - times['start']:.1f} s; fault window +{grace:.0f} s: "
        f"{json_503} JSON 503 with Retry-After, {other} other non-2xx "
        f"({statuses([a for a in during if not a.json_503 and a.status])}), "
        f"{conn} without an answer"
    )
    phase.notes.append(
        f"service resumed {resumed[0] - times['end']:.2f} s after the restart"
        if resumed
        else "service did NOT resume after the restart"
    )
    phase.notes.append(f"_restart:{json_503}:{other}:{int(bool(resumed))}")
    return phase


def worker_kill_phase(
    make_load: Any, master: int, clients: int, seconds: float, grace: float
) -> Phase:
    times: dict[str, float] = {}
    info: dict[str, Any] = {}

    def fault() -> None:
        time.sleep(min(3.0, seconds / 4))
        before = worker_pids(master)
        victim = before[0]
        times["start"] = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = worker_pids(master)
            if victim not in now and len(now) >= len(before):
                break
            time.sleep(0.05)
        times["end"] = time.monotonic()
        info.update(victim=victim, workers=len(before), after=worker_pids(master))

    load = make_load("kill")
    answers = load.run(clients, max(seconds, 10), during=fault)
    phase = Phase("worker-kill", answers, (times["start"], times["end"] + grace))
    during = [a for a in answers if phase.in_window(a)]
    phase.notes.append(
        f"killed worker {info['victim']} of {info['workers']}; respawned in "
        f"{times['end'] - times['start']:.1f} s (workers now {len(info['after'])}); "
        f"in the window: {statuses(during)}"
    )
    return phase


def slow_clients_phase(port: int, token: str, connections: int, seconds: float) -> Phase:
    slow = slowclients
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=slow.slow_connection,
            args=("127.0.0.1", port, "header" if i % 2 else "body", stop, "", ""),
            daemon=True,
        )
        for i in range(connections)
    ]
    for thread in threads:
        thread.start()
    time.sleep(1)
    answers: list[Answer] = []
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        answers.append(
            request(
                port, "GET", f"/api/0/organizations/{ORG}/releases/", None, headers, kind="probe"
            )
        )
        time.sleep(max(0.0, 0.5 - (time.monotonic() - started)))
    held = sum(1 for thread in threads if thread.is_alive())
    stop.set()
    phase = Phase("slow-clients", answers)
    phase.notes.append(f"{connections} slow connections ({held} still held at the end)")
    return phase


# --- checks in the database -------------------------------------------------------------------


def check_database(env: dict[str, str], acked: Acked, tag: str) -> dict[str, int]:
    os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "SECRET_KEY")})
    os.environ["DEBUG"] = "0"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from releases.models import (
        Deploy,
        ErroredSession,
        Release,
        ReleaseProject,
        ReleaseProjectEnvironment,
        SessionUserSeen,
    )

    prefix = f"bench-{tag}-"
    present = set(
        Release.objects.filter(version__startswith=prefix).values_list("version", flat=True)
    )
    linked = set(
        ReleaseProject.objects.filter(
            release__version__startswith=prefix, project__slug=PROJECT
        ).values_list("release__version", flat=True)
    )
    deploy_ids = {pk for _, pk in acked.deploys}
    deploys = dict(Deploy.objects.filter(pk__in=deploy_ids).values_list("pk", "release__version"))
    deployed = set(
        ReleaseProjectEnvironment.objects.filter(
            release__version__in={v for v, _ in acked.deploys},
            project__slug=PROJECT,
            environment__name="production",
        ).values_list("release__version", flat=True)
    )
    sids = {uuid.UUID(sid) for sid, _ in acked.sessions}
    dids = {uuid.UUID(did) for _, did in acked.sessions}
    found_sids: set[uuid.UUID] = set()
    found_dids: set[uuid.UUID] = set()
    sid_list, did_list = list(sids), list(dids)
    for i in range(0, len(sid_list), 5000):
        found_sids |= set(
            ErroredSession.objects.filter(sid__in=sid_list[i : i + 5000]).values_list(
                "sid", flat=True
            )
        )
        found_dids |= set(
            SessionUserSeen.objects.filter(did__in=did_list[i : i + 5000]).values_list(
                "did", flat=True
            )
        )
    return {
        "lost_releases": len(set(acked.releases) - present),
        "lost_deploys": sum(1 for version, pk in acked.deploys if deploys.get(pk) != version),
        "lost_sessions": len(sids - found_sids) + len(dids - found_dids),
        "unlinked_releases": len(present - linked),
        "deploys_without_environment": len({v for v, _ in acked.deploys} - deployed),
        "unacknowledged_present": len(present - set(acked.releases)),
    }


# --- main -------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64, help="concurrent load clients")
    parser.add_argument("--seconds", type=float, default=60, help="length of the mixed load")
    parser.add_argument("--fault-seconds", type=float, default=20, help="length of fault phases")
    parser.add_argument("--grace", type=float, default=5, help="fault window after each fault")
    parser.add_argument("--slow-clients", type=int, default=50)
    parser.add_argument("--slow-seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=0, help="WEB_CONCURRENCY (config default)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and logs")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="reliability-"))
    os.chmod(workdir, 0o755)  # noqa: S103 - the postgres user must reach its folder inside
    pg = Postgres(workdir)
    tag = uuid.uuid4().hex[:8]
    acked = Acked()
    phases: list[Phase] = []
    try:
        pg.start()
        static_root = workdir / "static"
        env = server_env(pg.url, static_root, args.workers or None)
        manage(env, "migrate", "--no-input", "-v", "0")
        manage(env, "collectstatic", "--no-input", "-v", "0", "--ignore", "rest_framework")
        manage(env, "seed")
        token = manage(env, "create_token", "--user", "rajraspberry", "--scopes", SCOPES)
        dsn = urlsplit(manage(env, "project_dsn", "--org", ORG, "--project", PROJECT))
        dsn_key, project_id = dsn.username or "", int(dsn.path.strip("/"))
        log = workdir / "gunicorn.log"
        with gunicorn(env, log) as (port, process):
            print(
                f"reliability: gunicorn (config/gunicorn.conf.py, {len(worker_pids(process.pid))}"
                f" workers) on 127.0.0.1:{port}, PostgreSQL on 127.0.0.1:{pg.port}; "
                f"{args.clients} clients",
                flush=True,
            )

            def make_load(name: str) -> Load:
                # Versions are bench-<run>-<phase>-<client>-<n>: unique across phases.
                return Load(port, token, project_id, dsn_key, f"{tag}-{name}", acked)

            def run_phase(name: str, make: Any) -> None:
                before = len(acked.releases) + len(acked.deploys) + len(acked.sessions)
                phase = make()
                phase.acked = len(acked.releases) + len(acked.deploys) + len(acked.sessions)
                phase.acked -= before
                phases.append(phase)
                print(f"reliability: phase {name} done ({len(phase.answers)} requests)", flush=True)

            run_phase(
                "load", lambda: Phase("load", make_load("load").run(args.clients, args.seconds))
            )
            run_phase(
                "pg-restart",
                lambda: pg_restart_phase(
                    make_load, pg, args.clients, args.fault_seconds, args.grace
                ),
            )
            run_phase(
                "worker-kill",
                lambda: worker_kill_phase(
                    make_load, process.pid, args.clients, args.fault_seconds, args.grace
                ),
            )
            run_phase(
                "slow-clients",
                lambda: slow_clients_phase(port, token, args.slow_clients, args.slow_seconds),
            )
        db = check_database(env, acked, tag)
        return report(phases, acked, db, log if args.keep else None)
    finally:
        pg.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def report(phases: list[Phase], acked: Acked, db: dict[str, int], log: Path | None) -> int:
    print()
    header = (
        f"{'phase':<13}{'requests':>9}{'2xx':>8}  {'errors by status':<28}{'p50 ms':>8}"
        f"{'p99 ms':>9}{'unexp 5xx':>10}{'acked':>8}"
    )
    print(header)
    print("-" * len(header))
    for phase in phases:
        ok = [a for a in phase.answers if 200 <= a.status < 300]
        latencies = [(a.ended - a.started) * 1000 for a in phase.answers if a.status]
        print(
            f"{phase.name:<13}{len(phase.answers):>9}{len(ok):>8}  "
            f"{statuses(phase.answers):<28}{percentile(latencies, 0.5):>8.1f}"
            f"{percentile(latencies, 0.99):>9.1f}{phase.unexpected_5xx():>10}{phase.acked:>8}"
        )
    print()
    for phase in phases:
        for note in phase.notes:
            if not note.startswith("_"):
                print(f"{phase.name}: {note}")
    probe = next(p for p in phases if p.name == "slow-clients")
    probe_ms = [(a.ended - a.started) * 1000 for a in probe.answers if a.status == 200]
    probe_failed = sum(1 for a in probe.answers if a.status != 200)
    mean_ms = statistics.mean(probe_ms) if probe_ms else float("inf")
    print(
        f"slow-clients: probe GET /api/0/organizations/{ORG}/releases/: {len(probe.answers)} "
        f"probes, {probe_failed} failed; latency mean {mean_ms:.1f} ms, "
        f"max {max(probe_ms, default=float('inf')):.1f} ms"
    )
    print(
        f"acknowledged writes: {len(acked.releases)} releases, {len(acked.deploys)} deploys, "
        f"{len(acked.sessions)} sessions"
    )
    lost = db["lost_releases"] + db["lost_deploys"] + db["lost_sessions"]
    half = db["unlinked_releases"] + db["deploys_without_environment"]
    print(
        f"database: lost {db['lost_releases']} releases, {db['lost_deploys']} deploys, "
        f"{db['lost_sessions']} session ids; half-applied: {db['unlinked_releases']} releases "
        f"without their project, {db['deploys_without_environment']} deployed releases without "
        f"their environment; {db['unacknowledged_present']} unacknowledged releases present"
    )
    if log is not None:
        print(f"gunicorn log: {log}")
    restart = next(p for p in phases if p.name == "pg-restart")
    r_json, r_other, r_resumed = (
        int(x) for x in next(n for n in restart.notes if n.startswith("_restart:")).split(":")[1:]
    )
    unexpected = sum(p.unexpected_5xx() for p in phases)
    bars = {
        "lost writes 0": lost == 0 and half == 0,
        "unexpected 5xx 0": unexpected == 0,
        "restart answers JSON 503": r_json > 0 and r_other == 0 and bool(r_resumed),
        "probe mean < 1 s": mean_ms < 1000 and probe_failed == 0,
    }
    failed = [bar for bar, met in bars.items() if not met]
    verdict = "FAIL" if failed else "PASS"
    print(
        f"{verdict}: lost writes {lost} (half-applied {half}), unexpected 5xx {unexpected}, "
        f"restart {r_json} JSON 503 / {r_other} other{'' if r_resumed else ' (not resumed)'}, "
        f"slow-client probe mean {mean_ms:.0f} ms"
        + ("" if verdict == "PASS" else f"; failed: {', '.join(failed)}")
    )
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
