"""Member, instance and key changes reach another process's caches through the authz change feed: once the
feed says so (within a second of the commit, the project's bound), the second process stops allowing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from authz import changefeed
from authzen import services
from tests.factories import ProfileFactory
from tests.support.waiting import wait_until

BASE_DIR = Path(__file__).resolve().parents[2]


def _probe(key: str, instance_id: int, subject: str) -> tuple[subprocess.Popen, list[dict]]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "saaskit.settings_test", "PYTHONPATH": str(BASE_DIR)}
    probe = subprocess.Popen([sys.executable, str(Path(__file__).with_name("pdp_probe.py")),
                              connection.settings_dict["NAME"], key, str(instance_id), subject, "products", "update",
                              "1"], cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, text=True)
    reports: list[dict] = []
    threading.Thread(target=lambda: [reports.append(json.loads(line)) for line in probe.stdout], daemon=True).start()
    return probe, reports


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", ["role_changed", "member_removed", "external_id_changed", "instance_deactivated",
                                    "key_revoked"])
def test_a_change_stops_another_process_allowing_within_one_second(change):
    changefeed.client().delete(changefeed.STREAM)
    profile = ProfileFactory(role="clerk", external_id="idp|alice")  # clerks may update products by role
    instance = profile.instance
    _, key_row, key = services.service_client_create(instance=instance, name="pep", role="customer")
    probe, reports = _probe(key, instance.pk, "idp|alice")
    try:
        wait_until(lambda: sum(1 for r in reports if r["warm"] and r["allowed"]) >= 5, timeout=30)

        if change == "role_changed":
            profile.role = "customer"
            profile.save(update_fields=["role", "updated_at"])
        elif change == "member_removed":
            profile.delete()
        elif change == "external_id_changed":
            profile.external_id = "idp|someone-else"
            profile.save(update_fields=["external_id", "updated_at"])
        elif change == "instance_deactivated":
            instance.is_active = False
            instance.save()
        else:
            services.service_key_revoke(key=key_row)
        committed = time.time()
        wait_until(lambda: reports and reports[-1]["t"] > committed + 1.5, timeout=10)
    finally:
        probe.kill()
        probe.wait()

    assert [r for r in reports if r["t"] < committed][-1]["allowed"] is True
    after_bound = [r for r in reports if r["t"] > committed + 1.0]
    assert len(after_bound) > 0
    assert [r for r in after_bound if r["allowed"]] == []
