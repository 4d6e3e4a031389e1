"""Run a command against a throwaway PostgreSQL server: ``pgtmp.py [--durable] -- CMD ARGS...``.

The server lives in a temporary directory on a free loopback port, is reachable through
``DATABASE_URL`` in the command's environment, and is stopped and deleted afterwards. PostgreSQL
refuses to run as root, so under root the server runs as the unprivileged ``postgres`` user.

The server skips the disk flushes that make a commit durable (``fsync``, ``synchronous_commit``,
full page writes), which tests do not need; ``--durable`` keeps PostgreSQL's defaults, so that a
commit is on disk when it returns (what the benchmark measures).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def pg_bindir() -> Path:
    """The newest Debian PostgreSQL bin folder, else wherever ``pg_ctl`` is on PATH."""
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if folders:
        return Path(folders[-1])
    pg_ctl = shutil.which("pg_ctl")
    if not pg_ctl:
        sys.exit("pgtmp: PostgreSQL not found (no /usr/lib/postgresql/*/bin, no pg_ctl on PATH)")
    return Path(pg_ctl).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main(argv: list[str]) -> int:
    durable = False
    if "--" in argv:
        durable = "--durable" in argv[: argv.index("--")]
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        sys.exit("usage: pgtmp.py [--durable] -- COMMAND [ARGS...]")
    bindir = pg_bindir()
    as_root = os.geteuid() == 0
    prefix: list[str] = ["runuser", "-u", "postgres", "--"] if as_root else []
    workdir = Path(tempfile.mkdtemp(prefix="pgtmp-"))
    datadir = workdir / "data"
    if as_root:
        entry = pwd.getpwnam("postgres")
        os.chown(workdir, entry.pw_uid, entry.pw_gid)
    port = free_port()
    run = {"check": True, "stdout": subprocess.DEVNULL}
    try:
        subprocess.run(
            [
                *prefix,
                str(bindir / "initdb"),
                "-D",
                str(datadir),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            **run,
        )
        options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        subprocess.run(
            [
                *prefix,
                str(bindir / "pg_ctl"),
                "-D",
                str(datadir),
                "-o",
                options,
                "-l",
                str(workdir / "server.log"),
                "-w",
                "start",
            ],
            **run,
        )
        env = dict(os.environ, DATABASE_URL=f"postgres://postgres@127.0.0.1:{port}/postgres")
        print(f"pgtmp: PostgreSQL ({bindir.parent.name}) on 127.0.0.1:{port}", flush=True)
        return subprocess.run(argv, env=env).returncode
    finally:
        if (datadir / "postmaster.pid").exists():
            subprocess.run(
                [*prefix, str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "stop"],
                stdout=subprocess.DEVNULL,
                check=False,
            )
        time.sleep(0.1)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
