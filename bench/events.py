"""events benchmark: ``.venv/bin/python bench/events.py [N]`` (dev database, its own Redis DB, its own worker).

For 1, 2 and 4 worker processes (QUICK: 1 and 2) starts that many ``celery -A saaskit worker -Q bench --pool
solo`` and measures, on the same broker in the same run,
BENCH_ROUNDS (3) rounds of the two rates back to back, reporting the medians and the median of the rounds' ratios:

- raw Celery: no-op tasks/s, sent by SENDERS threads of this process (BENCH_SENDERS_AS=processes: processes)
  while the worker drains them;
- the bus: events/s from ``publish()`` (each in its own transaction, sent after commit; the same senders) to the
  consumer's delivery marked done by that worker (a no-op consumer, the event's only subscriber here: one event,
  one delivery, one message, so only the bus's own cost is measured), and the ratio (goal >= 50%);
- the cost ``publish()`` adds inside a request's transaction: statements it runs (goal: one INSERT, here the
  event row and its delivery rows in one statement) and its time (goal: < 1 ms), median and p95.

The numbers depend on the machine's load (both sides share its CPUs with PostgreSQL and Redis): compare the
two rates of one run, not runs with each other. What depends far less on the load is the CPU time (utime + stime
from /proc) per raw task and per bus event of the bench and its senders, the workers, PostgreSQL and Redis, also
printed, and their ratio: when the run is CPU-bound (2 cores) the rates' ratio tends to it.

Prints the numbers next to the goals; asserts nothing. Everything it creates is deleted at the end.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saaskit.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DEBUG", "0")  # production-like: no per-query debug cursor in the bench or its worker
os.environ.setdefault("SAASKIT_REDIS_DB", "14")  # not the dev worker's: it must not steal the bench's messages
os.environ["EVENTS_EXTRA_CONSUMER_MODULES"] = "bench.eventsbench.consumer"

import django

django.setup()

import redis
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.test.utils import CaptureQueriesContext

from bench.eventsbench.consumer import NAME, QUEUE
from bench.lib import cpu, results
from events import publish
from events.choices import DeliveryStatus
from events.consumers import subscriptions_for, unregister
from events.models import Delivery, OutboxEvent
from events.tasks import noop

# One event, one delivery, one message, as raw Celery's one task: the bench consumer is the only subscriber here.
# (payments.record_alert also consumes event-suspicious-activity since 2026-12-01; with it every bench event was
# two deliveries and two messages, the second never consumed, and the bus paid twice the relay's cost.)
for _sub in subscriptions_for("event-suspicious-activity"):
    if _sub.name != NAME:
        unregister(_sub.name)

N = int(sys.argv[1]) if len(sys.argv) > 1 else results.pick(300, 1000)
ROUNDS = int(os.environ.get("BENCH_ROUNDS", results.pick("2", "3")))
WORKERS = results.pick([1, 2], [1, 2, 4])
SENDERS = int(os.environ.get("BENCH_SENDERS", "4"))
SENDERS_AS = os.environ.get("BENCH_SENDERS_AS", "threads")  # or processes; see Senders
POLL_SECONDS = 0.05  # how often the bench looks whether a run is over (both rates take their end from the run)


class Senders:
    """SENDERS senders that live for the whole bench, each with its own DB connection kept between rounds, as a
    web process keeps its persistent connection (CONN_MAX_AGE). Senders started per round, each opening (and
    closing) a connection, charged the bus a new PostgreSQL backend per sender and round (about 5 ms of CPU time
    each, some 70 us per event at N=300) that raw Celery's sends do not pay.

    Threads of this process by default; BENCH_SENDERS_AS=processes forks SENDERS processes instead, as web
    workers are (threads share one GIL, and the bus's publish waits twice on PostgreSQL, its INSERT and its commit,
    where raw Celery's send waits once). Both sides use the same senders on equal terms; the senders' CPU time
    counts as the bench's. With the relay's own send path (2026-12-01) both ways measured the same CPU ratio."""

    def __init__(self) -> None:
        self.as_processes = SENDERS_AS == "processes"
        if self.as_processes:
            import multiprocessing

            connection.close()  # not shared with the children: each opens its own
            context = multiprocessing.get_context("fork")
            self.pipes, self.procs = [], []
            for _ in range(SENDERS):
                parent_end, child_end = context.Pipe()
                proc = context.Process(target=_sender_process, args=(child_end,), daemon=True)
                proc.start()
                self.pipes.append(parent_end)
                self.procs.append(proc)
        else:
            self.pool = ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="bench-sender")

    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs] if self.as_processes else []

    def run(self, kind: str, n: int) -> None:
        """Run ``WORK[kind](count)`` in the SENDERS senders sharing n items; returns when all are done."""
        counts = [n // SENDERS + (1 if i < n % SENDERS else 0) for i in range(SENDERS)]
        if self.as_processes:
            for pipe, count in zip(self.pipes, counts, strict=True):
                pipe.send((kind, count))
            for pipe in self.pipes:
                if pipe.recv() != "done":
                    raise SystemExit("a bench sender failed")
            return
        barrier = threading.Barrier(SENDERS)  # one share per thread, all starting together

        def share(count: int) -> None:
            barrier.wait()
            WORK[kind](count)

        for future in [self.pool.submit(share, count) for count in counts]:
            future.result()

    def close(self) -> None:
        if self.as_processes:
            for pipe in self.pipes:
                pipe.send(None)
            for proc in self.procs:
                proc.join(timeout=20)
            return
        barrier = threading.Barrier(SENDERS)

        def close_connection() -> None:
            barrier.wait()  # each thread once: close its own connection
            connection.close()

        for future in [self.pool.submit(close_connection) for _ in range(SENDERS)]:
            future.result()
        self.pool.shutdown()


def _sender_process(pipe) -> None:
    """A sender process (forked): runs what the bench asks until told to stop, then closes its connection."""
    try:
        while (command := pipe.recv()) is not None:
            kind, count = command
            WORK[kind](count)
            pipe.send("done")
    except BaseException:
        import traceback

        traceback.print_exc()
        pipe.send("failed")
    finally:
        connection.close()
        os._exit(0)  # no atexit handlers of the parent's


SENDER_POOL: Senders | None = None


def in_senders(kind: str, n: int) -> None:
    """Run ``WORK[kind](count)`` in the SENDERS senders sharing n items (each has its own DB connection)."""
    global SENDER_POOL
    if SENDER_POOL is None:
        SENDER_POOL = Senders()
    SENDER_POOL.run(kind, n)


def sender_pids() -> list[int]:
    return SENDER_POOL.pids() if SENDER_POOL is not None else []


PAYLOAD_KIND = "bench"


def start_worker(index: int = 0) -> tuple[subprocess.Popen[bytes], Path]:
    """One worker process (solo pool) on the bench queue and a queue of its own, for its readiness marker."""
    own_queue = f"{QUEUE}-w{index}"
    log = BASE_DIR / ".saaskit" / f"bench-events-worker-{index}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(BASE_DIR)}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "saaskit", "worker", "-Q", f"{QUEUE},{own_queue}", "--pool", "solo",
             "--loglevel", os.environ.get("BENCH_WORKER_LOGLEVEL", "WARNING"),
             "-n", f"bench-events-{os.getpid()}-{index}@%h", "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT)
    # Ready when it has consumed a marker task.
    r = redis.Redis.from_url(settings.REDIS_URL)
    r.delete(f"bench:ready:{index}")
    noop.apply_async(kwargs={"mark": f"bench:ready:{index}"}, queue=own_queue)
    deadline = time.monotonic() + 60
    while not r.get(f"bench:ready:{index}"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"bench worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    return proc, log


def send_raw(count: int) -> None:
    for _ in range(count):
        noop.apply_async(queue=QUEUE)


def publish_events(count: int) -> None:
    for i in range(count):
        publish("event-suspicious-activity", {"kind": PAYLOAD_KIND, "detail": str(i), "user_id": None}, instance=None)


WORK = {"raw": send_raw, "bus": publish_events}


def raw_celery(n: int) -> float:
    r = redis.Redis.from_url(settings.REDIS_URL)
    r.delete("bench:raw")
    start = time.time()
    in_senders("raw", n - 1)
    noop.apply_async(kwargs={"mark": "bench:raw"}, queue=QUEUE)  # FIFO: the worker gets here last
    while not r.get("bench:raw"):  # the end is the mark's time: the look's interval does not change the rate
        time.sleep(POLL_SECONDS)
    return n / (float(r.get("bench:raw")) - start)


def database_clock() -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extract(epoch FROM clock_timestamp())")
        return float(cursor.fetchone()[0])


def bus(n: int) -> float:
    start = database_clock()
    in_senders("bus", n)
    # Done when no delivery of the bench consumer is open (the partial index of open deliveries answers that
    # without counting the done ones). The end is the last delivery's done_at, by the database's clock like the
    # start, so the look's interval does not change the rate; looking every 5 ms, as this did before, cost about
    # a fifth of the bench process's CPU time per event, taken from the worker and PostgreSQL on a 2-core machine.
    still_open = Delivery.objects.filter(consumer=NAME).exclude(status=DeliveryStatus.DONE)
    while still_open.exists():
        time.sleep(POLL_SECONDS)
    end = Delivery.objects.filter(consumer=NAME).aggregate(end=Max("done_at"))["end"].timestamp()
    return n / (end - start)


def publish_cost(n: int) -> tuple[list[str], float, float]:
    with transaction.atomic():
        with CaptureQueriesContext(connection) as queries:
            publish("event-suspicious-activity", {"kind": PAYLOAD_KIND, "detail": "q", "user_id": None},
                    instance=None)
        statements = [q["sql"] for q in queries.captured_queries]
        timings = []
        for i in range(n):
            t = time.perf_counter()
            publish("event-suspicious-activity", {"kind": PAYLOAD_KIND, "detail": str(i), "user_id": None},
                    instance=None)
            timings.append((time.perf_counter() - t) * 1000)
        transaction.set_rollback(True)  # the request failed: nothing is relayed
    timings.sort()
    return statements, statistics.median(timings), timings[int(len(timings) * 0.95)]


def cleanup() -> None:
    ids = OutboxEvent.objects.filter(name="event-suspicious-activity", payload__kind=PAYLOAD_KIND).values_list(
        "id", flat=True)
    Delivery.objects.filter(event_id__in=ids).delete()
    OutboxEvent.objects.filter(id__in=ids).delete()


def vacuum_events_tables() -> None:
    """The rounds delete what they wrote; vacuum now so autovacuum does not start in the middle of a round."""
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) events_delivery, events_outboxevent")


def wait_for_autovacuum(limit_seconds: float = 120) -> float:
    """Wait (up to the limit) for autovacuum workers to finish, e.g. on what the previous benchmark deleted."""
    started = time.monotonic()
    with connection.cursor() as cursor:
        while time.monotonic() - started < limit_seconds:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' "
                           "AND state = 'active'")
            if cursor.fetchone()[0] == 0:
                break
            time.sleep(0.5)
    return time.monotonic() - started


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


CPU_PARTS = ("bench", "workers", "postgres", "redis")  # the bench process is the sender / publisher


def cpu_seconds(procs: list[subprocess.Popen[bytes]]) -> dict[str, float]:
    """CPU seconds so far (utime + stime from /proc) of this process, the workers, PostgreSQL and Redis (the
    embedded servers; a server elsewhere counts as 0)."""
    data = Path(os.environ.get("SAASKIT_DATA_DIR", BASE_DIR / ".saaskit"))
    found = cpu.tree_seconds({"senders": sender_pids(), "workers": [p.pid for p in procs],
                              "postgres": [cpu.pid_from_file(data / "pgdata" / "postmaster.pid")],
                              "redis": [cpu.pid_from_file(data / "redis" / "redis.pid")]})
    return {"bench": time.process_time() + found.pop("senders"), **found}


def cpu_per_item(procs: list[subprocess.Popen[bytes]], run, n: int) -> tuple[float, dict[str, float]]:
    """``run(n)``'s rate and the CPU microseconds per item of each part (what the machine's load barely moves)."""
    before = cpu_seconds(procs)
    rate = run(n)
    after = cpu_seconds(procs)
    return rate, {part: (after[part] - before[part]) * 1e6 / n for part in CPU_PARTS}


CPU_ROUNDS: dict[int, list[tuple[dict[str, float], dict[str, float]]]] = {}  # workers -> [(raw, bus) us per item]


def measure(workers: int) -> list[tuple[float, float]]:
    """ROUNDS rounds of (raw Celery tasks/s, bus events/s) with ``workers`` worker processes (and the CPU time per
    task / event of each round in CPU_ROUNDS)."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for index in range(workers):
            procs.append(start_worker(index)[0])
        bus(50)  # warm both paths
        raw_celery(200)
        rounds = []  # (raw, bus) measured back to back: the machine's drift hits both alike
        for _ in range(ROUNDS):
            raw_rate, raw_cpu = cpu_per_item(procs, raw_celery, N)
            bus_rate, bus_cpu = cpu_per_item(procs, bus, N)
            rounds.append((raw_rate, bus_rate))
            CPU_ROUNDS.setdefault(workers, []).append((raw_cpu, bus_cpu))
            cleanup()  # every round starts from the same tables
            vacuum_events_tables()
    finally:
        stop_workers(procs)
        cleanup()
        redis.Redis.from_url(settings.REDIS_URL).flushdb()
    return rounds


