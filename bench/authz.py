"""authz benchmark: ``.venv/bin/python bench/authz.py`` (the dev database and Redis, its own data;
``QUICK=1`` for a short run).

For each policy count (10,000, 100,000 and 1,000,000; QUICK: the first two) a dedicated instance gets that
many random direct policies (``u:get|update|delete:orders:<id>``, 1,000 subjects), loaded by COPY; the very
same policies go into django-guardian's generic user object permissions and into pycasbin. The same check
workload (half granted, half not) is then timed, in interleaved rounds, through:

- our warm in-process cache (``AuthzCache.allowed``) and our cold path (``selectors.check``, one statement),
- guardian ``ObjectPermissionChecker`` cold (a new checker per check) and after ``prefetch_perms``,
- pycasbin ``Enforcer`` and ``FastEnforcer`` (ACL model, ``cache_key_order=[0, 1]``).

Then requests/s of ``GET /api/v1/authz/authorized`` against a no-op view with the same authentication and
tenant resolution (granian, 2 workers, loopback; ``saaskit.server``). Everything it creates is deleted at the
end, also on failure. Results go to ``.saaskit/bench/authz.json`` for ``bench/REPORT.md``; goals are reported,
not asserted.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saaskit.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DEBUG", "0")  # production-like: no per-query debug cursor in the timed cold paths

import django

django.setup()

from django.core.management import call_command
from django.db import connection

from bench.lib import results
from saaskit.server import granian_command, server_stop

RNG = random.Random(20261123)
N_USERS = 1_000
N_POLICIES = 100_000
N_CHECKS = 100_000
ACTIONS = ("get", "update", "delete")
GUARDIAN_CODENAME = {"get": "view_order", "update": "change_order", "delete": "delete_order"}
SLUG = "bench-authz"
HTTP_REQUESTS = results.pick(1_200, 3_000)
SIZES = results.pick([10_000, 100_000], [10_000, 100_000, 1_000_000])
ROUNDS = results.pick(2, 5)
BUDGET = results.pick(0.25, 0.6)
HTTP_CLIENTS = 8


def line(label: str, value: str, note: str = "") -> None:
    print(f"  {label:<46} {value:>16}  {note}")


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def fmt_rate(r: float) -> str:
    return f"{r:,.0f}/s"


# --- setup / teardown ------------------------------------------------------------------------------
def ensure_schema() -> None:
    """Apply pending migrations to the dev database (what ``make bench`` does first anyway)."""
    call_command("migrate", verbosity=0)


def cleanup() -> None:
    from accounts.models import Instance, User

    instance_ids = list(Instance.objects.filter(slug__startswith=SLUG).values_list("pk", flat=True))
    user_ids = list(User.objects.filter(email__endswith="@bench-authz.invalid").values_list("pk", flat=True))
    with connection.cursor() as cursor:
        if instance_ids:
            cursor.execute("DELETE FROM authz_policy WHERE instance_id = ANY(%s)", [instance_ids])
            cursor.execute("DELETE FROM authz_resourceuserobjectpermission WHERE content_object_id IN "
                           "(SELECT id FROM authz_resource WHERE instance_id = ANY(%s))", [instance_ids])
            cursor.execute("DELETE FROM authz_resource WHERE instance_id = ANY(%s)", [instance_ids])
        if user_ids:
            cursor.execute("DELETE FROM guardian_userobjectpermission WHERE user_id = ANY(%s)", [user_ids])
            cursor.execute("DELETE FROM authz_policy WHERE user_id = ANY(%s)", [user_ids])
            cursor.execute("DELETE FROM accounts_profile WHERE user_id = ANY(%s)", [user_ids])
    Instance.objects.filter(pk__in=instance_ids).delete()
    User.objects.filter(pk__in=user_ids).delete()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE authz_policy")


def copy_rows(table: str, columns: list[str], rows: list[tuple]) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join("\\N" if v is None else str(v) for v in row))
        buffer.write("\n")
    with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        copy.write(buffer.getvalue())


def make_policies(n: int, users: list[int], id_space: int) -> list[tuple[int, str, str]]:
    ids = RNG.sample(range(1, id_space), n)
    return [(RNG.choice(users), RNG.choice(ACTIONS), str(rid)) for rid in ids]


def insert_policies(instance_id: int, policies: list[tuple[int, str, str]]) -> None:
    copy_rows("authz_policy", ["instance_id", "user_id", "resource_type", "action", "resource_id", "created_at"],
              [(instance_id, u, "orders", a, rid, "2026-01-01 00:00:00+00") for u, a, rid in policies])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE authz_policy")


def make_users() -> list:
    from django.contrib.auth.hashers import make_password

    from accounts.models import User

    unusable = make_password(None)
    User.objects.bulk_create([User(email=f"u{i}@bench-authz.invalid", password=unusable) for i in range(N_USERS)],
                             batch_size=1000)
    return list(User.objects.filter(email__endswith="@bench-authz.invalid").order_by("pk"))


def setup(users: list, n_policies: int = N_POLICIES) -> tuple[object, list[tuple[int, str, str]]]:
    """A fresh instance (``bench-authz-<n>``) whose members hold ``n_policies`` random direct policies."""
    from accounts.models import Instance, Profile

    instance = Instance.objects.create(slug=f"{SLUG}-{n_policies}", name="authz bench")
    Profile.objects.bulk_create([Profile(user=u, instance=instance, role="customer") for u in users], batch_size=1000)
    policies = make_policies(n_policies, [u.pk for u in users], id_space(n_policies))
    insert_policies(instance.pk, policies)
    return instance, policies


def id_space(n_policies: int) -> int:
    return max(1_000_000, 10 * n_policies)


def clear_policies(users: list) -> None:
    """Drop the previous size's policies (ours and guardian's) so each size is timed on its own table."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM authz_policy WHERE user_id = ANY(%s)", [[u.pk for u in users]])
        cursor.execute("DELETE FROM guardian_userobjectpermission WHERE user_id = ANY(%s)", [[u.pk for u in users]])
        cursor.execute("VACUUM ANALYZE authz_policy")
        cursor.execute("VACUUM ANALYZE guardian_userobjectpermission")


