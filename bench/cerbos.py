"""Our decision endpoints against the Cerbos PDP over HTTP: ``.venv/bin/python bench/cerbos.py``
(``QUICK=1`` for a short run; ``make bench`` installs what it needs).

One ACL, two policy decision points on the same machine:

- ours: a dedicated instance ``bench-pdp`` with ``USERS`` customers, ``RESOURCES`` named resources and
  ``GRANTS`` random direct ``get`` policies each, served by the PDP listener (``saaskit.server.pdp_command``:
  granian, as many workers as cores of one WSGI thread each, keep-alive, ``saaskit.wsgi``'s fast path for the
  decision endpoints, as ``manage.py dev`` and the README run it for policy enforcement points); asked
  through ``GET /api/v1/authz/authorized`` with an instance admin's access token and the AuthZEN
  ``POST /authzen/bench-pdp/access/v1/evaluation`` with a service client's key, as a PEP would call it (the
  real authentication, no shortcut);
- Cerbos (its Linux binary from npm, ``@cerbos/cerbos-linux-x64``): one principal policy per subject,
  generated from the very rows of our policy table (``request.resource.id in [...]`` for ``get`` on
  ``resources``); asked through ``POST /api/check/resources`` and its AuthZEN ``POST /access/v1/
  evaluation`` (both on its HTTP port; audit log and payload logging off).

Before any timing the bench asks all four endpoints the same sample of questions (half granted) and stops
unless every answer agrees with the ACL. The load generator is ``wrk`` (Debian), keep-alive, one thread,
rotating through the same questions on every endpoint, at rising connection counts, in interleaved rounds
(median and spread). Then an open-loop run at half of our AuthZEN peak rate (requests on a fixed schedule
from 32 warmed keep-alive connections driven by an epoll loop in each of two load processes; latency counts
from the scheduled time, so a queue cannot hide) gives the p50/p99 that the goal speaks of, for both servers
at the same rate, in interleaved rounds (ours five, Cerbos, already past its own peak there, one; the median p99
is the figure, every round's is printed), with the CPU
the server and the load processes took meanwhile (on 2 cores they share the machine: a server that needs most
of it at that rate queues). For comparison, the same AuthZEN requests at the same rate go to the general web
server (4 threads per worker) too. Results go to ``.saaskit/bench/cerbos.json``; goals are reported, not
asserted.
"""

from __future__ import annotations

import gc
import heapq
import http.client
import importlib.metadata
import json
import multiprocessing
import os
import random
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saaskit.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from bench.lib import results
from bench.lib.cpu import process_tree_seconds as cpu_seconds  # granian and its workers
from saaskit.server import PDP_THREADS, granian_command, pdp_command, server_stop

SLUG = "bench-pdp"
EMAIL_DOMAIN = "bench-pdp.invalid"
USERS = 200
RESOURCES = 2_000
GRANTS = 25  # per user: 5,000 policies
SAMPLE = 200  # questions, half granted
CERBOS_BIN = BASE_DIR / ".saaskit/npm/node_modules/@cerbos/cerbos-linux-x64/cerbos-linux-x64"
CONNECTIONS = results.pick([1, 16], [1, 4, 16, 64])
DURATION = results.pick(2, 4)
ROUNDS = results.pick(2, 3)
OPEN_LOOP_SECONDS = results.pick(3, 10)
OPEN_LOOP_ROUNDS = results.pick(1, 5)  # per endpoint of ours, interleaved; the median p99 is the figure
# Cerbos is past its own peak at half of ours: one round shows that (a queue of seconds) as well as five would
CERBOS_OPEN_LOOP_ROUNDS = 1
OPEN_LOOP_CONNECTIONS = 32
OPEN_LOOP_PROCESSES = 2
WARM_EXCHANGES = 5  # per open-loop connection before its schedule starts
_EARLY = 0.0005  # an open-loop request may go out this much before its time (epoll waits in whole ms)
ENDPOINTS = ("ours /authorized", "ours AuthZEN", "Cerbos /api/check/resources", "Cerbos AuthZEN")
RNG = random.Random(20261201)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the ACL ---------------------------------------------------------------------------------------
def cleanup() -> None:
    from accounts.models import Instance, User

    Instance.objects.filter(slug=SLUG).delete()
    User.objects.filter(email__endswith=f"@{EMAIL_DOMAIN}").delete()


