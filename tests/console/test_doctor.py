"""``manage.py doctor``: one line per check, exit 1 naming what failed, ``--json`` as one object; success with a
real worker (and beat) on every queue, failures with no worker, a Redis that does not answer, an empty database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from io import StringIO
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from console import doctor
from saaskit.celery import APP_QUEUES
from tests.factories import ProfileFactory
from tests.support.workers import current_database_url, start_worker, worker_env

QUEUES = ("default", *APP_QUEUES)
ALL_CHECKS = ["settings", "signing_keys", "database", "redis", "broker", *(f"worker:{q}" for q in QUEUES), "beat",
              "lattice", "migrations"]
WORKER_CHECKS = [f"worker:{q}" for q in QUEUES]


@pytest.fixture(autouse=True)
def _own_signing_keys(settings, tmp_path):
    settings.JWT_KEYS_DIR = tmp_path / "jwt-keys"


def run_doctor(*args: str) -> tuple[str, CommandError | None]:
    out = StringIO()
    try:
        call_command("doctor", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


def run_doctor_process(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", "doctor", *args], cwd=settings.BASE_DIR, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.django_db(transaction=True)
@pytest.mark.integration
def test_with_a_worker_and_beat_on_every_queue_every_check_passes(tmp_path):
    worker = start_worker(queues=QUEUES, beat=True, log_dir=tmp_path)
    try:
        schedule = tmp_path / f"{worker.name}-beat-schedule"
        deadline = time.monotonic() + 30
        while not list(tmp_path.glob(f"{schedule.name}*")) and time.monotonic() < deadline:
            time.sleep(0.1)
        out, error = run_doctor("--json", "--worker-timeout", "3", "--beat-schedule", str(schedule))
        text, text_error = run_doctor("--worker-timeout", "3", "--beat-schedule", str(schedule))
    finally:
        worker.stop()

    result = json.loads(out)
    assert error is None and text_error is None, result
    assert result["ok"] is True and result["failed"] == []
    assert list(result["checks"]) == ALL_CHECKS
    assert {name: c["status"] for name, c in result["checks"].items()} == dict.fromkeys(ALL_CHECKS, "ok")
    assert result["checks"]["worker:orders"]["detail"] == f"answered by {worker.name}@{os.uname().nodename}"
    assert result["checks"]["database"]["detail"].endswith(f"database {connection.settings_dict['NAME']}")
    lines = text.splitlines()
    assert [line.split()[:2] for line in lines] == [["ok", name] for name in ALL_CHECKS]


@pytest.mark.django_db
def test_with_no_worker_each_queue_fails_by_name(tmp_path):
    out, error = run_doctor("--json", "--worker-timeout", "0.5", "--beat-schedule", str(tmp_path / "none"))

    result = json.loads(out)
    assert result["ok"] is False
    assert result["failed"] == WORKER_CHECKS
    assert str(error) == f"doctor: failed: {', '.join(WORKER_CHECKS)}"
    assert result["checks"]["worker:payments"] == {
        "status": "fail", "detail": "no worker consuming 'payments' answered within 0.5s"}
    assert result["checks"]["beat"] == {"status": "unknown",
                                        "detail": f"unknown: no beat schedule file at {tmp_path / 'none'}"}
    for name in ("settings", "signing_keys", "database", "redis", "broker", "lattice", "migrations"):
        assert result["checks"][name]["status"] == "ok", (name, result["checks"][name])


def test_a_redis_that_does_not_answer_fails_redis_broker_and_workers(db):
    env = worker_env({"REDIS_URL": "redis://127.0.0.1:1/0", "JWT_KEYS_DIR": str(settings.JWT_KEYS_DIR)})

    as_json = run_doctor_process("--json", "--worker-timeout", "0.5", env=env)
    as_text = run_doctor_process("--worker-timeout", "0.5", env=env)

    assert as_json.returncode == 1, as_json.stderr
    result = json.loads(as_json.stdout)
    assert result["failed"] == ["redis", "broker", *WORKER_CHECKS]
    assert result["checks"]["redis"]["status"] == "fail"
    assert "Connection" in result["checks"]["redis"]["detail"]
    assert result["checks"]["worker:events"] == {"status": "fail", "detail": "the broker is down"}
    assert result["checks"]["database"]["status"] == "ok"
    assert result["checks"]["migrations"] == {"status": "ok", "detail": "all applied"}
    assert as_json.stderr.strip().splitlines()[-1] == (
        f"CommandError: doctor: failed: redis, broker, {', '.join(WORKER_CHECKS)}")
    assert as_text.returncode == 1
    assert [line.split()[1] for line in as_text.stdout.splitlines()] == ALL_CHECKS
    assert as_text.stdout.splitlines()[3].split()[:2] == ["fail", "redis"]


@pytest.mark.django_db(transaction=True)
def test_an_empty_database_fails_migrations_naming_them():
    name = f"doctor_empty_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        parts = urlsplit(current_database_url())
        env = worker_env({"DATABASE_URL": urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, "")),
                          "JWT_KEYS_DIR": str(settings.JWT_KEYS_DIR)})
        completed = run_doctor_process("--json", "--worker-timeout", "0.3", env=env)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    assert completed.returncode == 1
    result = json.loads(completed.stdout)
    assert "migrations" in result["failed"]
    assert " not applied: contenttypes.0001_initial" in result["checks"]["migrations"]["detail"]
    assert result["checks"]["database"]["status"] == "ok"
    assert result["checks"]["database"]["detail"].endswith(f"database {name}")
    assert result["checks"]["lattice"]["status"] == "ok"  # the code's lattice is fine; profiles not checked
    assert "stored profiles not checked" in result["checks"]["lattice"]["detail"]


@pytest.mark.django_db
def test_a_profile_holding_an_undefined_role_fails_the_lattice_check():
    ProfileFactory(role="ghost")
    ProfileFactory(role="clerk")
    assert doctor.check_lattice() == doctor.Check(
        "lattice", "fail", "profiles hold roles the lattice does not define: ghost")


def test_beat_is_ok_while_its_schedule_is_fresh_and_unknown_otherwise(tmp_path):
    schedule = tmp_path / "celerybeat-schedule"
    assert doctor.check_beat(schedule=schedule).status == "unknown"

    (tmp_path / "celerybeat-schedule.dat").write_bytes(b"x")
    assert doctor.check_beat(schedule=schedule).status == "ok"

    old = time.time() - doctor.BEAT_FRESH_SECONDS - 60
    os.utime(tmp_path / "celerybeat-schedule.dat", (old, old))
    stale = doctor.check_beat(schedule=schedule)
    assert stale.status == "unknown" and stale.detail.startswith(f"unknown: schedule {schedule} last written")


def test_missing_signing_keys_in_production_fail_the_keys_check(settings, tmp_path):
    settings.PRODUCTION = True
    settings.JWT_KEYS_DIR = tmp_path / "empty"
    (tmp_path / "empty").mkdir()
    check = doctor._guarded("signing_keys", doctor.check_signing_keys)
    assert check.status == "fail" and check.detail == f"ValueError: no signing keys in {tmp_path / 'empty'}"


def test_the_command_has_help():
    completed = subprocess.run([sys.executable, "manage.py", "doctor", "--help"], cwd=settings.BASE_DIR,
                               capture_output=True, text=True, timeout=60, env=worker_env())
    assert completed.returncode == 0
    assert "--json" in completed.stdout and "--worker-timeout" in completed.stdout
