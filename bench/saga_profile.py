"""Where an order's time goes, in-process: ``.venv/bin/python bench/saga_profile.py`` (a throwaway database; part of
``make bench``, which keeps its figures in ``.saaskit/bench/saga_profile.json``).

Places BENCH_SAGA_PROFILE_ORDERS (200; 100 with QUICK=1) orders through ``order_place`` and runs every delivery
they cause in this process, through the bus's own message path (``events.delivery.delivery_run`` with the
consumer's name and the JSON-decoded envelope, exactly what the ``events.deliver`` task calls), with the relay's
sends captured instead of going to Redis. Celery's and Redis' own costs are not in it (``bench/saga.py`` prints
the worker processes' CPU per order). Prints per step (the placement, each consumer): statements (a statement
sent by hand with BEGIN or COMMIT in the same round trip counts each part), round trips (Django's logged BEGIN
and COMMIT that the bus sends with its own statements are not counted), and CPU ms (``time.process_time``) per
order, and the PostgreSQL backend's CPU ms per order (its utime + stime from /proc); with PROFILE=1 a cProfile
on CPU time of all of it (also dumped to /tmp/saga_profile.pstats), with SHOW_SQL=1 the statements of one run
of each step, with POST=1 also ``POST /api/v1/orders/`` through the Django test client. The figures hardly
depend on the machine's load (CPU time and counts, not wall time).
"""

from __future__ import annotations

import collections
import cProfile
import io
import json
import os
import pstats
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saaskit.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DEBUG", "0")

from bench.lib import results as bench_results  # noqa: E402  (no Django in it)
from bench.lib.databases import drop_database, throwaway_database  # noqa: E402

ORDERS = int(os.environ.get("BENCH_SAGA_PROFILE_ORDERS", bench_results.pick("100", "200")))
PROFILE = os.environ.get("PROFILE") == "1"
POST = os.environ.get("POST") == "1"

os.environ["DATABASE_URL"] = throwaway_database("saaskit_bench_saga_profile")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, reset_queries  # noqa: E402

from events import delivery, relay  # noqa: E402

captured: collections.deque = collections.deque()


def _capture(deliveries):  # type: ignore[no-untyped-def]
    items = list(deliveries)
    captured.extend(items)
    return len(items)


relay.send = _capture  # the bus looks it up on the module at call time


_TICK = os.sysconf("SC_CLK_TCK")


def backend_cpu() -> float:
    """CPU seconds so far of this connection's PostgreSQL backend (utime + stime from /proc; NaN for a server
    elsewhere). Tick-quantized (10 ms): summed over many runs of a step, the per-run mean is fine."""
    try:
        pid = connection.connection.info.backend_pid
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (AttributeError, OSError):
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / _TICK


class Step:
    def __init__(self) -> None:
        self.runs = 0
        self.statements = 0
        self.round_trips = 0
        self.cpu = 0.0
        self.pg_cpu = 0.0
        self.last: list[str] = []

    def add(self, queries: list[dict], cpu: float, pg_cpu: float) -> None:
        self.runs += 1
        self.cpu += cpu
        self.pg_cpu += pg_cpu
        self.last = [q["sql"] for q in queries]
        sqls = [q["sql"] for q in queries]
        # Django logs BEGIN and COMMIT of its atomic blocks; on the bus's message path they are not sent alone
        # (the run lock goes with "BEGIN; ...", the finish with "...; COMMIT"): not round trips then.
        hand_begin = any(sql.startswith("BEGIN") and ";" in sql for sql in sqls)
        hand_commit = any(sql.endswith("; COMMIT") for sql in sqls)
        for sql in sqls:
            if (sql == "BEGIN" and hand_begin) or (sql == "COMMIT" and hand_commit):
                continue
            # a statement sent by hand as "A; B; C" is one round trip of several statements
            self.statements += len([p for p in sql.split("; ") if p.strip()]) if "events_" in sql else 1
            self.round_trips += 1


def measure(steps: dict[str, Step], name: str, fn) -> None:  # type: ignore[no-untyped-def]
    reset_queries()
    connection.ensure_connection()
    connection.force_debug_cursor = True
    pg_started = backend_cpu()
    started = time.process_time()
    try:
        fn()
    finally:
        cpu = time.process_time() - started
        pg_cpu = backend_cpu() - pg_started
        connection.force_debug_cursor = False
    steps.setdefault(name, Step()).add(list(connection.queries), cpu, pg_cpu)


