"""Fault tolerance: what the API answers while PostgreSQL stops and comes back, under concurrent load.

    python scripts/fault_tolerance.py

Everything lives in a temporary directory, removed at the end: a private PostgreSQL (pgserver), a fresh
database, `manage.py migrate`, and gunicorn started as in production. Writer and reader threads call the
API without pause while PostgreSQL is stopped (pg_ctl stop -m fast), kept down a few seconds and started
again. Then the script prints its figures and checks:

  healthy     before the outage, every request succeeds
  answers     every request gets an answer: JSON, and no 5xx but 503 (no hang, no HTML 500)
  outage      while the database is down: 503 JSON with Retry-After, each within 5 s
  recovery    every kind of request succeeds again within 2 s of the database's return
  durability  every write acknowledged with 201 is in the database; none that was refused is

Exit status: 0 when every check passes, 1 when one fails.
"""

import contextlib
import http.client
import itertools
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent
DATABASE = "healthcare"

WRITERS = 4  # POST /api/patients/
LISTERS = 2  # GET /api/patients/
HEALTH_CHECKERS = 2  # GET /api/health/
WEB_CONCURRENCY = 2
HEALTHY_SECONDS = 2.0
OUTAGE_SECONDS = 4.0
RECOVERY_SECONDS = 3.0

OUTAGE_ANSWER_LIMIT = 5.0  # seconds for any answer while the database is down
RECOVERY_LIMIT = 2.0  # seconds from the database's return until everything succeeds again
# Far above both limits, so that a hanging request shows up as a slow answer or a failure, never as nothing.
CLIENT_TIMEOUT = 15.0

MARKER_PREFIX = "fault-"  # every write's lastname: fault-<writer>-<sequence>
PATHS = {"write": "/api/patients/", "list": "/api/patients/", "health": "/api/health/"}
KINDS = list(PATHS)


def say(message: str) -> None:
    print(f"[fault] {message}", flush=True)


def interrupt(_signum, _frame):
    raise KeyboardInterrupt


# ------------------------------------------------------------------------------------------ database


class Postgres:
    """The script's own PostgreSQL: pgserver creates and first starts it; pg_ctl stops and restarts it."""

    def __init__(self, workdir: Path):
        # pgserver keeps a lock file in the user's runtime directory, which a bare shell may not define.
        if "XDG_RUNTIME_DIR" not in os.environ:
            runtime_dir = workdir / "run"
            runtime_dir.mkdir(mode=0o700)
            os.environ["XDG_RUNTIME_DIR"] = str(runtime_dir)
        import pgserver

        self.pg_ctl = pgserver.pg_ctl
        self.pgdata = workdir / "pg"
        # "delete": cleanup() removes the data directory; we stop the server ourselves first (see close()),
        # because pgserver only knows the process it started, not the one restarted by start().
        self.server = pgserver.get_server(self.pgdata, cleanup_mode="delete")
        self.socket_dir = self.server.get_postmaster_info().socket_dir
        self.running = True

    def connection_params(self, dbname: str = DATABASE) -> dict:
        return {"host": str(self.socket_dir), "user": "postgres", "dbname": dbname, "connect_timeout": 5}

    def url(self) -> str:
        return f"postgres://postgres@{quote(str(self.socket_dir), safe='')}/{DATABASE}"

    def create_database(self) -> None:
        import psycopg

        with psycopg.connect(autocommit=True, **self.connection_params("postgres")) as connection:
            connection.execute(f"CREATE DATABASE {DATABASE}")

    def run_pg_ctl(self, *args: str) -> None:
        # As the user pgserver runs the server as (it refuses root); None when we are not root.
        self.pg_ctl(list(args), pgdata=self.pgdata, user=self.server.system_user, timeout=60)

    def stop(self) -> None:
        """Fast shutdown: open transactions are rolled back and clients disconnected, as in a failover."""
        self.running = False
        self.run_pg_ctl("-w", "-m", "fast", "stop")

    def start(self) -> None:
        """Start with pgserver's options, so the socket (and DATABASE_URL) is the same as before."""
        self.run_pg_ctl(
            "-w",
            *("-o", '-h ""', "-o", f"-k {shlex.quote(str(self.socket_dir))}"),
            *("-l", str(self.pgdata / "log")),
            "start",
        )
        self.running = True

    def close(self) -> None:
        if self.running:
            self.stop()
        # pgserver stops the process it started unless that has exited; pg_ctl returns a moment before it has.
        self.server.get_postmaster_info().process.wait(10)
        self.server.cleanup()


