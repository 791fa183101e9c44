"""console benchmark: ``.venv/bin/python bench/console.py`` (a throwaway database, created and dropped here).

Loads 100,000 users, 10,000 instances (a profile per user) and 1,000,000 refresh tokens with COPY, then times the
console's main list pages in-process (Django's test client: middleware, queries and templates, no network) as a
superuser and as a staff instance admin. Goal (issue 10): under 300 ms each. Prints the figures; asserts nothing.
Sizes: BENCH_CONSOLE_USERS, BENCH_CONSOLE_INSTANCES, BENCH_CONSOLE_TOKENS; BENCH_CONSOLE_REPEAT timings per page.
``QUICK=1`` loads a tenth of each (the goal's sizes are the full run's). Results go to ``.saaskit/bench/console.json``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saaskit.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DEBUG", "0")

from bench.lib import results  # noqa: E402

USERS = int(os.environ.get("BENCH_CONSOLE_USERS", results.pick("10000", "100000")))
INSTANCES = int(os.environ.get("BENCH_CONSOLE_INSTANCES", results.pick("1000", "10000")))
TOKENS = int(os.environ.get("BENCH_CONSOLE_TOKENS", results.pick("100000", "1000000")))
REPEAT = int(os.environ.get("BENCH_CONSOLE_REPEAT", "5"))
GOAL_MS = 300.0
BENCH_DB = "saaskit_bench_console"

from bench.lib.databases import drop_database, throwaway_database  # noqa: E402

os.environ["DATABASE_URL"] = throwaway_database(BENCH_DB)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402

from accounts.models import Instance, Profile, RefreshToken, User  # noqa: E402


def _copy(model: type, columns: list[str], rows: object) -> None:
    table = model._meta.db_table
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg 3's cursor: COPY FROM STDIN
        with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:  # type: ignore[attr-defined]
                copy.write_row(row)


def load() -> tuple[User, User, Instance]:
    now = datetime.now(UTC)
    started = time.perf_counter()
    _copy(Instance, ["slug", "name", "is_active", "created_at"],
          ((f"shop-{i:05d}", f"Shop {i}", True, now) for i in range(INSTANCES)))
    first_instance = Instance.objects.order_by("pk").values_list("pk", flat=True).first()
    _copy(User, ["email", "password", "name", "is_active", "is_staff", "is_superuser", "date_joined"],
          ((f"user{i:06d}@example.com", "!", f"User {i}", True, False, False, now) for i in range(USERS)))
    first_user = User.objects.order_by("pk").values_list("pk", flat=True).first()
    _copy(Profile, ["user_id", "instance_id", "role", "created_at", "updated_at"],
          ((first_user + i, first_instance + i % INSTANCES, "customer", now, now) for i in range(USERS)))
    expires = now + timedelta(days=30)

    def tokens() -> object:
        for i in range(TOKENS):
            user = i % USERS
            yield (uuid.uuid4(), first_user + user, first_instance + user % INSTANCES, "customer", "customer",
                   uuid.uuid4(), uuid.uuid4().hex + uuid.uuid4().hex, now - timedelta(seconds=TOKENS - i), expires,
                   None if i % 3 else now, "")

    _copy(RefreshToken, ["id", "user_id", "instance_id", "role", "profile_role", "family", "token_hash",
                         "created_at", "expires_at", "revoked_at", "revoked_reason"], tokens())
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"loaded {USERS:,} users, {INSTANCES:,} instances, {USERS:,} profiles, {TOKENS:,} refresh tokens "
          f"in {time.perf_counter() - started:.1f} s")
    root = User.objects.create_superuser(email="root@bench.example", password="bench-password-123")
    instance = Instance.objects.get(pk=first_instance)
    operator = User.objects.create_user(email="operator@bench.example", password="bench-password-123",
                                        is_staff=True)
    Profile.objects.create(user=operator, instance=instance, role="instance_admin")
    return root, operator, instance


def time_page(client: Client, url: str) -> tuple[int, float, float]:
    response = client.get(url)  # warm-up (and the status)
    samples = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
    return response.status_code, statistics.median(samples), max(samples)


def main() -> None:
    call_command("migrate", verbosity=0)
    root, operator, instance = load()
    a_user = User.objects.filter(profiles__instance=instance, is_staff=False).order_by("pk").first()
    tokens = reverse("admin:accounts_refreshtoken_changelist")
    pages = [
        ("users", reverse("admin:accounts_user_changelist")),
        ("users, search by email", f"{reverse('admin:accounts_user_changelist')}?q={a_user.email}"),
        ("instances", reverse("admin:accounts_instance_changelist")),
        ("profiles", reverse("admin:accounts_profile_changelist")),
        ("refresh tokens", tokens),
        ("refresh tokens, state live", f"{tokens}?state=active"),
        ("refresh tokens, search by email", f"{tokens}?q={a_user.email}"),
        ("refresh tokens, one instance", f"{tokens}?instance={instance.pk}"),
        ("a user's page", reverse("admin:accounts_user_change", args=[a_user.pk])),
        ("an instance's page", reverse("admin:accounts_instance_change", args=[instance.pk])),
        ("audit log", reverse("admin:audit_auditentry_changelist")),
        ("orders", reverse("admin:orders_order_changelist")),
        ("dashboard (index)", reverse("admin:index")),
    ]
    print(f"\nmedian / max of {REPEAT} GETs after a warm-up, in ms (goal < {GOAL_MS:.0f} ms each)")
    print(f"{'page':34} {'superuser':>20} {'instance admin':>20}")
    worst = 0.0
    rows = []
    for name, url in pages:
        cells = []
        for user in (root, operator):
            client = Client()
            client.force_login(user)
            status, median, peak = time_page(client, url)
            worst = max(worst, median)
            cells.append(f"{median:7.1f} / {peak:7.1f}" + ("" if status == 200 else f" ({status})"))
            rows.append({"page": name, "as": "superuser" if user is root else "instance admin", "status": status,
                         "median_ms": median, "max_ms": peak})
        print(f"{name:34} {cells[0]:>20} {cells[1]:>20}")
    print(f"\nslowest median: {worst:.1f} ms: goal {'met' if worst < GOAL_MS else 'NOT met'}")
    results.save("console", {"users": USERS, "instances": INSTANCES, "tokens": TOKENS, "repeat": REPEAT,
                             "goal_ms": GOAL_MS, "pages": rows, "slowest_median_ms": worst})


if __name__ == "__main__":
    url = os.environ["DATABASE_URL"]
    try:
        main()
    finally:
        connection.close()
        drop_database(url)
