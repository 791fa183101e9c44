"""saga benchmark: ``.venv/bin/python bench/saga.py`` (a throwaway database, its own Redis DB, two worker processes).

Runs the order saga end to end (order placed -> reserved -> charged -> approved, with every consumer on the bus)
with two worker processes (``--pool solo``, every saga queue each; BENCH_SAGA_POOL=prefork for a prefork worker
with one child each) and prints:

- orders per second at peak: BENCH_SAGA_PEAK (600) orders placed as fast as SENDERS threads can, divided by the
  time from the first placement to the last order reaching a terminal status;
- p50 / p99 time from placement to terminal status at offered loads of 25, 50 and 100 orders/s (open loop: order
  i is placed at ``start + i / rate`` whatever happened before; BENCH_SAGA_SECONDS (8) seconds of load each);
- a raw Celery chain of as many no-op hops as an approved order has deliveries (4: reserve, charge, apply payment,
  commit stock), sent on the same broker to the same two workers in the same run, and the ratio;
- CPU milliseconds per order at peak of the worker processes, PostgreSQL (the embedded server's processes) and
  this process (the placements), from /proc, beside the same per raw chain: what does not move with the load.

Orders are placed in this process through ``orders.services.order_place`` (what ``POST /api/v1/orders/`` calls),
each in its own transaction, not over HTTP: the web request's own cost (about 6-8 ms of CPU per POST through
the test client) is not in these figures. The terminal time is the order's ``approved_at``/``canceled_at`` as written by
the consumer (same clock). Goals on 2 cores: peak >= 100 orders/s; p99 <= 250 ms at 50/s; >= 30% of the raw chain.
Prints the numbers next to the goals; asserts nothing. The database is created for the run and dropped after.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saaskit.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SAASKIT_REDIS_DB", "13")  # not the dev worker's, not bench/events.py's
os.environ.setdefault("ORDER_DEADLINE_SECONDS", "600")  # a saturated run must not be cut short by the deadline

from bench.lib import results as bench_results  # noqa: E402  (no Django in it)
from bench.lib.cpu import pid_from_file, process_tree_seconds  # noqa: E402
from bench.lib.databases import drop_database, throwaway_database  # noqa: E402

BENCH_DB = "saaskit_bench_saga"
PEAK = int(os.environ.get("BENCH_SAGA_PEAK", bench_results.pick("100", "600")))
SECONDS = float(os.environ.get("BENCH_SAGA_SECONDS", bench_results.pick("2", "8")))
RATES = [int(r) for r in os.environ.get("BENCH_SAGA_RATES", bench_results.pick("20,40", "25,50,100")).split(",")]
SENDERS = int(os.environ.get("BENCH_SENDERS", "4"))
HOPS = 4
# The worker pool: solo (default: the task runs in the worker process itself) or prefork (BENCH_SAGA_POOL=prefork,
# one child per worker, as `make run` starts with --concurrency 2: the parent hands each message to its child,
# and enforces the time limits solo cannot).
POOL = os.environ.get("BENCH_SAGA_POOL", "solo")
CUSTOMERS = 200


os.environ["DATABASE_URL"] = throwaway_database(BENCH_DB)

import django  # noqa: E402

django.setup()

import redis  # noqa: E402
from celery import chain  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from accounts.models import Instance, User  # noqa: E402
from events.tasks import noop  # noqa: E402
from inventory.services import product_create  # noqa: E402
from orders.models import Order  # noqa: E402
from orders.services import order_place  # noqa: E402
from payments.services import wallet_create  # noqa: E402

SAGA_QUEUES = "default,events,orders,inventory,payments,authz,accounts"
def cpu_snapshot(workers: list[tuple[subprocess.Popen[bytes], Path]]) -> tuple[float, float, float]:
    """CPU seconds so far of: the worker processes, PostgreSQL, this process (the placements)."""
    pg = pid_from_file(BASE_DIR / ".saaskit" / "pgdata" / "postmaster.pid")  # None for a server elsewhere
    return (sum(process_tree_seconds(proc.pid) for proc, _ in workers),
            process_tree_seconds(pg) if pg else float("nan"), time.process_time())


def start_workers(n: int = 2) -> list[tuple[subprocess.Popen[bytes], Path]]:
    env = {**os.environ, "PYTHONPATH": str(BASE_DIR)}
    workers = []
    for i in range(n):
        log = BASE_DIR / ".saaskit" / f"bench-saga-worker-{i}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "celery", "-A", "saaskit", "worker", "-Q", SAGA_QUEUES, "--pool", POOL,
               *(["--concurrency", "1"] if POOL == "prefork" else []),
               "--loglevel", "WARNING", "-n", f"bench-saga-{i}-{os.getpid()}@%h", "--without-gossip",
               "--without-mingle", "--without-heartbeat"]
        if i == 0:
            cmd += ["--beat", "--schedule", str(BASE_DIR / ".saaskit" / "bench-saga-beat")]
        with open(log, "wb") as out:
            workers.append((subprocess.Popen(cmd, cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT),
                            log))
    r = redis.Redis.from_url(settings.REDIS_URL)
    for i in range(n * 4):  # both must be up: a few markers, wait for all
        noop.apply_async(kwargs={"mark": f"bench:saga:ready:{i}"}, queue="default")
    deadline = time.monotonic() + 90
    while r.exists(*[f"bench:saga:ready:{i}" for i in range(n * 4)]) < n * 4:
        if time.monotonic() > deadline or any(p.poll() is not None for p, _ in workers):
            logs = "\n".join(log.read_text()[-2000:] for _, log in workers)
            raise SystemExit(f"bench workers did not start:\n{logs}")
        time.sleep(0.05)
    return workers


def setup() -> tuple[Instance, int, list[User]]:
    instance = Instance.objects.create(slug="bench-saga", name="Bench saga")
    product = product_create(instance=instance, sku="BENCH", name="Bench", price="1.00", stock_on_hand=2**31 - 1)
    customers = [User.objects.create_user(f"bench{i}@saga.bench", None, name=f"bench {i}") for i in range(CUSTOMERS)]
    for user in customers:
        wallet_create(instance=instance, user=user, currency="USD", balance="1000000.00")
    return instance, product.pk, customers


def place(instance: Instance, product_id: int, customer: User) -> tuple[int, float]:
    started = time.time()
    order = order_place(instance=instance, customer=customer, currency="USD",
                        lines=[{"product_id": product_id, "quantity": 1}])
    return order.pk, started


def wait_terminal(order_ids: list[int], timeout: float) -> dict[int, float]:
    """Order id -> terminal timestamp (approved_at or canceled_at), for those that got there within ``timeout``."""
    deadline = time.monotonic() + timeout
    pending = Order.objects.filter(pk__in=order_ids, status="pending")
    while pending.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return {pk: (approved or canceled).timestamp() for pk, approved, canceled in Order.objects.filter(
        pk__in=order_ids).exclude(status="pending").values_list("pk", "approved_at", "canceled_at")}


def drain(timeout: float = 300) -> None:
    """Wait until every delivery is done (approval leaves the stock commit and policy updates behind it), so each
    phase starts from an empty backlog."""
    from events.models import Delivery

    deadline = time.monotonic() + timeout
    while Delivery.objects.exclude(status="done").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def in_threads(jobs: list, run) -> list:  # type: ignore[no-untyped-def]
    results: list = []
    lock = threading.Lock()

    def work(chunk: list) -> None:
        try:
            for job in chunk:
                out = run(job)
                with lock:
                    results.append(out)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(jobs[i::SENDERS],)) for i in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def peak(instance: Instance, product_id: int, customers: list[User], n: int) -> tuple[float, int]:
    jobs = [customers[i % len(customers)] for i in range(n)]
    placed = in_threads(jobs, lambda customer: place(instance, product_id, customer))
    first = min(started for _, started in placed)
    done = wait_terminal([pk for pk, _ in placed], timeout=300)
    drain()
    return len(done) / (max(done.values()) - first), len(done)


def offered(instance: Instance, product_id: int, customers: list[User], rate: int) -> tuple[float, float, int, int]:
    """Open loop at ``rate`` orders/s for SECONDS: p50, p99 (ms), orders placed, orders that ended."""
    n = int(rate * SECONDS)
    start = time.time() + 0.2
    schedule = [(start + i / rate, customers[i % len(customers)]) for i in range(n)]

    def paced(job):  # type: ignore[no-untyped-def]
        at, customer = job
        delay = at - time.time()
        if delay > 0:
            time.sleep(delay)
        return place(instance, product_id, customer)

    # Enough threads that a slow placement does not hold back the next one (open loop).
    global SENDERS
    senders, SENDERS = SENDERS, max(SENDERS, rate // 5)
    try:
        placed = in_threads(sorted(schedule, key=lambda job: job[0]), paced)
    finally:
        SENDERS = senders
    done = wait_terminal([pk for pk, _ in placed], timeout=300)
    drain()
    started = dict(placed)
    latencies = sorted((done[pk] - started[pk]) * 1000 for pk in done)
    if not latencies:
        return float("nan"), float("nan"), n, 0
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return statistics.median(latencies), p99, n, len(done)


def raw_chains(n: int) -> float:
    """Chains of HOPS no-op tasks per second on the same broker and workers (the last hop stamps its key)."""
    r = redis.Redis.from_url(settings.REDIS_URL)
    run = uuid.uuid4().hex[:8]
    keys = [f"bench:saga:chain:{run}:{i}" for i in range(n)]
    start = time.time()
    in_threads(list(range(n)), lambda i: chain(*[noop.si().set(queue="default") for _ in range(HOPS - 1)],
                                               noop.si(mark=keys[i]).set(queue="default")).apply_async())
    while r.exists(*keys) < n:
        time.sleep(0.01)
    last = max(float(v) for v in r.mget(keys))
    r.delete(*keys)
    return n / (last - start)


def main() -> None:
    url = os.environ["DATABASE_URL"]
    call_command("migrate", verbosity=0)
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    instance, product_id, customers = setup()
    workers = start_workers()
    try:
        peak(instance, product_id, customers, 50)  # warm up
        raw_chains(100)
        before = cpu_snapshot(workers)
        raw_rate = raw_chains(PEAK)
        after = cpu_snapshot(workers)
        raw_cpu = [(b - a) * 1000 / PEAK for a, b in zip(before, after, strict=True)]
        peak_rate, peak_done = peak(instance, product_id, customers, PEAK)
        peak_cpu = [(b - a) * 1000 / max(1, peak_done) for a, b in zip(after, cpu_snapshot(workers), strict=True)]
        loads = [(rate, *offered(instance, product_id, customers, rate)) for rate in RATES]
    finally:
        for proc, _ in workers:
            proc.terminate()
        for proc, _ in workers:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        redis.Redis.from_url(settings.REDIS_URL).flushdb()
        connection.close()
        drop_database(url)
    ratio = peak_rate / raw_rate * 100
    print(f"saga bench: two worker processes ({POOL} pool, every saga queue), orders placed in-process by {SENDERS}+ "
          f"threads through order_place, Redis DB {settings.REDIS_DB}, load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs")
    print(f"  {'peak orders/s (goal >= 100)':<46}{peak_rate:>9.1f}   ({peak_done} of {PEAK} orders ended) "
          f"{'ok' if peak_rate >= 100 else 'BELOW GOAL'}")
    print(f"  {f'raw Celery chain of {HOPS} no-op hops, chains/s':<46}{raw_rate:>9.1f}")
    print(f"  {'ratio (goal >= 30%)':<46}{ratio:>8.0f}%   {'ok' if ratio >= 30 else 'BELOW GOAL'}")
    print(f"  {'CPU ms per order at peak: workers / PG / bench':<46}{peak_cpu[0]:>9.1f} / {peak_cpu[1]:.1f} / "
          f"{peak_cpu[2]:.1f}   (per raw chain: {raw_cpu[0]:.1f} / {raw_cpu[1]:.1f} / {raw_cpu[2]:.1f})")
    for rate, p50, p99, n, ended in loads:
        goal = "   (goal p99 <= 250 ms: " + ("ok)" if p99 <= 250 else "BELOW GOAL)") if rate == 50 else ""
        print(f"  {f'offered {rate}/s: p50 / p99 ms placement -> terminal':<46}{p50:>9.0f} / {p99:.0f}"
              f"   ({ended} of {n} ended){goal}")
    bench_results.save("saga", {
        "peak_orders_per_s": peak_rate, "peak_orders": PEAK, "peak_ended": peak_done, "raw_chains_per_s": raw_rate,
        "hops": HOPS, "ratio_pct": ratio, "seconds_per_load": SECONDS, "workers": 2, "pool": POOL,
        "cpu_ms_per_order": dict(zip(("workers", "postgres", "bench"), peak_cpu, strict=True)),
        "cpu_ms_per_raw_chain": dict(zip(("workers", "postgres", "bench"), raw_cpu, strict=True)),
        "loads": [{"offered": rate, "p50_ms": p50, "p99_ms": p99, "orders": n, "ended": ended}
                  for rate, p50, p99, n, ended in loads],
    })


if __name__ == "__main__":
    main()
