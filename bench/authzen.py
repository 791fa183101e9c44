"""AuthZEN benchmark: ``.venv/bin/python bench/authzen.py`` (the dev database; the certification fixture).

Serves the project with granian (2 workers, loopback; ``saaskit.server``, the fast path included) and drives
``POST /authzen/authzen-cert/access/v1/evaluation`` with a service key from 8 client processes: an unconditional
decision (alice reads record-1), a conditional one (alice writes record-1: a CEL condition over stored
properties) and, as the peer on the same server and load generator, the PDP metadata ``GET`` (a DRF view doing
no authorization work). Prints the peak throughput of each (best of three interleaved rounds), then the p50/p99
latency of the conditional decision at half its peak rate (open-loop: requests are sent on a schedule, so a slow
answer cannot hide the queue behind it). The comparison with Cerbos's AuthZEN endpoint is ``bench/cerbos.py``.
Goals are printed beside the figures, not asserted; results go to ``.saaskit/bench/authzen.json`` (QUICK=1:
shorter).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saaskit.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from bench.lib import results
from saaskit.server import granian_command, server_stop

CLIENTS = 8
REQUESTS = results.pick(800, 2_400)
ROUNDS = results.pick(2, 3)
SLUG = "authzen-cert"
READ = {"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
        "resource": {"type": "record", "id": "record-1"}}
WRITE = {"subject": {"type": "user", "id": "alice"}, "action": {"name": "write"},
         "resource": {"type": "record", "id": "record-1"}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _send(port: int, token: str, body: dict | None) -> bytes:
    if body is None:
        url = f"http://127.0.0.1:{port}/.well-known/authzen-configuration/authzen/{SLUG}"
        request = urllib.request.Request(url)
    else:
        url = f"http://127.0.0.1:{port}/authzen/{SLUG}/access/v1/evaluation"
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
        request.add_header("Content-Type", "application/json")
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def _closed_loop(args: tuple[int, str, dict | None, int]) -> float:
    port, token, body, n = args
    start = time.perf_counter()
    for _ in range(n):
        _send(port, token, body)
    return time.perf_counter() - start


def _open_loop(args: tuple[int, str, dict | None, int, float]) -> list[float]:
    """Send ``n`` requests at ``rate`` per second on a fixed schedule; latency counts from the scheduled time."""
    port, token, body, n, per_second = args
    interval = 1.0 / per_second
    start = time.perf_counter()
    latencies = []
    for i in range(n):
        due = start + i * interval
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        _send(port, token, body)
        latencies.append(time.perf_counter() - due)
    return latencies


def main() -> None:
    from django.core.management import call_command

    from authzen.certification import certification_fixture

    call_command("migrate", verbosity=0)
    token = certification_fixture().token
    port = _free_port()
    env = {**os.environ, "SAASKIT_ENV": "development", "DEBUG": "false", "LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(granian_command(port=port, workers=2), cwd=BASE_DIR, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _send(port, token, None)
                break
            except (OSError, urllib.error.HTTPError):
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("granian did not start") from None
                time.sleep(0.2)
        assert json.loads(_send(port, token, WRITE)) == {"decision": True}
        per = REQUESTS // CLIENTS
        rates: dict[str, float] = {}
        rounds: dict[str, list[float]] = {}
        with ProcessPoolExecutor(CLIENTS) as pool:
            for _ in range(ROUNDS):
                for label, body in (("metadata GET (peer)", None), ("evaluation, unconditional", READ),
                                    ("evaluation, CEL condition", WRITE)):
                    list(pool.map(_closed_loop, [(port, token, body, 10)] * CLIENTS))
                    start = time.perf_counter()
                    list(pool.map(_closed_loop, [(port, token, body, per)] * CLIENTS))
                    rounds.setdefault(label, []).append(per * CLIENTS / (time.perf_counter() - start))
                    rates[label] = max(rounds[label])
            half = rates["evaluation, CEL condition"] / 2
            latencies = sorted(x for part in pool.map(_open_loop, [(port, token, WRITE, per, half / CLIENTS)]
                                                      * CLIENTS) for x in part)
    finally:
        server_stop(server)
    print(f"AuthZEN over HTTP, granian 2 workers, {CLIENTS} client processes, {REQUESTS:,} requests a round")
    for label, value in rates.items():
        print(f"  {label:<40} {value:>10,.0f} req/s")
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    print(f"  {'CEL evaluation at half its peak':<40} p50 {p50:.2f} ms, p99 {p99:.2f} ms   (goal: p99 <= 5 ms)")
    results.save("authzen", {"clients": CLIENTS, "requests_per_round": REQUESTS, "best": rates,
                             "rounds": {label: results.spread(values) for label, values in rounds.items()},
                             "half_rate": half, "p50_ms": p50, "p99_ms": p99})


if __name__ == "__main__":
    main()