def setup() -> tuple[object, int, list[tuple[int, int, str, bool]]]:
    """The instance, its admin's id and a sample of questions ``(user, resource id, name, expected)``."""
    from accounts.models import Instance, Profile, User
    from authz import services

    instance = Instance.objects.create(slug=SLUG, name="PDP bench")
    admin = User.objects.create_user(f"admin@{EMAIL_DOMAIN}", None)
    Profile.objects.create(user=admin, instance=instance, role="instance_admin")
    users = [User.objects.create_user(f"u{i}@{EMAIL_DOMAIN}", None) for i in range(USERS)]
    Profile.objects.bulk_create([Profile(user=u, instance=instance, role="customer") for u in users])
    resources = [services.resource_create(instance=instance, name=f"doc-{i}") for i in range(RESOURCES)]
    grants = {(u.pk, r.pk) for u in users for r in RNG.sample(resources, GRANTS)}
    specs = [f"{u}:get:resources:{r}" for u, r in sorted(grants)]
    for i in range(0, len(specs), 1000):  # the service's limit per call
        services.policies_upsert(instance=instance, policies=specs[i:i + 1000])
    names = {r.pk: r.name for r in resources}
    granted = RNG.sample(sorted(grants), SAMPLE // 2)
    denied: list[tuple[int, int]] = []
    while len(denied) < SAMPLE - len(granted):
        pair = (RNG.choice(users).pk, RNG.choice(resources).pk)
        if pair not in grants:
            denied.append(pair)
    sample = [(u, r, names[r], True) for u, r in granted] + [(u, r, names[r], False) for u, r in denied]
    RNG.shuffle(sample)
    return instance, admin.pk, sample


def cerbos_policies(instance_id: int, directory: Path) -> int:
    """One Cerbos principal policy per subject, from the rows of our policy table; returns the rule count."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT user_id, resource_id FROM authz_policy WHERE instance_id = %s AND "
                       "resource_type = 'resources' AND action = 'get' ORDER BY user_id, resource_id", [instance_id])
        rows = cursor.fetchall()
    by_user: dict[int, list[str]] = {}
    for user_id, resource_id in rows:
        by_user.setdefault(user_id, []).append(resource_id)
    for user_id, ids in by_user.items():
        (directory / f"principal_{user_id}.yaml").write_text(
            "apiVersion: api.cerbos.dev/v1\n"
            "principalPolicy:\n"
            f'  principal: "{user_id}"\n'
            "  version: default\n"
            "  rules:\n"
            "    - resource: resources\n"
            "      actions:\n"
            "        - action: get\n"
            "          effect: EFFECT_ALLOW\n"
            "          condition:\n"
            "            match:\n"
            f"              expr: request.resource.id in {json.dumps(ids)}\n")
    return len(rows)


# --- the four requests -----------------------------------------------------------------------------
def requests_for(endpoint: str, user: int, resource: int, name: str, token: str) -> tuple[str, str, dict, str]:
    """(method, path, headers, body) of one question on one endpoint; ``token`` is "<access token> <service
    key>": ``/authorized`` takes the admin's access token, our AuthZEN endpoint the service key (a PEP
    authenticates as a service)."""
    token, key = token.split(" ")
    authzen = json.dumps({"subject": {"type": "user", "id": str(user)}, "action": {"name": "get"},
                          "resource": {"type": "resources", "id": str(resource)}})
    json_headers = {"Content-Type": "application/json"}
    if endpoint == "ours /authorized":
        return ("GET", f"/api/v1/authz/authorized?userId={user}&resourceName={name}",
                {"Authorization": f"Bearer {token}"}, "")
    if endpoint == "ours AuthZEN":
        return ("POST", f"/authzen/{SLUG}/access/v1/evaluation",
                {**json_headers, "Authorization": f"Bearer {key}"}, authzen)
    if endpoint == "Cerbos AuthZEN":
        return "POST", "/access/v1/evaluation", json_headers, authzen
    body = json.dumps({"requestId": "bench", "principal": {"id": str(user), "roles": ["user"]},
                       "resources": [{"actions": ["get"], "resource": {"kind": "resources", "id": str(resource)}}]})
    return "POST", "/api/check/resources", json_headers, body


def decision(endpoint: str, status: int, body: bytes) -> bool:
    if endpoint == "ours /authorized":
        if status not in (200, 403):
            raise RuntimeError(f"/authorized answered {status}: {body[:200]!r}")
        return json.loads(body)["authorized"]
    if status != 200:
        raise RuntimeError(f"{endpoint} answered {status}: {body[:200]!r}")
    data = json.loads(body)
    if endpoint == "Cerbos /api/check/resources":
        return data["results"][0]["actions"]["get"] == "EFFECT_ALLOW"
    return data["decision"]


def ask(port: int, endpoint: str, question: tuple[int, int, str, bool], token: str) -> bool:
    return decision(endpoint, *ask_raw(port, *requests_for(endpoint, question[0], question[1], question[2], token)))


def ask_raw(port: int, method: str, path: str, headers: dict, body: str) -> tuple[int, bytes]:
    """One request on a connection of its own: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body.encode() or None, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# --- servers ---------------------------------------------------------------------------------------