def cpu_medians(workers: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median CPU us per raw task and per bus event of each part over the rounds with ``workers`` workers."""
    rounds = CPU_ROUNDS[workers]
    return tuple({part: statistics.median(r[side][part] for r in rounds) for part in CPU_PARTS}  # type: ignore
                 for side in (0, 1))


def cpu_text(parts: dict[str, float]) -> str:
    return f"{sum(parts.values()):,.0f} (" + " / ".join(f"{parts[p]:,.0f}" for p in CPU_PARTS) + ")"


def main() -> None:
    cleanup()
    vacuum_events_tables()
    waited = wait_for_autovacuum()
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    by_workers = {}
    for workers in WORKERS:
        by_workers[workers] = measure(workers)
        raw = statistics.median(r for r, _ in by_workers[workers])
        events = statistics.median(b for _, b in by_workers[workers])
        raw_cpu, bus_cpu = cpu_medians(workers)
        print(f"  {workers} worker process(es): raw Celery {raw:,.0f} tasks/s, bus {events:,.0f} events/s "
              f"({events / raw:.0%}); CPU us per item raw {cpu_text(raw_cpu)}, bus {cpu_text(bus_cpu)}: "
              f"ratio {sum(raw_cpu.values()) / sum(bus_cpu.values()):.0%}")
    if SENDER_POOL is not None:
        SENDER_POOL.close()
    rounds = by_workers[1]
    statements, median_ms, p95_ms = publish_cost(N)
    cleanup()
    ratios = [bus_rate / raw_rate * 100 for raw_rate, bus_rate in rounds]
    ratio = statistics.median(ratios)
    raw = statistics.median(r for r, _ in rounds)
    events = statistics.median(b for _, b in rounds)
    one_insert = len(statements) == 1 and statements[0].startswith("WITH e AS (INSERT INTO events_outboxevent")
    print(f"events bench, N={N}, figures below for one worker (solo pool), {SENDERS} sending {SENDERS_AS}, "
          f"Redis DB {settings.REDIS_DB}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
          + (f", waited {waited:.0f}s for autovacuum" if waited >= 1 else ""))
    print(f"  {'raw Celery no-op tasks/s (median)':<44}{raw:>10.0f}   rounds: "
          + ", ".join(f"{r:.0f}" for r, _ in rounds))
    print(f"  {'bus events/s publish -> consumer done':<44}{events:>10.0f}   rounds: "
          + ", ".join(f"{b:.0f}" for _, b in rounds))
    print(f"  {'ratio, median of rounds (goal >= 50%)':<44}{ratio:>9.0f}%  {'ok' if ratio >= 50 else 'BELOW GOAL'}"
          f"   rounds: " + ", ".join(f"{r:.0f}%" for r in ratios))
    raw_cpu, bus_cpu = cpu_medians(1)
    print(f"  {'CPU us per task / event (median of rounds)':<44}raw {cpu_text(raw_cpu)}, bus {cpu_text(bus_cpu)}"
          f"   (bench / workers / PostgreSQL / Redis)")
    print(f"  {'ratio of CPU per item, raw / bus (proxy)':<44}{sum(raw_cpu.values()) / sum(bus_cpu.values()):>9.0%}  "
          f"(the rates' ratio tends to it when the run is CPU-bound)")
    print(f"  {'publish() statements in a request (goal: 1 INSERT)':<44}{len(statements):>10}  "
          f"{'ok (INSERT event + its deliveries, one statement)' if one_insert else 'BELOW GOAL'}")
    print(f"  {'publish() ms median / p95 (goal < 1 ms)':<44}{median_ms:>10.3f} / {p95_ms:.3f}  "
          f"{'ok' if p95_ms < 1 else 'BELOW GOAL'}")
    results.save("events", {
        "n": N, "senders": SENDERS, "rounds": ROUNDS, "workers": WORKERS,
        "by_workers": [{"workers": w, "raw": results.spread([r for r, _ in rs]),
                        "bus": results.spread([b for _, b in rs]),
                        "ratio_pct": results.spread([b / r * 100 for r, b in rs]),
                        "cpu_us_raw": cpu_medians(w)[0], "cpu_us_bus": cpu_medians(w)[1]}
                       for w, rs in by_workers.items()],
        "publish_statements": len(statements), "publish_one_insert": one_insert,
        "publish_ms_median": median_ms, "publish_ms_p95": p95_ms,
    })


if __name__ == "__main__":
    main()