# ------------------------------------------------------------------------------------------ requests


@dataclass
class Call:
    """One request and what came back; `status` is None when nothing did (timeout, connection error)."""

    kind: str
    start: float
    end: float
    status: int | None = None
    content_type: str = ""
    retry_after: str | None = None
    body: object = None
    error: str = ""
    marker: str = ""

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def is_json(self) -> bool:
        return self.content_type.startswith("application/json") and self.body is not None

    @property
    def is_unavailable(self) -> bool:
        """The answer the API promises while the database is down."""
        return self.status == 503 and self.is_json and self.retry_after is not None

    def describe(self, origin: float) -> str:
        outcome = self.error or f"{self.status} {self.content_type or 'no content type'}"
        return f"{self.kind} at {self.start - origin:.2f} s took {self.seconds:.2f} s: {outcome}"


@dataclass
class Client:
    port: int
    token: str = ""

    def send(self, kind: str, method: str, path: str, body: dict | None = None, marker: str = "") -> Call:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=CLIENT_TIMEOUT)
        call = Call(kind, start=time.monotonic(), end=0.0, marker=marker)
        try:
            connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            response = connection.getresponse()
            raw = response.read()
            call.status = response.status
            call.content_type = response.getheader("Content-Type", "")
            call.retry_after = response.getheader("Retry-After")
            try:
                call.body = json.loads(raw)
            except ValueError:
                call.body = None
        except (OSError, http.client.HTTPException) as error:
            call.error = f"{type(error).__name__}: {error}"
        finally:
            call.end = time.monotonic()
            connection.close()
        return call

    def send_or_fail(self, method: str, path: str, body: dict, expected: int) -> dict:
        call = self.send("setup", method, path, body)
        if call.status != expected:
            raise RuntimeError(f"{method} {path}: expected {expected}, got {call.status} {call.error} {call.body}")
        return call.body


def keep_calling(client: Client, kind: str, number: int, calls: list[Call], stop: threading.Event) -> None:
    """Send one kind of request back to back until told to stop; writes carry a unique marker."""
    for sequence in itertools.count():
        if stop.is_set():
            return
        if kind == "write":
            marker = f"{MARKER_PREFIX}{number}-{sequence}"
            patient = {"firstname": "Fault", "lastname": marker, "age": 40, "gender": "O"}
            calls.append(client.send(kind, "POST", PATHS[kind], patient, marker=marker))
        else:
            calls.append(client.send(kind, "GET", PATHS[kind]))


@dataclass
class Timeline:
    """Monotonic clock readings around the outage."""

    begin: float  # load starts
    stop_sent: float  # pg_ctl stop called
    down: float  # pg_ctl stop returned: nothing accepts connections
    start_sent: float  # pg_ctl start called
    up: float  # pg_ctl start -w returned: accepting connections again
    end: float  # load stops


def run_load(client: Client, postgres: Postgres) -> tuple[list[Call], Timeline]:
    calls: list[Call] = []
    stop = threading.Event()
    workers = [("write", n) for n in range(WRITERS)]
    workers += [("list", n) for n in range(LISTERS)] + [("health", n) for n in range(HEALTH_CHECKERS)]
    threads = [
        threading.Thread(target=keep_calling, args=(client, kind, n, calls, stop), daemon=True) for kind, n in workers
    ]
    begin = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        time.sleep(HEALTHY_SECONDS)
        say("stopping PostgreSQL (pg_ctl stop -m fast) ...")
        stop_sent = time.monotonic()
        postgres.stop()
        down = time.monotonic()
        time.sleep(OUTAGE_SECONDS)
        say("starting PostgreSQL again (pg_ctl start -w) ...")
        start_sent = time.monotonic()
        postgres.start()
        up = time.monotonic()
        time.sleep(RECOVERY_SECONDS)
    finally:
        stop.set()
        for thread in threads:
            thread.join(CLIENT_TIMEOUT + 1)
    return calls, Timeline(begin, stop_sent, down, start_sent, up, time.monotonic())


# -------------------------------------------------------------------------------------------- checks