def wait_http(url: str, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.2)


WORKERS = os.cpu_count() or 2  # granian processes: as many as cores
THREADS = 4  # WSGI threads per worker of the general web server
SERVER = (f"granian {importlib.metadata.version('granian')}, the PDP listener (`saaskit.server.pdp_command`): "
          f"{WORKERS} workers of {PDP_THREADS} thread, single-threaded runtime")
WEB_SERVER = f"the general web server ({WORKERS} workers of {THREADS} threads)"


def start_ours(port: int, log: Path, *, pdp: bool = True) -> subprocess.Popen:
    """granian with as many workers as cores (``saaskit.server``, as ``manage.py dev`` and the README run it):
    the PDP listener, or with ``pdp=False`` the general web server; connections are kept alive, as Cerbos
    keeps them; its log (a line per 403) goes to a file."""
    env = {**os.environ, "SAASKIT_ENV": "development", "DEBUG": "false", "LOG_LEVEL": "WARNING"}
    command = (pdp_command(port=port, workers=WORKERS) if pdp
               else granian_command(port=port, workers=WORKERS, threads=THREADS))
    proc = subprocess.Popen(command, cwd=BASE_DIR, env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    wait_http(f"http://127.0.0.1:{port}/.well-known/authzen-configuration/authzen/{SLUG}", proc, "granian")
    return proc


def start_cerbos(port: int, policies: Path, log: Path) -> subprocess.Popen:
    if not os.access(CERBOS_BIN, os.X_OK):
        CERBOS_BIN.chmod(0o755)
    proc = subprocess.Popen([str(CERBOS_BIN), "server", f"--set=server.httpListenAddr=127.0.0.1:{port}",
                             f"--set=server.grpcListenAddr=127.0.0.1:{free_port()}",
                             "--set=storage.driver=disk", f"--set=storage.disk.directory={policies}",
                             "--set=audit.enabled=false", "--set=server.logRequestPayloads=false",
                             "--log-level=error"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    wait_http(f"http://127.0.0.1:{port}/_cerbos/health", proc, "cerbos")
    return proc


def cerbos_version() -> str:
    out = subprocess.run([str(CERBOS_BIN), "--version"], capture_output=True, text=True, check=False).stdout
    return out.split()[0] if out else "?"


# --- load generation -------------------------------------------------------------------------------
LUA = """
local requests = {}
local i = 0
function init(args)
  local path = args[1]
  for line in io.lines(path) do
    local item = load("return " .. line)()
    table.insert(requests, wrk.format(item[1], item[2], item[3], item[4] ~= "" and item[4] or nil))
  end
end
function request()
  i = i % #requests + 1
  return requests[i]
end
"""


def lua_literal(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{lua_literal(k)}] = {lua_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    return json.dumps(str(value))  # a JSON string literal is a valid Lua string literal for this ASCII data


def write_request_file(path: Path, endpoint: str, sample: list, token: str) -> None:
    write_requests(path, [requests_for(endpoint, u, r, name, token) for u, r, name, _ in sample])


def write_requests(path: Path, requests: list[tuple[str, str, dict, str]]) -> None:
    """The file ``LUA`` reads: one (method, path, headers, body) a line, as Lua literals."""
    path.write_text("\n".join(lua_literal(r) for r in requests) + "\n")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(port: int, script: Path, requests_file: Path, connections: int, seconds: float,
        server_pid: int) -> dict[str, float]:
    """One wrk run; also the server's CPU time per answered request (independent of the machine's load)."""
    cpu_before = cpu_seconds(server_pid)
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
                          f"http://127.0.0.1:{port}", "--", str(requests_file)],
                         capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(server_pid) - cpu_before
    answered = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    percentiles = {p: float(v) * _UNITS[u] for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$",
                                                                      out, re.M)}
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50_ms": percentiles["50"], "p99_ms": percentiles["99"],
            "cpu_ms_per_request": cpu / max(1, answered) * 1e3, "socket_errors": errors.group(1) if errors else ""}


def raw_request(port: int, method: str, path: str, headers: dict, body: str) -> bytes:
    payload = body.encode()
    head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", *(f"{k}: {v}" for k, v in headers.items())]
    if payload or method == "POST":
        head.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


class _Connection:
    """A keep-alive HTTP/1.1 client over a raw socket: sends prepared bytes and reads one response
    (Content-Length or chunked). Written here because http.client costs ~100 us of client CPU per request,
    which at several thousand requests/s made the load generator, not the server, the thing measured."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buffer += chunk

    def exchange(self, request: bytes) -> None:
        self.sock.sendall(request)
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            self._fill()
        head, self.buffer = self.buffer[:end].lower(), self.buffer[end + 4:]
        match = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
        if match:
            length = int(match.group(1))
            while len(self.buffer) < length:
                self._fill()
            self.buffer = self.buffer[length:]
        else:  # chunked: small answers end with the zero-length chunk
            while (end := self.buffer.find(b"0\r\n\r\n")) < 0:
                self._fill()
            self.buffer = self.buffer[end + 5:]

    def close(self) -> None:
        self.sock.close()


class _Scheduled:
    """One keep-alive connection of the open loop: its fixed schedule and its one request in flight."""

    __slots__ = ("sock", "slot", "sent", "due", "started", "buffer", "need")

    def __init__(self, conn: _Connection, slot: int) -> None:
        self.sock, self.slot, self.sent = conn.sock, slot, 0
        self.sock.setblocking(False)
        self.due = self.started = 0.0
        self.buffer, self.need = b"", -1  # need: the length of the whole response once its head is in, else -1

    def complete(self) -> bool:
        """Whether ``buffer`` holds the whole response (Content-Length, or a chunked body's last chunk)."""
        if self.need < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return False
            match = re.search(rb"\r\ncontent-length:\s*(\d+)", self.buffer[:end].lower())
            self.need = end + 4 + int(match.group(1)) if match else 0
        if self.need:
            return len(self.buffer) >= self.need
        return self.buffer.endswith(b"0\r\n\r\n")


def _open_loop_process(port: int, prepared: list[bytes], rate: float, seconds: float, first_slot: int,
                       count: int, slots: int, barrier, start_at, out) -> None:
    """One load process: ``count`` keep-alive connections, each on its own fixed schedule, driven by one epoll
    loop (a thread per connection cost the generator ~45 us of CPU per request in wake-ups and GIL hand-offs,
    CPU the server under test then lacks). A request goes out when it is due (or up to ``_EARLY`` before, the
    poll's millisecond timeout rounding) and its connection is free; latency counts from the scheduled time, or
    from the send when that was earlier. Every connection is opened and warmed (a few exchanges) before the
    schedule starts, and the schedule starts when every process is ready: a PEP's connections are open and
    warm, and the forks, connects and first requests of the load processes are the generator's start-up, not
    the server's latency. The forked process freezes the heap it inherited and collects no garbage while it
    measures: its first full collection walked the parent's whole Django heap, copying every page it touched,
    and stalled the schedule by up to 200 ms at the start of a run, which then read as server latency."""
    import select

    gc.freeze()
    gc.disable()
    interval = slots / rate  # between two requests of one connection
    per_connection = int(rate / slots * seconds)
    conns = []
    for k in range(count):
        conn = _Connection(port)
        for request in prepared[:WARM_EXCHANGES]:
            conn.exchange(request)
        conns.append(_Scheduled(conn, first_slot + k))
    by_fd = {c.sock.fileno(): c for c in conns}
    poller = select.epoll()
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN)
    barrier.wait()  # every connection of every process is open and warm; the parent sets the start time
    barrier.wait()
    start = start_at.value
    # (due time, slot) of every connection with nothing in flight and requests left to send, soonest first
    idle = [(start + (c.slot / slots) * interval, c.slot) for c in conns]
    heapq.heapify(idle)
    by_slot = {c.slot: c for c in conns}
    latencies: list[float] = []
    in_flight = 0
    while idle or in_flight:
        now = time.monotonic()
        while idle and idle[0][0] - now <= _EARLY:
            due, slot = heapq.heappop(idle)
            c = by_slot[slot]
            c.sock.send(prepared[(c.sent * slots + slot) % len(prepared)])
            c.due, c.started = due, time.monotonic()
            c.sent += 1
            in_flight += 1
        wait = max(0.0, idle[0][0] - now - _EARLY) if idle else -1  # -1: only answers to wait for
        for fd, _ in poller.poll(wait):
            c = by_fd[fd]
            chunk = c.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            c.buffer += chunk
            if c.complete():
                latencies.append(time.monotonic() - min(c.due, c.started))
                if c.buffer[9:12] not in (b"200", b"403"):  # a decision either way; anything else is a failure
                    raise RuntimeError(f"open loop: the server answered {c.buffer[:200]!r}")
                c.buffer, c.need = b"", -1  # one request in flight per connection: nothing follows
                in_flight -= 1
                if c.sent < per_connection:
                    heapq.heappush(idle, (start + (c.sent + c.slot / slots) * interval, c.slot))
    for c in conns:
        c.sock.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.put((latencies, usage.ru_utime + usage.ru_stime))


def open_loop(port: int, endpoint: str, sample: list, token: str, rate: float, seconds: float,
              server_pid: int | None = None) -> dict[str, float]:
    """``rate`` requests/s on a fixed schedule from ``OPEN_LOOP_CONNECTIONS`` keep-alive connections spread over
    ``OPEN_LOOP_PROCESSES`` load processes (raw sockets, prepared requests, so the generator keeps up at
    several thousand requests/s); latency counts from the scheduled send time, so a queue cannot hide. Enough
    connections that each one sends a request every few milliseconds: with few connections each is a serial
    pipeline near saturation, and the generator's own hiccups queue up as if they were the server's."""
    prepared = [raw_request(port, *requests_for(endpoint, u, r, name, token)) for u, r, name, _ in sample]
    return open_loop_requests(port, prepared, rate, seconds, server_pid)


def open_loop_requests(port: int, prepared: list[bytes], rate: float, seconds: float,
                       server_pid: int | None = None) -> dict[str, float]:
    """``open_loop`` for requests already written as bytes (``raw_request``), sent in turn."""
    per_process = OPEN_LOOP_CONNECTIONS // OPEN_LOOP_PROCESSES
    ctx = multiprocessing.get_context("fork")
    barrier, start_at, out = ctx.Barrier(OPEN_LOOP_PROCESSES + 1), ctx.Value("d", 0.0), ctx.Queue()
    procs = [ctx.Process(target=_open_loop_process, args=(port, prepared, rate, seconds, p * per_process,
                                                          per_process, OPEN_LOOP_CONNECTIONS, barrier, start_at, out))
             for p in range(OPEN_LOOP_PROCESSES)]
    for proc in procs:
        proc.start()
    barrier.wait(timeout=60)
    start_at.value = time.monotonic() + 0.2
    barrier.wait(timeout=60)
    server_cpu = cpu_seconds(server_pid) if server_pid else 0.0
    parts = [out.get(timeout=seconds + 120) for _ in procs]
    server_cpu = cpu_seconds(server_pid) - server_cpu if server_pid else 0.0
    elapsed = max(seconds, time.monotonic() - start_at.value)  # an overloaded server answers past the schedule
    latencies = sorted(x for part, _ in parts for x in part)
    for proc in procs:
        proc.join()
    return {"rate": rate, "requests": len(latencies), "p50_ms": statistics.median(latencies) * 1e3,
            "p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1e3,
            # the machine's CPU the run took (cores): the server's, and the load processes' (warm-up included)
            "server_cores": server_cpu / elapsed, "generator_cores": sum(cpu for _, cpu in parts) / elapsed}


OPEN_LOOP_ORDER = ("ours AuthZEN", "Cerbos AuthZEN", "ours /authorized", "Cerbos /api/check/resources")


def open_loop_summary(runs: list[dict[str, float]]) -> dict[str, object]:
    """Several open-loop rounds at one rate as one entry: the median of each figure, and every round's p99
    (a shared machine has bad seconds; the spread shows them, the median is not decided by one)."""
    return {"rate": runs[0]["rate"], "requests": sum(r["requests"] for r in runs),
            **{k: statistics.median(r[k] for r in runs) for k in ("p50_ms", "p99_ms", "server_cores",
                                                                    "generator_cores")},
            "p99_rounds_ms": [r["p99_ms"] for r in runs]}


def main() -> None:
    from accounts.models import Instance
    from accounts.services.tokens import access_token_issue
    from authzen.services import service_client_create

    if shutil.which("wrk") is None or not CERBOS_BIN.exists():
        raise SystemExit("bench/cerbos.py needs wrk and the Cerbos binary: run `make bench-tools` (make bench does)")
    call_command("migrate", verbosity=0)
    cleanup()
    tmp = Path(tempfile.mkdtemp(prefix="bench-cerbos-"))
    procs: list[subprocess.Popen] = []
    started = time.perf_counter()
    try:
        instance, admin_id, sample = setup()
        assert isinstance(instance, Instance)
        # The run outlasts an access token's five minutes: an expired one made every /authorized request a 401
        # written by Django, and the open loop measured that.
        with override_settings(ACCESS_TOKEN_LIFETIME=timedelta(hours=2)):
            access = access_token_issue(user_id=admin_id, instance=instance, role="instance_admin",
                                        profile_role="instance_admin")
        _, _, key = service_client_create(instance=instance, name="bench-pep", role="customer")
        token = f"{access} {key}"
        (tmp / "policies").mkdir()
        rules = cerbos_policies(instance.pk, tmp / "policies")
        ours_port, cerbos_port = free_port(), free_port()
        procs.append(start_ours(ours_port, tmp / "granian.log"))
        procs.append(start_cerbos(cerbos_port, tmp / "policies", tmp / "cerbos.log"))
        port_of = {e: ours_port if e.startswith("ours") else cerbos_port for e in ENDPOINTS}
        pid_of = {e: procs[0].pid if e.startswith("ours") else procs[1].pid for e in ENDPOINTS}

        disagreements = [(e, q) for q in sample for e in ENDPOINTS if ask(port_of[e], e, q, token) != q[3]]
        if disagreements:
            raise SystemExit(f"the decision points disagree with the ACL on {len(disagreements)} answers, e.g. "
                             f"{disagreements[:3]}")
        print(f"PDP bench: {USERS} subjects, {RESOURCES:,} resources, {rules:,} policies; all four endpoints gave "
              f"the ACL's answer to {len(sample)} questions ({sum(q[3] for q in sample)} granted)")

        script = tmp / "rotate.lua"
        script.write_text(LUA)
        files = {}
        for e in ENDPOINTS:
            files[e] = tmp / f"{re.sub(r'[^a-z]+', '-', e.lower())}.txt"
            write_request_file(files[e], e, sample, token)
            wrk(port_of[e], script, files[e], 8, DURATION, pid_of[e])  # warm-up: both workers see every question
        runs: dict[str, dict[int, list[dict]]] = {e: {c: [] for c in CONNECTIONS} for e in ENDPOINTS}
        for _ in range(ROUNDS):
            for c in CONNECTIONS:
                for e in ENDPOINTS:
                    runs[e][c].append(wrk(port_of[e], script, files[e], c, DURATION, pid_of[e]))
        curves: dict[str, list[dict]] = {}
        for e in ENDPOINTS:
            curves[e] = []
            for c in CONNECTIONS:
                rs = runs[e][c]
                curves[e].append({"connections": c, "rps": results.spread([r["rps"] for r in rs]),
                                  "p50_ms": statistics.median(r["p50_ms"] for r in rs),
                                  "p99_ms": statistics.median(r["p99_ms"] for r in rs),
                                  "cpu_ms_per_request": statistics.median(r["cpu_ms_per_request"]
                                                                          for r in rs),
                                  "socket_errors": [r["socket_errors"] for r in rs if r["socket_errors"]]})
        peak = {e: max(p["rps"]["median"] for p in curves[e]) for e in ENDPOINTS}
        # The server's CPU per request at its peak point: what bounds its throughput on an idle machine
        # (cores / CPU per request), whatever else the machine was running during the bench.
        cpu_ms = {e: max(curves[e], key=lambda p: p["rps"]["median"])["cpu_ms_per_request"] for e in ENDPOINTS}
        half = peak["ours AuthZEN"] / 2
        open_runs: dict[str, list[dict]] = {e: [] for e in OPEN_LOOP_ORDER}
        for round_no in range(OPEN_LOOP_ROUNDS):
            for e in OPEN_LOOP_ORDER:
                if e.startswith("Cerbos") and round_no >= CERBOS_OPEN_LOOP_ROUNDS:
                    continue
                open_runs[e].append(open_loop(port_of[e], e, sample, token, half, OPEN_LOOP_SECONDS, pid_of[e]))
        at_half = {e: open_loop_summary(rs) for e, rs in open_runs.items()}
        # For comparison, not for the goal: the same AuthZEN requests at the same rate to the general web server
        web_port = free_port()
        procs.append(start_ours(web_port, tmp / "granian-web.log", pdp=False))
        wrk(web_port, script, files["ours AuthZEN"], 8, DURATION, procs[-1].pid)  # warm-up
        at_half_web = open_loop_summary([open_loop(web_port, "ours AuthZEN", sample, token, half, OPEN_LOOP_SECONDS,
                                                   procs[-1].pid) for _ in range(OPEN_LOOP_ROUNDS)])
    finally:
        if procs:
            server_stop(procs[0])  # ours: granian and its workers
        if len(procs) > 2:
            server_stop(procs[2])  # the general web server
        for proc in procs[1:2]:  # Cerbos
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
        cleanup()

    ratio_authzen = peak["ours AuthZEN"] / peak["Cerbos AuthZEN"]
    ratio_check = peak["ours /authorized"] / peak["Cerbos /api/check/resources"]
    goal_met = ratio_authzen >= 2 and at_half["ours AuthZEN"]["p99_ms"] <= 5
    print(f"wrk -t1, keep-alive, {DURATION}s per point, median of {ROUNDS} interleaved rounds; {SERVER} "
          f"vs Cerbos {cerbos_version()}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for e in ENDPOINTS:
        print(f"  {e}")
        for p in curves[e]:
            print(f"    {p['connections']:>3} connections {p['rps']['median']:>9,.0f} req/s "
                  f"(±{p['rps']['spread_pct']:.0f}%)  p50 {p['p50_ms']:.2f} ms  p99 {p['p99_ms']:.2f} ms  "
                  f"server CPU {p['cpu_ms_per_request']:.3f} ms/request")
    print(f"  peak ratio ours AuthZEN / Cerbos AuthZEN   {ratio_authzen:.2f}x  (goal >= 2x)")
    for e in ENDPOINTS:
        print(f"  server CPU per request, {e:<28} {cpu_ms[e]:.3f} ms  (bound on an idle {os.cpu_count()}-core "
              f"machine: {os.cpu_count() / cpu_ms[e] * 1e3:,.0f} req/s)")
    print(f"  peak ratio ours /authorized / Cerbos check {ratio_check:.2f}x")
    for e, r in [*at_half.items(), (f"ours AuthZEN on {WEB_SERVER}", at_half_web)]:
        rounds = f"median of {len(r['p99_rounds_ms'])} round(s) of {OPEN_LOOP_SECONDS} s"
        print(f"  open loop at {half:,.0f} req/s (half our AuthZEN peak, {rounds}), {e}: p50 {r['p50_ms']:.2f} ms, "
              f"p99 {r['p99_ms']:.2f} ms (rounds: {', '.join(f'{x:.2f}' for x in r['p99_rounds_ms'])}; CPU: "
              f"server {r['server_cores']:.2f} cores, load processes {r['generator_cores']:.2f})")
    print(f"  goal (ours >= 2x Cerbos's throughput, p99 <= 5 ms at half our peak): {'met' if goal_met else 'NOT met'}"
          f"  (bench took {time.perf_counter() - started:.0f}s)")
    results.save("cerbos", {
        "users": USERS, "resources": RESOURCES, "policies": rules, "sample": len(sample), "agreed": True,
        "connections": CONNECTIONS, "duration_seconds": DURATION, "rounds": ROUNDS, "cerbos_version": cerbos_version(),
        "load_generator": "wrk -t1 (keep-alive)", "curves": curves, "peak": peak, "half_rate": half,
        "at_half": at_half, "at_half_web_server": at_half_web, "web_server": WEB_SERVER,
        "open_loop_rounds": OPEN_LOOP_ROUNDS, "cerbos_open_loop_rounds": CERBOS_OPEN_LOOP_ROUNDS,
        "cpu_ms_per_request": cpu_ms, "ratio_authzen": ratio_authzen,
        "ratio_check": ratio_check, "goal_met": goal_met, "server": SERVER,
        "open_loop_connections": OPEN_LOOP_CONNECTIONS, "open_loop_processes": OPEN_LOOP_PROCESSES,
        "open_loop_seconds": OPEN_LOOP_SECONDS,
    })


if __name__ == "__main__":
    main()
