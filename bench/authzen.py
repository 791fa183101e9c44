"""AuthZEN benchmark: ``.venv/bin/python bench/authzen.py`` (the dev database; the certification fixture).

Serves the project with the PDP listener (``saaskit.server.pdp_command``: granian, a worker per core of one
thread, the fast path included) and drives ``POST /authzen/authzen-cert/access/v1/evaluation`` with a service
key: an unconditional decision (alice reads record-1), a conditional one (alice writes record-1: a CEL condition
over stored properties) and, as the peer on the same server and load generator, the PDP metadata ``GET`` (a DRF
view doing no authorization work). Prints the peak throughput of each (``wrk``, keep-alive, the median of
interleaved rounds at 16 and 64 connections, the better of the two), then the p50/p99 latency of the conditional
decision at half its peak rate (the open loop of ``bench/cerbos.py``: warmed keep-alive connections on a fixed
schedule, latency from the scheduled time, so a queue cannot hide; the median of its rounds). The comparison with
Cerbos's AuthZEN endpoint is ``bench/cerbos.py``. Goals are printed beside the figures, not asserted; results go
to ``.saaskit/bench/authzen.json`` (QUICK=1: shorter).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saaskit.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from bench.cerbos import (
    LUA,
    WORKERS,
    ask_raw,
    free_port,
    open_loop_requests,
    raw_request,
    wait_http,
    write_requests,
    wrk,
)
from bench.lib import results
from saaskit.server import pdp_command, server_stop

SLUG = "authzen-cert"
CONNECTIONS = (16, 64)
DURATION = results.pick(2, 4)
ROUNDS = results.pick(2, 3)
OPEN_LOOP_SECONDS = results.pick(3, 10)
OPEN_LOOP_ROUNDS = results.pick(1, 3)
READ = {"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
        "resource": {"type": "record", "id": "record-1"}}
WRITE = {"subject": {"type": "user", "id": "alice"}, "action": {"name": "write"},
         "resource": {"type": "record", "id": "record-1"}}


def request_for(token: str, body: dict | None) -> tuple[str, str, dict, str]:
    """(method, path, headers, body) of the metadata GET (``body`` None) or an evaluation."""
    if body is None:
        return "GET", f"/.well-known/authzen-configuration/authzen/{SLUG}", {}, ""
    return ("POST", f"/authzen/{SLUG}/access/v1/evaluation",
            {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}, json.dumps(body))


def main() -> None:
    from django.core.management import call_command

    from authzen.certification import certification_fixture

    if shutil.which("wrk") is None:
        raise SystemExit("bench/authzen.py needs wrk: run `make bench-tools` (make bench does)")
    call_command("migrate", verbosity=0)
    token = certification_fixture().token
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="bench-authzen-"))
    env = {**os.environ, "SAASKIT_ENV": "development", "DEBUG": "false", "LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(pdp_command(port=port, workers=WORKERS), cwd=BASE_DIR, env=env,
                              stdout=(tmp / "granian.log").open("wb"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    labels = {"metadata GET (peer)": None, "evaluation, unconditional": READ, "evaluation, CEL condition": WRITE}
    try:
        wait_http(f"http://127.0.0.1:{port}/.well-known/authzen-configuration/authzen/{SLUG}", server, "granian")
        status, answer = ask_raw(port, *request_for(token, WRITE))
        assert (status, json.loads(answer)) == (200, {"decision": True}), (status, answer)
        script = tmp / "rotate.lua"
        script.write_text(LUA)
        files = {}
        for label, body in labels.items():
            files[label] = tmp / f"{len(files)}.txt"
            write_requests(files[label], [request_for(token, body)])
            wrk(port, script, files[label], 64, DURATION, server.pid)  # warm-up: every worker sees it
        runs: dict[str, dict[int, list[float]]] = {label: {c: [] for c in CONNECTIONS} for label in labels}
        for _ in range(ROUNDS):
            for c in CONNECTIONS:
                for label in labels:
                    runs[label][c].append(wrk(port, script, files[label], c, DURATION, server.pid)["rps"])
        best = {label: max(statistics.median(rs) for rs in by_c.values()) for label, by_c in runs.items()}
        half = best["evaluation, CEL condition"] / 2
        prepared = [raw_request(port, *request_for(token, WRITE))]
        open_runs = [open_loop_requests(port, prepared, half, OPEN_LOOP_SECONDS, server.pid)
                     for _ in range(OPEN_LOOP_ROUNDS)]
    finally:
        server_stop(server)
        shutil.rmtree(tmp, ignore_errors=True)
    p50 = statistics.median(r["p50_ms"] for r in open_runs)
    p99 = statistics.median(r["p99_ms"] for r in open_runs)
    print(f"AuthZEN over HTTP, the PDP listener ({WORKERS} workers of 1 thread), wrk keep-alive at "
          f"{'/'.join(map(str, CONNECTIONS))} connections, {DURATION} s, median of {ROUNDS} rounds")
    for label, value in best.items():
        print(f"  {label:<40} {value:>10,.0f} req/s")
    each = ", ".join(f"{r['p99_ms']:.2f}" for r in open_runs)
    print(f"  {'CEL evaluation at half its peak':<40} p50 {p50:.2f} ms, p99 {p99:.2f} ms (rounds: {each})   "
          "(goal: p99 <= 5 ms)")
    results.save("authzen", {"connections": list(CONNECTIONS), "duration_seconds": DURATION,
                             "rounds_count": ROUNDS, "best": best, "server": "the PDP listener",
                             "rounds": {label: results.spread([x for rs in by_c.values() for x in rs])
                                        for label, by_c in runs.items()},
                             "half_rate": half, "p50_ms": p50, "p99_ms": p99,
                             "p99_rounds_ms": [r["p99_ms"] for r in open_runs]})


if __name__ == "__main__":
    main()