@dataclass
class Check:
    name: str
    passed: bool
    figures: list[str] = field(default_factory=list)


def phase(call: Call, timeline: Timeline) -> str:
    if call.end <= timeline.stop_sent:
        return "healthy"
    if call.start < timeline.up:
        return "outage"  # in flight while PostgreSQL stopped, was down or was starting
    return "recovery"


def examples(calls: list[Call], timeline: Timeline, limit: int = 5) -> list[str]:
    return [f"  e.g. {call.describe(timeline.begin)}" for call in calls[:limit]]


def status_counts(calls: list[Call]) -> str:
    counts = Counter("no answer" if call.status is None else str(call.status) for call in calls)
    return ", ".join(f"{status} x {count}" for status, count in sorted(counts.items())) or "none"


def check_healthy(calls: list[Call], timeline: Timeline) -> Check:
    healthy = [call for call in calls if phase(call, timeline) == "healthy"]
    failed = [call for call in healthy if not call.succeeded]
    missing = [kind for kind in KINDS if not any(call.kind == kind for call in healthy)]
    figures = [f"{len(healthy)} requests before the outage: {status_counts(healthy)}"]
    if missing:
        figures.append(f"no successful request of kind {', '.join(missing)}")
    return Check("healthy", not failed and not missing, figures + examples(failed, timeline))


def check_answers(calls: list[Call], timeline: Timeline) -> Check:
    unanswered = [call for call in calls if call.status is None]
    not_json = [call for call in calls if call.status is not None and not call.is_json]
    server_errors = [call for call in calls if call.status is not None and call.status >= 500 and call.status != 503]
    figures = [
        f"{len(calls)} requests: {len(unanswered)} without an answer, {len(not_json)} not JSON, "
        f"{len(server_errors)} 5xx other than 503",
        f"slowest answer overall: {max(call.seconds for call in calls):.3f} s",
    ]
    bad = unanswered + not_json + server_errors
    return Check("answers", not bad, figures + examples(bad, timeline))


def check_outage(calls: list[Call], timeline: Timeline) -> Check:
    """Requests in flight from `pg_ctl stop` until `pg_ctl start` returned: 503 JSON, fast.

    One answered before the database went away, or after it came back, may be a success; one that started
    and ended while nothing was listening may not.
    """
    during = [call for call in calls if phase(call, timeline) == "outage"]

    def acceptable(call: Call) -> bool:
        if call.succeeded:
            return not (call.start >= timeline.down and call.end <= timeline.start_sent)
        return call.is_unavailable

    wrong = [call for call in during if not acceptable(call)]
    slow = [call for call in during if call.seconds >= OUTAGE_ANSWER_LIMIT]
    refused = [call for call in during if call.is_unavailable]
    while_down = [call for call in during if call.start >= timeline.down and call.end <= timeline.start_sent]
    seconds = [call.seconds for call in during] or [0.0]
    figures = [
        f"PostgreSQL: stopping took {timeline.down - timeline.stop_sent:.2f} s, down "
        f"{timeline.start_sent - timeline.down:.2f} s, starting took {timeline.up - timeline.start_sent:.2f} s",
        f"{len(during)} requests in flight from pg_ctl stop to pg_ctl start returning: {status_counts(during)}",
        f"of which {len(while_down)} started and ended while it was down: {status_counts(while_down)}",
        f"answer time: p50 {statistics.median(seconds) * 1000:.0f} ms, max {max(seconds) * 1000:.0f} ms "
        f"(limit {OUTAGE_ANSWER_LIMIT:.0f} s)",
        f"Retry-After on the 503s: {', '.join(sorted({call.retry_after for call in refused})) or 'none'}",
    ]
    if not refused:
        figures.append("no request was refused with a 503: the outage was not observed")
    passed = bool(refused) and not wrong and not slow
    return Check("outage", passed, figures + examples(wrong + slow, timeline))


