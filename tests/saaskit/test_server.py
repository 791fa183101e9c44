"""granian as ``saaskit.server`` runs it: behind a proxy the client address still comes from ``X-Forwarded-For``
(``TRUSTED_PROXY_COUNT``), and a worker killed mid-service is replaced."""

from __future__ import annotations

import http.client
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