def workload(users: list, policies: list[tuple[int, str, str]], n_checks: int = N_CHECKS) -> list[tuple[int, str, str]]:
    granted = RNG.sample(policies, min(len(policies), n_checks // 2))
    space = id_space(len(policies))
    denied = [(RNG.choice(users).pk, RNG.choice(ACTIONS), str(RNG.randrange(1, space)))
              for _ in range(n_checks - len(granted))]
    checks = granted + denied
    RNG.shuffle(checks)
    return checks


# --- cold-path helpers ----------------------------------------------------------------------------
def bench_cold(instance_id: int, checks: list, n: int = 3000) -> float:
    from authz import selectors

    sample = checks[:n]
    start = time.perf_counter()
    for u, a, rid in sample:
        selectors.check(instance_id=instance_id, user_id=u, action=a, resource_type="orders", resource_id=rid,
                        use_profile_role=False)
    return rate(len(sample), time.perf_counter() - start)


def cold_check_statements(instance_id: int, check: tuple[int, str, str]) -> tuple[int, str]:
    from django.test.utils import CaptureQueriesContext

    from authz import selectors

    u, a, rid = check
    connection.queries_log.clear()  # a full log (DEBUG runs) would leave the capture empty
    with CaptureQueriesContext(connection) as ctx:
        selectors.check(instance_id=instance_id, user_id=u, action=a, resource_type="orders", resource_id=rid,
                        use_profile_role=False)
    # the statement is a call of authz_check(); show the plan of the policy lookup it runs inside
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN SELECT 1 FROM authz_policy p WHERE p.instance_id = %s AND p.user_id = %s "
                       "AND p.resource_type = 'orders' AND p.action = %s AND p.resource_id = ANY(%s::varchar[])",
                       [instance_id, u, a, [rid, "*"]])
        plan = "\n".join(r[0] for r in cursor.fetchall())
    plan = ctx.captured_queries[0]["sql"] + "\n  runs:\n" + plan
    return len(ctx.captured_queries), plan


def load_guardian(users: list, policies: list) -> None:
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    from orders.models import Order

    ct = ContentType.objects.get_for_model(Order)
    perms = {p.codename: p.pk for p in Permission.objects.filter(content_type=ct)}
    copy_rows("guardian_userobjectpermission", ["object_pk", "content_type_id", "permission_id", "user_id"],
              [(rid, ct.pk, perms[GUARDIAN_CODENAME[a]], u) for u, a, rid in policies])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE guardian_userobjectpermission")


CASBIN_MODEL = """
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.sub == p.sub && r.obj == p.obj && r.act == p.act
"""


# --- HTTP: GET authorized vs a no-op view, granian with 2 workers -----------------------------------
# The bench's header authentication is not an access token, so ``/authorized`` takes the Django path here
# (saaskit.wsgi's fast path answers only token-authenticated requests): DRF view against DRF view.
BENCH_SETTINGS = '''
from saaskit.settings import *  # noqa
ROOT_URLCONF = "bench_authz_urls"
DEBUG = False
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_AUTHENTICATION_CLASSES": ["bench_authz_auth.HeaderAuthentication"],
                  "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
'''

BENCH_AUTH = '''
from rest_framework.authentication import BaseAuthentication

from accounts.models import User
from authz.context import ActingContext


class HeaderAuthentication(BaseAuthentication):
    """Bench-only: the acting context from headers (same cost for both views; no token crypto)."""

    def authenticate(self, request):
        user_id = request.META.get("HTTP_X_BENCH_USER")
        if not user_id:
            return None
        user = User(pk=int(user_id))
        ctx = ActingContext(user_id=int(user_id), instance_id=int(request.META["HTTP_X_BENCH_INSTANCE"]),
                            instance_slug=None, role="customer", profile_role="customer")
        return user, ctx
'''

BENCH_URLS = '''
from django.urls import include, path
from rest_framework.response import Response

from accounts.api.base import InstanceScopedAPIView


class NoopApi(InstanceScopedAPIView):
    def get(self, request):
        return Response({"authorized": True})


urlpatterns = [
    path("noop", NoopApi.as_view()),
    path("api/v1/authz/", include("authz.api.urls")),
]
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _client(args: tuple[int, str, int, int, int]) -> tuple[int, int, float]:
    port, path, n, user_id, instance_id = args
    headers = {"X-Bench-User": str(user_id), "X-Bench-Instance": str(instance_id)}
    ok = 0
    forbidden = 0
    start = time.perf_counter()
    for _ in range(n):
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
                ok += 1
        except urllib.error.HTTPError as error:
            error.read()
            forbidden += error.code == 403
    return ok, forbidden, time.perf_counter() - start


def bench_http(instance_id: int, user_id: int, resource_name: str) -> tuple[float, float, int, int]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-authz-http-"))
    port = _free_port()
    (tmp / "bench_authz_settings.py").write_text(BENCH_SETTINGS)
    (tmp / "bench_authz_urls.py").write_text(BENCH_URLS)
    (tmp / "bench_authz_auth.py").write_text(BENCH_AUTH)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench_authz_settings",
           "PYTHONPATH": f"{tmp}{os.pathsep}{BASE_DIR}", "SAASKIT_ENV": "development", "DEBUG": "false"}
    server = subprocess.Popen(granian_command(port=port, workers=2), cwd=BASE_DIR, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz-not-routed", timeout=1)
            except urllib.error.HTTPError:
                break
            except OSError:
                time.sleep(0.2)
        if server.poll() is not None:
            raise RuntimeError("granian did not start")
        authorized_path = f"/api/v1/authz/authorized?userId={user_id}&resourceName={resource_name}"
        results = {}
        with ProcessPoolExecutor(HTTP_CLIENTS) as pool:
            for label, path in (("noop", "/noop"), ("authorized", authorized_path),
                                ("noop2", "/noop"), ("authorized2", authorized_path),
                                ("noop3", "/noop"), ("authorized3", authorized_path)):
                per = HTTP_REQUESTS // HTTP_CLIENTS
                list(pool.map(_client, [(port, path, 20, user_id, instance_id)] * HTTP_CLIENTS))  # warm up
                start = time.perf_counter()
                outcomes = list(pool.map(_client, [(port, path, per, user_id, instance_id)] * HTTP_CLIENTS))
                elapsed = time.perf_counter() - start
                results[label] = (rate(per * HTTP_CLIENTS, elapsed), sum(o[0] for o in outcomes),
                                  sum(o[1] for o in outcomes))
    finally:
        server_stop(server)
        shutil.rmtree(tmp, ignore_errors=True)
    noop = max(results[k][0] for k in ("noop", "noop2", "noop3"))  # best of three rounds each, interleaved
    authorized = max(results[k][0] for k in ("authorized", "authorized2", "authorized3"))
    return noop, authorized, results["authorized"][1], results["noop"][1]


# --- checks/s against policy count: every implementation, same policies, same checks ---------------
def _timed(check, checks: list, budget: float) -> float:
    """Checks per second of ``check(u, a, rid)`` over ``checks`` (cycled) for about ``budget`` seconds; the
    clock is read after chunks that double in size, so a check taking seconds (casbin's plain Enforcer on a
    million policies) still stops on time and a fast one is not slowed by reading the clock."""
    n, chunk, start = 0, 1, time.perf_counter()
    while True:
        for i in range(n, n + chunk):
            u, a, rid = checks[i % len(checks)]
            check(u, a, rid)
        n += chunk
        elapsed = time.perf_counter() - start
        if elapsed >= budget:
            return n / elapsed
        if elapsed < budget / 8:
            chunk = min(chunk * 2, 4096)


def bench_size(users: list, size: int) -> dict[str, object]:
    """One policy count: ours warm and cold, guardian cold and prefetched, casbin Enforcer and FastEnforcer,
    each timed in ``ROUNDS`` rounds of about ``BUDGET`` seconds (median and spread reported)."""
    import casbin
    from guardian.core import ObjectPermissionChecker

    from authz import selectors
    from authz.cache import AuthzCache, watcher
    from orders.models import Order

    clear_policies(users)
    t0 = time.perf_counter()
    instance, policies = setup(users, size)
    load_guardian(users, policies)
    load_seconds = time.perf_counter() - t0
    checks = workload(users, policies, 20_000)
    expected = set(policies)
    by_pk = {u.pk: u for u in users}
    iid = instance.pk

    watcher.ensure_started()
    cache = AuthzCache(["orders"], max_subjects=N_USERS * 2)
    for user in users:
        cache.allowed(iid, user.pk, "get", "orders", "0")
    wrong = sum(cache.allowed(iid, u, a, "orders", rid) != ((u, a, rid) in expected) for u, a, rid in checks[:2000])

    per_user: dict[int, object] = {}
    for u, items in _group_by_user(checks).items():
        checker = ObjectPermissionChecker(by_pk[u])
        checker.prefetch_perms([Order(pk=int(rid)) for _, rid in items])
        per_user[u] = checker

    tmp = Path(tempfile.mkdtemp(prefix="bench-authz-casbin-"))
    try:
        (tmp / "model.conf").write_text(CASBIN_MODEL)
        (tmp / "policy.csv").write_text("".join(f"p, {u}, orders:{rid}, {a}\n" for u, a, rid in policies))
        t1 = time.perf_counter()
        plain = casbin.Enforcer(str(tmp / "model.conf"), str(tmp / "policy.csv"))
        plain.enable_log(False) if hasattr(plain, "enable_log") else None
        fast = casbin.FastEnforcer(str(tmp / "model.conf"), str(tmp / "policy.csv"), cache_key_order=[0, 1])
        casbin_load = time.perf_counter() - t1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    wrong_casbin = sum(fast.enforce(str(u), f"orders:{rid}", a) != ((u, a, rid) in expected)
                       for u, a, rid in checks[:500])

    methods = {
        "ours warm": lambda u, a, rid: cache.allowed(iid, u, a, "orders", rid),
        "ours cold": lambda u, a, rid: selectors.check(instance_id=iid, user_id=u, action=a, resource_type="orders",
                                                       resource_id=rid, use_profile_role=False),
        "guardian cold": lambda u, a, rid: ObjectPermissionChecker(by_pk[u]).has_perm(GUARDIAN_CODENAME[a],
                                                                                       Order(pk=int(rid))),
        "guardian prefetched": lambda u, a, rid: per_user[u].has_perm(GUARDIAN_CODENAME[a], Order(pk=int(rid))),
        "casbin Enforcer": lambda u, a, rid: plain.enforce(str(u), f"orders:{rid}", a),
        "casbin FastEnforcer": lambda u, a, rid: fast.enforce(str(u), f"orders:{rid}", a),
    }
    rounds: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(ROUNDS):  # interleaved rounds: the machine's drift hits every method alike
        for name, check in methods.items():
            rounds[name].append(_timed(check, checks, BUDGET))
    methods.clear()  # frees casbin's copies of the policies before the next size
    out = {"policies": size, "load_seconds": load_seconds, "casbin_load_seconds": casbin_load,
           "wrong_answers_ours": wrong, "wrong_answers_casbin_fast": wrong_casbin,
           "rates": {name: results.spread(values) for name, values in rounds.items()}}
    print(f"  {size:>9,} policies (COPY + guardian {load_seconds:.1f}s, casbin load {casbin_load:.1f}s)")
    for name, values in rounds.items():
        line(f"    {name}", fmt_rate(statistics.median(values)),
             f"rounds {', '.join(f'{v:,.0f}' for v in values)}")
    return out


def _group_by_user(checks: list) -> dict[int, list[tuple[str, str]]]:
    grouped: dict[int, list[tuple[str, str]]] = {}
    for u, a, rid in checks:
        grouped.setdefault(u, []).append((a, rid))
    return grouped


def bench_listings(instance: object, user_ids: list[int], held: tuple[int, str, str]) -> None:
    """The two listing endpoints' queries for a subject holding 100,000 objects (first page + count)."""
    from authz import selectors

    print("  listing queries (first page of 50 + count):")
    subject = user_ids[0]
    copy_rows("authz_policy", ["instance_id", "user_id", "resource_type", "action", "resource_id", "created_at"],
              [(instance.pk, subject, "orders", "cancel", str(i), "2026-01-01 00:00:00+00")  # type: ignore[attr-defined]
               for i in range(100_000)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE authz_policy")
    for label, make in (
        ("subjects/{id}/objects, 100,000 objects", lambda: selectors.subject_objects(
            instance=instance, user_id=subject, action="cancel", resource_type="orders")),
        ("objects/{type}/{id}/subjects", lambda: selectors.object_subjects(
            instance=instance, resource_type="orders", resource_id=held[2], action=held[1])),
    ):
        timings = []
        for _ in range(5):
            start = time.perf_counter()
            qs = make()
            page = list(qs[:50])
            total = qs.count()
            timings.append(time.perf_counter() - start)
        line(label, f"{statistics.median(timings) * 1e3:,.1f} ms", f"page of {len(page)}, count {total:,}")


def main() -> None:
    started = time.perf_counter()
    ensure_schema()
    cleanup()
    doc: dict[str, object] = {"sizes": SIZES, "rounds": ROUNDS, "budget_seconds": BUDGET, "users": N_USERS}
    try:
        print(f"authz bench: checks/s against policy count {', '.join(f'{s:,}' for s in SIZES)}; {N_USERS:,} "
              f"subjects, half the checks granted, {ROUNDS} rounds of ~{BUDGET}s per method")
        users = make_users()
        doc["by_size"] = [bench_size(users, size) for size in SIZES]

        instance = _instance_by_slug(f"{SLUG}-{SIZES[-1]}")
        policies = [(u, a, rid) for u, a, rid in _policy_rows(instance.pk)]
        checks = workload(users, policies, 2_000)
        statements, plan = cold_check_statements(instance.pk, checks[0])
        doc["cold_statements"] = statements
        doc["cold_plan"] = plan
        print(f"\ncold check: {statements} statement(s); plan:")
        print(textwrap.indent(plan, "    "))

        if not results.QUICK:  # the HTTP comparison is bench/cerbos.py's; this no-op-view ratio in full runs
            from authz import services

            resource = services.resource_create(instance=instance, name="bench-resource")
            services.policies_upsert(instance=instance, policies=[f"{users[0].pk}:get:resources:{resource.pk}"])
            noop, authorized, ok, noop_ok = bench_http(instance.pk, users[0].pk, "bench-resource")
            doc["http"] = {"noop": noop, "authorized": authorized, "clients": HTTP_CLIENTS, "requests": HTTP_REQUESTS}
            print(f"\nHTTP, granian 2 workers, {HTTP_CLIENTS} client processes (urllib, a connection per request), "
                  f"{HTTP_REQUESTS:,} requests each run")
            line("no-op view (same auth + tenant resolution)", fmt_rate(noop), f"{noop_ok} ok")
            line("GET /api/v1/authz/authorized", fmt_rate(authorized), f"{ok} answered 200")
            line("authorized / no-op", f"{authorized / noop:.0%}", "goal >= 70%")
            bench_listings(instance, [u.pk for u in users], policies[0])
    finally:
        cleanup()
        print(f"\n(bench took {time.perf_counter() - started:.0f}s; bench data removed)")
    results.save("authz", doc)


def _instance_by_slug(slug: str):  # type: ignore[no-untyped-def]
    from accounts.models import Instance

    return Instance.objects.get(slug=slug)


def _policy_rows(instance_id: int) -> list[tuple[int, str, str]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT user_id, action, resource_id FROM authz_policy WHERE instance_id = %s "
                       "AND resource_type = 'orders' LIMIT 50000", [instance_id])
        return cursor.fetchall()


def http_only() -> None:
    """``bench/authz.py --http`` runs only the HTTP part (quick iterations)."""
    from accounts.models import Instance, Profile, User
    from authz import services

    ensure_schema()
    cleanup()
    try:
        instance = Instance.objects.create(slug=SLUG, name="authz bench")
        user = User.objects.create(email="u0@bench-authz.invalid")
        Profile.objects.create(user=user, instance=instance, role="customer")
        resource = services.resource_create(instance=instance, name="bench-resource")
        services.policies_upsert(instance=instance, policies=[f"{user.pk}:get:resources:{resource.pk}"])
        noop, authorized, ok, noop_ok = bench_http(instance.pk, user.pk, "bench-resource")
        line("no-op view", fmt_rate(noop), f"{noop_ok} ok")
        line("GET authorized", fmt_rate(authorized), f"{ok} answered 200")
        line("authorized / no-op", f"{authorized / noop:.0%}", "goal >= 70%")
    finally:
        cleanup()


if __name__ == "__main__":
    http_only() if "--http" in sys.argv else main()
