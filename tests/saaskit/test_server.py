"""granian as ``saaskit.server`` runs it: behind a proxy the client address still comes from ``X-Forwarded-For``
(``TRUSTED_PROXY_COUNT``), and a worker killed mid-service is replaced."""

from __future__ import annotations

import http.client
import json
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from accounts.services.tokens import access_token_issue
from audit.models import AuditEntry
from tests.factories import ProfileFactory
from tests.support.server import granian_server

pytestmark = pytest.mark.django_db(transaction=True)


def _logout_all(base: str, token: str, forwarded_for: str | None) -> int:
    request = urllib.request.Request(f"{base}/api/v1/auth/logout-all", data=b"", method="POST")
    request.add_header("Authorization", f"Bearer {token}")
    if forwarded_for is not None:
        request.add_header("X-Forwarded-For", forwarded_for)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def test_client_address_behind_one_proxy_comes_from_x_forwarded_for():
    profile = ProfileFactory(role="customer")
    with granian_server(env={"TRUSTED_PROXY_COUNT": "1"}) as base:
        for forwarded_for in ("6.6.6.6, 10.1.2.3", None):
            token = access_token_issue(user_id=profile.user_id, instance=profile.instance, role="customer",
                                       profile_role="customer")
            time.sleep(0.01)  # issued after the previous revoke-all's stamp
            assert _logout_all(base, token, forwarded_for) == 204
    addresses = list(AuditEntry.objects.filter(action="token_revocation").order_by("pk")
                     .values_list("address", flat=True))
    # the entry the client wrote itself (6.6.6.6) does not count; no header: the peer (REMOTE_ADDR)
    assert addresses == ["10.1.2.3", "127.0.0.1"]


def _children(pid: int) -> list[int]:
    return [int(k) for k in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_a_killed_worker_is_replaced():
    with granian_server(workers=1) as base:
        master = _server_pid(base)
        (worker,) = _children(master)
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
                    status = response.status
                break
            except urllib.error.HTTPError as error:
                status = error.code
                break
            except OSError:
                assert time.monotonic() < deadline, "no worker answered after the kill"
                time.sleep(0.3)
        assert status in (200, 503)  # it answers (503 would name a component down, not the server)
        assert _children(master) != [worker]


def _server_pid(base: str) -> int:
    """The pid of the granian master listening on ``base``'s port (a child of this test process)."""
    port = base.rsplit(":", 1)[1]
    for child in _children(os.getpid()):
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        if b"granian" in b" ".join(cmdline) and port.encode() in cmdline:
            return child
    raise AssertionError("granian not found")



def test_more_idle_keep_alive_clients_than_threads_are_all_answered():
    """An open keep-alive connection must not hold one of the worker's threads: with 1 worker of 2 threads,
    six clients that each keep their connection open are all answered (granian's ``--backpressure`` at the
    thread count made the third client wait forever)."""
    with granian_server(workers=1, threads=2) as base:
        port = int(base.rsplit(":", 1)[1])
        connections = []
        answered = []
        try:
            for _ in range(6):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connections.append(conn)
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                response.read()
                answered.append(response.status)
        finally:
            for conn in connections:
                conn.close()
    assert answered == [200] * 6


def test_the_pdp_listener_is_the_web_servers_command_with_one_thread_on_the_single_threaded_runtime():
    from saaskit.server import granian_command, pdp_command

    pdp = pdp_command(port=8001, workers=3)
    web = granian_command(port=8001, workers=3)
    assert pdp[pdp.index("--blocking-threads") + 1] == "1"
    assert pdp[pdp.index("--runtime-mode") + 1] == "st"
    assert "--runtime-mode" not in web  # the general server keeps granian's default runtime
    # everything else is the same command line: the same application, workers, respawn and logging
    expected = list(web)
    expected[web.index("--blocking-threads") + 1] = "1"
    assert [a for a in pdp if a not in ("--runtime-mode", "st")] == expected


def test_the_pdp_listener_answers_decisions_and_django_on_kept_alive_connections():
    """One worker of one thread: six keep-alive clients are all answered, each with a fast-path decision and a
    request that goes through Django (the discovery document) on the same connection."""
    from authzen.services import service_client_create

    profile = ProfileFactory(role="clerk")
    _, _, token = service_client_create(instance=profile.instance, name="pep", role="customer")
    slug = profile.instance.slug
    asks = [json.dumps({"subject": {"type": "user", "id": str(profile.user_id)}, "action": {"name": action},
                        "resource": {"type": "orders", "id": "1"}}) for action in ("get", "delete")]
    with granian_server(workers=1, pdp=True) as base:
        master = _server_pid(base)
        (worker,) = _children(master)
        assert "--runtime-mode" in Path(f"/proc/{master}/cmdline").read_bytes().decode(errors="replace")
        port = int(base.rsplit(":", 1)[1])
        connections, decisions, discovered = [], [], []
        try:
            for _ in range(6):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                connections.append(conn)
                for body in asks:
                    conn.request("POST", f"/authzen/{slug}/access/v1/evaluation", body=body,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
                    response = conn.getresponse()
                    decisions.append((response.status, json.loads(response.read())["decision"]))
                conn.request("GET", f"/.well-known/authzen-configuration/authzen/{slug}")
                response = conn.getresponse()
                discovered.append((response.status, json.loads(response.read())["policy_decision_point"]))
        finally:
            for conn in connections:
                conn.close()
        assert os.path.exists(f"/proc/{worker}")  # the same worker answered everything
    assert decisions == [(200, True), (200, False)] * 6  # a clerk may get orders, not delete them
    assert discovered == [(200, f"{base}/authzen/{slug}")] * 6