def check_recovery(calls: list[Call], timeline: Timeline) -> Check:
    """Seconds from `pg_ctl start -w` returning to the first success of each kind, and to the last failure.

    pg_ctl notices that the server is ready by polling (every 0.1 s), so the API may succeed a little before
    it returns: those figures are negative.
    """
    after_stop = [call for call in calls if call.start >= timeline.down]
    first_success = {}
    for kind in KINDS:
        successes = [call.end for call in after_stop if call.kind == kind and call.succeeded]
        first_success[kind] = min(successes) - timeline.up if successes else None
    failures = [call for call in after_stop if not call.succeeded]
    last_failure = f"{max(call.end for call in failures) - timeline.up:+.3f} s" if failures else "none"
    late = [call for call in failures if call.end > timeline.up + RECOVERY_LIMIT]
    never = [kind for kind, seconds in first_success.items() if seconds is None]
    slow = [kind for kind, seconds in first_success.items() if seconds is not None and seconds > RECOVERY_LIMIT]
    firsts = ", ".join(
        f"{kind} {'never' if seconds is None else f'{seconds:+.3f} s'}" for kind, seconds in first_success.items()
    )
    figures = [
        "from pg_ctl start -w returning (the database accepting connections again):",
        f"first success: {firsts} (limit {RECOVERY_LIMIT:.0f} s)",
        f"last failure: {last_failure}; every request succeeds after it (limit {RECOVERY_LIMIT:.0f} s)",
    ]
    passed = not (never or slow or late)
    return Check("recovery", passed, figures + examples(late, timeline))


def check_durability(calls: list[Call], postgres: Postgres) -> Check:
    """Compare what each write was answered with to what the database holds."""
    import psycopg

    writes = [call for call in calls if call.kind == "write"]
    acked = {call.marker: call.body.get("id") for call in writes if call.status == 201}
    refused = {call.marker for call in writes if call.status is not None and call.status != 201}
    unanswered = {call.marker for call in writes if call.status is None}
    with psycopg.connect(**postgres.connection_params()) as connection:
        rows = connection.execute(
            "SELECT lastname, id FROM hospital_patient WHERE lastname LIKE %s", [MARKER_PREFIX + "%"]
        ).fetchall()
    stored = dict(rows)
    lost = [marker for marker in acked if marker not in stored]
    wrong_id = [marker for marker, pk in acked.items() if marker in stored and stored[marker] != pk]
    refused_but_stored = [marker for marker in refused if marker in stored]
    duplicates = len(rows) - len(stored)
    figures = [
        f"{len(writes)} writes: {len(acked)} acknowledged (201), {len(refused)} refused, "
        f"{len(unanswered)} without an answer",
        f"in the database: {len(stored)} ({len(lost)} acknowledged but missing, "
        f"{len(refused_but_stored)} refused but stored, {len(wrong_id)} with another id, {duplicates} duplicated)",
    ]
    if unanswered:
        stored_unanswered = sum(marker in stored for marker in unanswered)
        figures.append(f"of the writes without an answer, {stored_unanswered} were stored: the client cannot know")
    passed = not (lost or wrong_id or refused_but_stored or unanswered or duplicates)
    return Check("durability", passed, figures)


def print_table(calls: list[Call], timeline: Timeline) -> None:
    print(f"\n{'phase':<9} {'kind':<7} {'requests':>8} {'2xx':>6} {'503':>6} {'other':>6} {'p50 ms':>7} {'max ms':>7}")
    for name in ("healthy", "outage", "recovery"):
        for kind in KINDS:
            group = [call for call in calls if call.kind == kind and phase(call, timeline) == name]
            if not group:
                continue
            ok = sum(call.succeeded for call in group)
            unavailable = sum(call.status == 503 for call in group)
            seconds = [call.seconds * 1000 for call in group]
            print(
                f"{name:<9} {kind:<7} {len(group):>8} {ok:>6} {unavailable:>6} {len(group) - ok - unavailable:>6} "
                f"{statistics.median(seconds):>7.0f} {max(seconds):>7.0f}"
            )
    print()


# ------------------------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_environment(postgres: Postgres, workdir: Path, port: int) -> dict[str, str]:
    """Production settings, as a deployment would set them; only the database and paths are ours."""
    return {
        **os.environ,
        "DATABASE_URL": postgres.url(),
        "SECRET_KEY": secrets.token_urlsafe(48),  # 64 characters
        "DEBUG": "false",
        "DATA_DIR": str(workdir),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": str(WEB_CONCURRENCY),
    }