def main() -> None:
    from accounts.models import Instance, User
    from inventory.services import product_create
    from orders.models import Order
    from orders.services import order_place
    from payments.services import wallet_create

    url = os.environ["DATABASE_URL"]
    call_command("migrate", verbosity=0)
    try:
        instance = Instance.objects.create(slug="bench-saga-profile", name="Bench saga profile")
        product = product_create(instance=instance, sku="P", name="P", price="1.00", stock_on_hand=2**31 - 1)
        customers = [User.objects.create_user(f"p{i}@saga.bench", None, name=f"p {i}") for i in range(50)]
        for user in customers:
            wallet_create(instance=instance, user=user, currency="USD", balance="1000000.00")
        steps: dict[str, Step] = {}
        outcomes: collections.Counter = collections.Counter()

        def run_all(n: int, record: bool) -> None:
            for i in range(n):
                customer = customers[i % len(customers)]
                place = lambda c=customer: order_place(instance=instance, customer=c, currency="USD",  # noqa: E731
                                                       lines=[{"product_id": product.pk, "quantity": 1}])
                if record:
                    measure(steps, "placement (order_place)", place)
                else:
                    place()
                while captured:
                    delivery_id, _queue, *carried = captured.popleft()
                    consumer, envelope = carried if carried else (None, None)
                    if envelope is not None:
                        envelope = json.loads(json.dumps(envelope))  # what the broker hands over

                    def deliver(d=delivery_id, c=consumer, e=envelope) -> None:  # type: ignore[no-untyped-def]
                        outcomes[(c, delivery.delivery_run(delivery_id=d, consumer=c, event=e).outcome)] += 1

                    if record:
                        measure(steps, f"delivery {consumer}", deliver)
                    else:
                        deliver()

        run_all(20, record=False)  # warm up
        outcomes.clear()
        profiler = cProfile.Profile(time.process_time) if PROFILE else None
        if profiler:
            profiler.enable()
        run_all(ORDERS, record=True)
        if profiler:
            profiler.disable()
            profiler.dump_stats("/tmp/saga_profile.pstats")
        approved = Order.objects.filter(status="approved").count()
        print(f"saga profile: {ORDERS} orders in-process (+20 warm-up, {approved} approved in all), "
              f"load average {os.getloadavg()[0]:.1f}")
        print(f"  {'step':<44}{'runs':>6}{'stmts/run':>11}{'trips/run':>11}{'CPU ms/run':>12}{'PG CPU ms':>11}")
        total = Step()
        for name, step in steps.items():
            print(f"  {name:<44}{step.runs:>6}{step.statements / step.runs:>11.1f}"
                  f"{step.round_trips / step.runs:>11.1f}{step.cpu * 1000 / step.runs:>12.2f}"
                  f"{step.pg_cpu * 1000 / step.runs:>11.2f}")
            total.statements += step.statements
            total.round_trips += step.round_trips
            total.cpu += step.cpu
            total.pg_cpu += step.pg_cpu
        print(f"  {'per order':<44}{ORDERS:>6}{total.statements / ORDERS:>11.1f}{total.round_trips / ORDERS:>11.1f}"
              f"{total.cpu * 1000 / ORDERS:>12.2f}{total.pg_cpu * 1000 / ORDERS:>11.2f}")
        print("  outcomes:", dict(outcomes))
        bench_results.save("saga_profile", {"orders": ORDERS, "steps": {
            name: {"statements": step.statements / step.runs, "round_trips": step.round_trips / step.runs,
                   "cpu_ms": step.cpu * 1000 / step.runs, "pg_cpu_ms": step.pg_cpu * 1000 / step.runs}
            for name, step in steps.items()},
            "per_order": {"statements": total.statements / ORDERS, "round_trips": total.round_trips / ORDERS,
                          "cpu_ms": total.cpu * 1000 / ORDERS, "pg_cpu_ms": total.pg_cpu * 1000 / ORDERS}})
        if os.environ.get("SHOW_SQL"):
            for name, step in steps.items():
                print(f"--- {name}")
                for sql in step.last:
                    print("   ", sql[:300])
        if profiler:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(45)
            print(out.getvalue())
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
            print(out.getvalue())
        if POST:
            profile_post(instance, product.pk, customers)
    finally:
        connection.close()
        drop_database(url)


def profile_post(instance, product_id: int, customers) -> None:  # type: ignore[no-untyped-def]
    """``POST /api/v1/orders/`` through the test client: CPU ms per request and where it goes."""
    from django.test import Client

    from accounts.models import Profile
    from accounts.services.tokens import access_token_issue

    user = customers[0]
    Profile.objects.get_or_create(user=user, instance=instance, defaults={"role": "customer"})
    token = access_token_issue(user_id=user.pk, instance=instance, role="customer", profile_role="customer")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    body = json.dumps({"currency": "USD", "lines": [{"product_id": product_id, "quantity": 1}]})

    def post() -> None:
        response = client.post("/api/v1/orders/", body, content_type="application/json")
        assert response.status_code == 201, response.content

    for _ in range(20):
        post()
        captured.clear()
    steps: dict[str, Step] = {}
    profiler = cProfile.Profile(time.process_time) if PROFILE else None
    if profiler:
        profiler.enable()
    for _ in range(100):
        measure(steps, "POST /api/v1/orders/", post)
        captured.clear()
    if profiler:
        profiler.disable()
    step = steps["POST /api/v1/orders/"]
    print(f"  POST /api/v1/orders/ (test client): {step.statements / step.runs:.1f} statements, "
          f"{step.cpu * 1000 / step.runs:.2f} CPU ms per request")
    if os.environ.get("SHOW_SQL"):
        for sql in step.last:
            print("   ", sql[:200])
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(50)
        print(out.getvalue())


if __name__ == "__main__":
    main()
