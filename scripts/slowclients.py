"""Slow-client probe: hold N slow connections open against a server and time probe requests.

``slowclients.py --url http://127.0.0.1:8000 --connections 50 --seconds 20``. Half the
connections send half a request header, the other half a complete header declaring a
1,000-byte body followed by 10 bytes of it; each then trickles one more byte every few seconds
and never finishes. Meanwhile ``GET /_health/`` (or ``--probe PATH``, with ``--token``) is
probed twice a second on fresh connections; the script prints how many probes succeeded and
their latencies. Loopback only; it stops by itself after ``--seconds``.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import threading
import time
import urllib.request
from urllib.parse import urlsplit


def slow_connection(
    host: str, port: int, kind: str, stop: threading.Event, path: str, auth: str
) -> None:
    try:
        sock = socket.create_connection((host, port), timeout=5)
    except OSError:
        return
    try:
        if kind == "header":
            sock.sendall(b"GET /_health/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        else:
            sock.sendall(
                b"POST /api/1/envelope/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/x-sentry-envelope\r\nContent-Length: 1000\r\n\r\n"
                + b"{"
                * 10
            )
        while not stop.wait(4):
            sock.sendall(b"a")
    except OSError:
        pass
    finally:
        sock.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--probe", default="/_health/", help="path to probe")
    parser.add_argument("--token", default="", help="bearer token for the probe")
    parser.add_argument("--slow-path", default="/api/1/envelope/", help="path of slow bodies")
    parser.add_argument("--slow-auth", default="", help="X-Sentry-Auth of slow bodies")
    parser.add_argument("--only-bodies", action="store_true", help="no slow headers")
    args = parser.parse_args()
    parts = urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("slowclients: loopback addresses only")
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=slow_connection,
            args=(
                host,
                port,
                "header" if i % 2 and not args.only_bodies else "body",
                stop,
                args.slow_path,
                args.slow_auth,
            ),
            daemon=True,
        )
        for i in range(args.connections)
    ]
    for thread in threads:
        thread.start()
    time.sleep(1)
    ok, failed, latencies = 0, 0, []
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            request = urllib.request.Request(f"{args.url}{args.probe}")  # noqa: S310
            if args.token:
                request.add_header("Authorization", f"Bearer {args.token}")
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                response.read()
            ok += 1
            latencies.append((time.monotonic() - started) * 1000)
        except OSError:
            failed += 1
        time.sleep(max(0.0, 0.5 - (time.monotonic() - started)))
    stop.set()
    summary = f"{args.connections} slow connections, {ok + failed} probes: {ok} ok, {failed} failed"
    if latencies:
        summary += (
            f"; latency ms median {statistics.median(latencies):.1f}, max {max(latencies):.1f}"
        )
    print(summary)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