def start_gunicorn(env: dict[str, str], log: Path) -> subprocess.Popen:
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    with log.open("w") as output:
        # Its own session: Ctrl-C reaches only this script, which then stops gunicorn before PostgreSQL.
        return subprocess.Popen(
            [gunicorn, "-c", "gunicorn.conf.py", "healthcare.wsgi"],
            cwd=BASE_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_until_serving(client: Client, gunicorn: subprocess.Popen, log: Path, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while gunicorn.poll() is None and time.monotonic() < deadline:
        if client.send("setup", "GET", PATHS["health"]).succeeded:
            return
        time.sleep(0.2)
    print_server_log(log)
    raise RuntimeError(f"gunicorn did not serve within {seconds:.0f} s (exit status {gunicorn.poll()})")


def stop_gunicorn(gunicorn: subprocess.Popen) -> None:
    if gunicorn.poll() is None:
        gunicorn.terminate()
        try:
            gunicorn.wait(15)
        except subprocess.TimeoutExpired:
            gunicorn.kill()
            gunicorn.wait()


ACCESS_LINE = re.compile(r'^\S+ "[A-Z]+ /')


def print_server_log(log: Path, limit: int = 60) -> None:
    """gunicorn's output without its access log: start-up errors, tracebacks, worker timeouts."""
    if not log.exists():
        return
    lines = [line for line in log.read_text(errors="replace").splitlines() if not ACCESS_LINE.match(line)]
    print(f"--- gunicorn log, access lines left out (last {limit} lines) ---")
    print("\n".join(lines[-limit:]))
    print("---")


# ---------------------------------------------------------------------------------------------- main


def sign_in(client: Client) -> str:
    password = secrets.token_urlsafe(18)
    account = {"username": "fault", "email": "fault@example.com", "password": password}
    client.send_or_fail("POST", "/api/auth/register/", account, 201)
    return client.send_or_fail("POST", "/api/auth/login/", {"username": "fault", "password": password}, 200)["access"]


def run(cleanup: contextlib.ExitStack) -> bool:
    """Set everything up (each piece torn down by `cleanup`), run the load, print the figures."""
    workdir = Path(tempfile.mkdtemp(prefix="fault-tolerance-"))
    cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
    say(f"starting a private PostgreSQL in {workdir} ...")
    postgres = Postgres(workdir)
    cleanup.callback(postgres.close)
    postgres.create_database()

    port = free_port()
    env = app_environment(postgres, workdir, port)
    say("migrating a fresh database ...")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"], cwd=BASE_DIR, env=env, check=True
    )
    say(f"starting gunicorn on 127.0.0.1:{port} with {WEB_CONCURRENCY} workers ...")
    log = workdir / "gunicorn.log"
    gunicorn = start_gunicorn(env, log)
    cleanup.callback(stop_gunicorn, gunicorn)
    client = Client(port)
    wait_until_serving(client, gunicorn, log)
    client.token = sign_in(client)

    say(
        f"load: {WRITERS} writers, {LISTERS} listers, {HEALTH_CHECKERS} health checkers; "
        f"healthy {HEALTHY_SECONDS:.0f} s, outage {OUTAGE_SECONDS:.0f} s, recovery {RECOVERY_SECONDS:.0f} s"
    )
    calls, timeline = run_load(client, postgres)
    checks = [
        check_healthy(calls, timeline),
        check_answers(calls, timeline),
        check_outage(calls, timeline),
        check_recovery(calls, timeline),
        check_durability(calls, postgres),
    ]
    print_table(calls, timeline)
    for check in checks:
        print(f"{'PASS' if check.passed else 'FAIL'}  {check.name}")
        for line in check.figures:
            print(f"      {line}")
    passed = all(check.passed for check in checks)
    print(f"\n{'PASS' if passed else 'FAIL'}: {sum(c.passed for c in checks)} of {len(checks)} checks passed")
    if not passed:
        print_server_log(log)
    return passed


def main() -> int:
    signal.signal(signal.SIGTERM, interrupt)
    started = time.monotonic()
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(lambda: say(f"stopped and removed everything; {time.monotonic() - started:.1f} s in all"))
        try:
            return 0 if run(cleanup) else 1
        except KeyboardInterrupt:
            say("interrupted; cleaning up ...")
            return 130
        except (RuntimeError, subprocess.CalledProcessError) as error:
            say(f"failed: {error}")
            return 1


if __name__ == "__main__":
    sys.exit(main())
