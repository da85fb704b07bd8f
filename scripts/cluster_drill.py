"""`make drill`: the cluster (scripts/cluster.py) under load, while its parts are restarted, killed and paused.

    python scripts/cluster_drill.py

Starts the same Cluster as `make cluster`, in a temporary directory removed at the end, with production
settings. Background threads call the API through nginx without pause the whole time: readers list patients
(as an account that never writes, so that its reads may go to the replica), writers create patients, each
POST with a unique Idempotency-Key (also the patient's last name, to find its row). Meanwhile, in turn:

  throttle     20 wrong logins for one account, spread over the three instances (directly), then the next
               login is 429 on every instance: the counter is shared
  idempotency  an Idempotency-Key sent to instance 1, then retried on instance 2: the same record, replayed
  revocation   a staff PATCH is_active=false on instance 1: the account's token is refused on instances 2 and
               3 on the very next request
  replica      the replica's pg_stat_database counters for the app's database grow with the readers' load;
               50 create-then-read pairs by one account (through nginx) all see their write
  rolling      each instance in turn: SIGTERM (it drains), wait until it has exited, start it, wait until
               nginx routes to it again; no background request fails meanwhile
  kill         kill -9 of one instance's master and workers: only requests started before the kill may
               fail, none later than 1 s after it; nginx stops routing to it; it is then started again
  redis        Redis paused (SIGSTOP) for 5 s: reads and writes keep succeeding; login answers 503
               {"code": "throttle_unavailable"} with Retry-After; after Redis resumes, logins succeed again
               within a few seconds and the login throttle counts again (20 wrong logins, then 429)
  durability   every create acknowledged (201) is exactly one row in the primary; none is duplicated. A
               create without an answer (the kill) is retried with its key: it then maps to one row too

Each check prints its figures. Exit status: 0 when every check passes, 1 when one fails.
"""

import contextlib
import http.client
import itertools
import json
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cluster as cluster_module
from cluster import Cluster, free_port

BASE_DIR = Path(__file__).resolve().parent.parent
READERS = 2
WRITERS = 2
CLIENT_TIMEOUT = 15.0
WRONG_LOGINS = 20  # the default AUTH_THROTTLE_RATE, 20/min per client address
PAIRS = 50
REDIS_PAUSE_SECONDS = 5.0
KILL_LIMIT_SECONDS = 1.0  # from kill -9 to the last failed request
# From Redis resuming to sending a login that succeeds (a login's own time is its password hash, which a loaded
# machine stretches; it is printed).
LOGIN_RECOVERY_LIMIT_SECONDS = 3.0
MARKER_PREFIX = "drill-"
# Client addresses for requests sent straight to an instance: the instances trust one proxy (NUM_PROXIES=1),
# as they are meant to sit behind nginx, so the drill speaks for nginx and names the client. Each part of the
# drill has its own address, so that one part's throttle counts do not spill into another's.
_addresses = (f"198.51.100.{n}" for n in itertools.count(10))


def say(message: str) -> None:
    print(f"[drill] {message}", flush=True)


def interrupt(_signum, _frame):
    raise KeyboardInterrupt


# ------------------------------------------------------------------------------------------------ requests


@dataclass
class Answer:
    """One request and what came back; `status` is None when nothing did (timeout, connection error)."""

    kind: str
    start: float
    end: float = 0.0
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: object = None
    error: str = ""
    key: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def describe(self, origin: float) -> str:
        outcome = self.error or f"{self.status} {json.dumps(self.body)[:120]}"
        return f"{self.kind} at {self.start - origin:.2f} s took {self.end - self.start:.2f} s: {outcome}"


def call(
    port: int,
    method: str,
    path: str,
    *,
    kind: str = "",
    token: str = "",
    body: dict | None = None,
    headers: dict | None = None,
    client: str = "",
    key: str = "",
) -> Answer:
    """One request on a new connection (as each nginx reload closes idle ones)."""
    sent = {"Accept": "application/json", **(headers or {})}
    if body is not None:
        sent["Content-Type"] = "application/json"
    if token:
        sent["Authorization"] = f"Bearer {token}"
    if client:
        sent["X-Forwarded-For"] = client
    if key:
        sent["Idempotency-Key"] = key
    answer = Answer(kind or f"{method} {path}", start=time.monotonic(), key=key)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
    try:
        connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=sent)
        response = connection.getresponse()
        raw = response.read()
        answer.status = response.status
        answer.headers = {name.lower(): value for name, value in response.getheaders()}
        with contextlib.suppress(ValueError):
            answer.body = json.loads(raw)
    except (OSError, http.client.HTTPException) as error:
        answer.error = f"{type(error).__name__}: {error}"
    finally:
        answer.end = time.monotonic()
        connection.close()
    return answer


def expect(answer: Answer, status: int) -> dict:
    if answer.status != status:
        raise RuntimeError(f"{answer.kind}: expected {status}, got {answer.status} {answer.error} {answer.body}")
    return answer.body


def patient(marker: str) -> dict:
    return {"firstname": "Drill", "lastname": marker, "age": 40, "gender": "O"}


# --------------------------------------------------------------------------------------------- accounts


@dataclass
class Account:
    username: str
    password: str
    token: str = ""
    id: int | None = None


def register(port: int, username: str) -> Account:
    account = Account(username, secrets.token_urlsafe(18))
    body = {"username": username, "email": f"{username}@example.com", "password": account.password}
    expect(call(port, "POST", "/api/auth/register/", body=body, client=next(_addresses)), 201)
    log_in(port, account)
    return account


def log_in(port: int, account: Account, client: str = "") -> None:
    body = {"username": account.username, "password": account.password}
    answer = call(port, "POST", "/api/auth/login/", body=body, client=client or next(_addresses))
    account.token = expect(answer, 200)["access"]
    account.id = expect(call(port, "GET", "/api/auth/me/", token=account.token), 200)["id"]


def create_staff(cluster: Cluster) -> Account:
    account = Account("drill-staff", secrets.token_urlsafe(18))
    env = {**cluster.instances[0].env, "DJANGO_SUPERUSER_PASSWORD": account.password}
    subprocess.run(
        [sys.executable, "manage.py", "superuser", "--username", account.username, "--email", "staff@example.com"],
        cwd=BASE_DIR,
        env=env,
        check=True,
        capture_output=True,
    )
    log_in(cluster.instances[0].port, account)
    return account


# ------------------------------------------------------------------------------------------------ load


class Load:
    """Readers and writers through nginx, from start() to stop(); every answer is kept, with its time."""

    def __init__(self, port: int, reader: Account, writer: Account):
        self.port, self.reader, self.writer = port, reader, writer
        self.answers: list[Answer] = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.read, daemon=True) for _ in range(READERS)]
        self.threads += [threading.Thread(target=self.write, args=(n,), daemon=True) for n in range(WRITERS)]

    def read(self) -> None:
        while not self.stopping.is_set():
            self.answers.append(call(self.port, "GET", "/api/patients/", kind="list", token=self.reader.token))

    def write(self, number: int) -> None:
        for sequence in itertools.count():
            if self.stopping.is_set():
                return
            marker = f"{MARKER_PREFIX}{number}-{sequence}-{secrets.token_hex(4)}"
            answer = call(
                self.port,
                "POST",
                "/api/patients/",
                kind="create",
                token=self.writer.token,
                body=patient(marker),
                key=marker,
            )
            self.answers.append(answer)

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(CLIENT_TIMEOUT + 1)

    def between(self, start: float, end: float) -> list[Answer]:
        """Requests in flight at any moment of [start, end]."""
        return [answer for answer in list(self.answers) if answer.end >= start and answer.start <= end]


def status_counts(answers: list[Answer]) -> str:
    counts = Counter("no answer" if answer.status is None else str(answer.status) for answer in answers)
    return ", ".join(f"{status} x {count}" for status, count in sorted(counts.items())) or "none"


# ----------------------------------------------------------------------------------------------- checks


@dataclass
class Check:
    name: str
    passed: bool
    figures: list[str] = field(default_factory=list)

    def show(self) -> "Check":
        print(f"{'PASS' if self.passed else 'FAIL'}  {self.name}", flush=True)
        for line in self.figures:
            print(f"      {line}", flush=True)
        return self


class Drill:
    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.port = cluster.port
        self.ports = [instance.port for instance in cluster.instances]
        self.origin = time.monotonic()
        self.checks: list[Check] = []

    def examples(self, answers: list[Answer], limit: int = 5) -> list[str]:
        return [f"  e.g. {answer.describe(self.origin)}" for answer in answers[:limit]]

    def record(self, check: Check) -> None:
        self.checks.append(check.show())

    # ---------------------------------------------------------------------------------------- throttle

    def wrong_logins_then_429(self, username: str, client: str) -> tuple[Counter, list[int | None]]:
        """WRONG_LOGINS wrong passwords over the instances in turn, then one more login on each instance."""
        body = {"username": username, "password": "not-the-password"}
        wrong = Counter()
        for n in range(WRONG_LOGINS):
            answer = call(self.ports[n % len(self.ports)], "POST", "/api/auth/login/", body=body, client=client)
            wrong[answer.status] += 1
        after = [call(port, "POST", "/api/auth/login/", body=body, client=client).status for port in self.ports]
        return wrong, after

    def check_throttle(self, account: Account) -> None:
        wrong, after = self.wrong_logins_then_429(account.username, next(_addresses))
        figures = [
            f"{WRONG_LOGINS} wrong logins over {len(self.ports)} instances: "
            + ", ".join(f"{status} x {count}" for status, count in sorted(wrong.items(), key=str)),
            f"then one login on each instance: {after}",
        ]
        passed = set(wrong) <= {400, 401} and after == [429] * len(self.ports)
        self.record(Check("throttle shared", passed, figures))

    # ------------------------------------------------------------------------------------- idempotency

    def check_idempotency(self, account: Account) -> None:
        key = f"{MARKER_PREFIX}replay-{secrets.token_hex(4)}"
        first = call(self.ports[0], "POST", "/api/patients/", token=account.token, body=patient(key), key=key)
        retry = call(self.ports[1], "POST", "/api/patients/", token=account.token, body=patient(key), key=key)
        first_id = (first.body or {}).get("id") if isinstance(first.body, dict) else None
        retry_id = (retry.body or {}).get("id") if isinstance(retry.body, dict) else None
        replayed = retry.headers.get("idempotent-replayed")
        figures = [
            f"instance 1: {first.status}, id {first_id}; the same key on instance 2: {retry.status}, id {retry_id}, "
            f"Idempotent-Replayed: {replayed}"
        ]
        passed = first.status == 201 and retry.status == 201 and first_id == retry_id and replayed == "true"
        self.record(Check("idempotency across instances", passed, figures))

    # -------------------------------------------------------------------------------------- revocation

    def check_revocation(self, staff: Account, victim: Account) -> None:
        # Each instance has seen the account (and may keep it in its workers' caches) before it changes.
        before = [call(port, "GET", "/api/auth/me/", token=victim.token).status for port in self.ports]
        patch = call(self.ports[0], "PATCH", f"/api/users/{victim.id}/", token=staff.token, body={"is_active": False})
        after = [call(port, "GET", "/api/auth/me/", token=victim.token).status for port in self.ports[1:]]
        figures = [
            f"the account's token before, on instances 1-3: {before}",
            f"staff PATCH is_active=false on instance 1: {patch.status}",
            f"the token on the very next request, on instances 2 and 3: {after}",
        ]
        passed = before == [200] * len(self.ports) and patch.status == 200 and after == [401] * len(after)
        self.record(Check("revocation across instances", passed, figures))

    # ----------------------------------------------------------------------------------------- replica

    def replica_counters(self) -> tuple[int, int]:
        with self.cluster.replica.connect("postgres", autocommit=True) as connection:
            row = connection.execute(
                "SELECT xact_commit, tup_returned FROM pg_stat_database WHERE datname = %s", [cluster_module.DATABASE]
            ).fetchone()
        return row[0], row[1]

    def check_replica(self, load: Load, account: Account, since: float, counters_before: tuple[int, int]) -> None:
        pairs = []
        for n in range(PAIRS):
            marker = f"{MARKER_PREFIX}pair-{n}-{secrets.token_hex(4)}"
            created = call(self.port, "POST", "/api/patients/", token=account.token, body=patient(marker), key=marker)
            pk = created.body.get("id") if created.status == 201 and isinstance(created.body, dict) else None
            read = call(self.port, "GET", f"/api/patients/{pk}/", token=account.token)
            pairs.append((created.status, read.status))
        time.sleep(0.5)  # the statistics of the replica's sessions are flushed at most every second
        transactions, rows = (
            after - before for after, before in zip(self.replica_counters(), counters_before, strict=True)
        )
        reads = [a for a in load.between(since, time.monotonic()) if a.kind == "list" and a.succeeded]
        missed = [pair for pair in pairs if pair != (201, 200)]
        figures = [
            f"replica, database {cluster_module.DATABASE!r}: +{transactions} transactions, +{rows} rows returned "
            f"while the readers made {len(reads)} successful lists",
            f"{PAIRS} create-then-read pairs by one account through nginx: {PAIRS - len(missed)} saw their write"
            + (f"; misses (create, read): {Counter(missed)}" if missed else ""),
        ]
        passed = transactions >= len(reads) > 0 and not missed
        self.record(Check("replica reads, own writes seen", passed, figures))

    # ------------------------------------------------------------------------------------ rolling restart

    def check_rolling_restart(self, load: Load) -> None:
        health = self.cluster.health
        every = {instance.number for instance in self.cluster.instances}
        started = time.monotonic()
        timings = []
        for instance in self.cluster.instances:
            t0 = time.monotonic()
            instance.terminate()
            health.wait_routed(every - {instance.number}, timeout=10)
            routed_away = time.monotonic() - t0
            instance.wait_stopped()
            stopped = time.monotonic() - t0
            instance.start()
            instance.wait_ready()
            health.wait_routed(every, timeout=10)
            timings.append((instance.number, routed_away, stopped, time.monotonic() - t0))
        ended = time.monotonic()
        during = load.between(started, ended)
        failed = [answer for answer in during if not answer.succeeded]
        figures = [
            f"instance {n}: out of nginx {away:.2f} s after SIGTERM, exited after {gone:.2f} s, back in nginx "
            f"after {back:.2f} s"
            for n, away, gone, back in timings
        ]
        figures.append(
            f"{ended - started:.1f} s in all; {len(during)} background requests meanwhile: {status_counts(during)}; "
            f"{len(failed)} failed"
        )
        self.record(Check("rolling restart", not failed and bool(during), figures + self.examples(failed)))

    # -------------------------------------------------------------------------------------------- kill

    def check_kill(self, load: Load) -> None:
        health = self.cluster.health
        victim = self.cluster.instances[1]
        every = {instance.number for instance in self.cluster.instances}
        time.sleep(1)
        killed_at = time.monotonic()
        victim.kill()
        # Requests sent before the processes were gone may have reached them (in its accept queue, too).
        dead_at = time.monotonic()
        health.wait_routed(every - {victim.number}, timeout=10)
        out_after = time.monotonic() - killed_at
        time.sleep(2)  # load on the remaining two
        window_end = time.monotonic()
        during = load.between(killed_at, window_end)
        failed = [answer for answer in during if not answer.succeeded]
        late = [answer for answer in failed if answer.start > dead_at]
        last = max((answer.end for answer in failed), default=killed_at) - killed_at
        victim.start()
        victim.wait_ready()
        back = health.wait_routed(every, timeout=10)
        figures = [
            f"kill -9 of instance {victim.number}'s master and workers; nginx stopped routing to it after "
            f"{out_after:.2f} s (health checks every {cluster_module.CHECK_INTERVAL_SECONDS * 1000:.0f} ms)",
            f"{len(during)} background requests in the {window_end - killed_at:.1f} s after: {status_counts(during)}",
            f"{len(failed)} failed, sent {', '.join(f'{a.start - killed_at:+.3f} s' for a in failed) or '-'} from "
            f"the kill (which took {dead_at - killed_at:.3f} s), all in flight at the kill: {not late}; last failure "
            f"ended {last:.2f} s after it (limit {KILL_LIMIT_SECONDS:.0f} s)",
            f"started again: routed to {back:.2f} s after it was ready",
        ]
        passed = not late and last <= KILL_LIMIT_SECONDS
        self.record(Check("kill -9 of an instance", passed, figures + self.examples(failed)))

    # ------------------------------------------------------------------------------------------- redis

    def check_redis(self, load: Load, account: Account) -> None:
        redis = self.cluster.redis
        body = {"username": account.username, "password": account.password}
        time.sleep(1)
        paused_at = time.monotonic()
        redis.pause()
        logins = []
        try:
            time.sleep(1)  # past any request that was waiting for Redis when it stopped
            while time.monotonic() - paused_at < REDIS_PAUSE_SECONDS:
                logins.append(call(self.port, "POST", "/api/auth/login/", kind="login", body=body))
                time.sleep(0.5)
        finally:
            resumed_at = time.monotonic()
            redis.resume()
        back, attempts = None, []
        while time.monotonic() - resumed_at < 30:
            login = call(self.port, "POST", "/api/auth/login/", body=body)
            attempts.append(login)
            if login.status == 200:
                back = login.start - resumed_at
                break
            time.sleep(0.2)
        during = load.between(paused_at, resumed_at)
        failed = [answer for answer in during if not answer.succeeded]
        refused = [
            login
            for login in logins
            if login.status == 503
            and isinstance(login.body, dict)
            and login.body.get("code") == "throttle_unavailable"
            and login.headers.get("retry-after")
        ]
        slowest = max((answer.end - answer.start for answer in during), default=0.0)
        wrong, after = self.wrong_logins_then_429(account.username, next(_addresses))
        figures = [
            f"Redis paused (SIGSTOP) for {resumed_at - paused_at:.1f} s",
            f"{len(during)} background requests meanwhile: {status_counts(during)}; slowest "
            f"{slowest * 1000:.0f} ms; {len(failed)} failed",
            f"logins meanwhile: {status_counts(logins)}; {len(refused)} of {len(logins)} were 503 "
            f"throttle_unavailable with Retry-After "
            f"({', '.join(sorted({login.headers.get('retry-after', '-') for login in logins}))})",
            "after Redis resumed, logins sent every 0.2 s: "
            + ", ".join(
                f"{a.status} (sent +{a.start - resumed_at:.2f} s, took {a.end - a.start:.2f} s)" for a in attempts
            )
            + f"; the first success sent within {LOGIN_RECOVERY_LIMIT_SECONDS:.0f} s: {back is not None}",
            f"then {WRONG_LOGINS} wrong logins: {dict(sorted(wrong.items(), key=str))}; the next on each instance: "
            f"{after}",
        ]
        passed = (
            bool(during)
            and not failed
            and bool(logins)
            and len(refused) == len(logins)
            and back is not None
            and back <= LOGIN_RECOVERY_LIMIT_SECONDS
            and after == [429] * len(self.ports)
        )
        self.record(Check("Redis paused", passed, figures + self.examples(failed)))

    # -------------------------------------------------------------------------------------- durability

    def check_durability(self, load: Load, writer: Account) -> None:
        creates = [answer for answer in load.answers if answer.kind == "create"]
        acked = {answer.key: answer.body.get("id") for answer in creates if answer.status == 201}
        unanswered = [answer for answer in creates if answer.status != 201]
        # A create that got no 201 (killed in flight): the client retries it with its key, as clients should.
        retried = {}
        for answer in unanswered:
            again = call(
                self.port, "POST", "/api/patients/", token=writer.token, body=patient(answer.key), key=answer.key
            )
            retried[answer.key] = again
        with self.cluster.primary.connect() as connection:
            rows = connection.execute(
                "SELECT lastname, id FROM hospital_patient WHERE lastname LIKE %s", [MARKER_PREFIX + "%"]
            ).fetchall()
        stored = Counter(lastname for lastname, _ in rows)
        ids = dict(rows)
        keys = {answer.key for answer in creates}
        lost = [key for key in acked if stored[key] == 0]
        wrong_id = [key for key, pk in acked.items() if stored[key] == 1 and ids[key] != pk]
        duplicated = [key for key in keys if stored[key] > 1]
        retry_failed = [key for key, again in retried.items() if again.status != 201 or stored[key] != 1]
        replayed = sum(again.headers.get("idempotent-replayed") == "true" for again in retried.values())
        figures = [
            f"{len(creates)} creates in the background: {status_counts(creates)}",
            f"in the primary: {len(acked) - len(lost)} of {len(acked)} acknowledged ({len(lost)} lost, "
            f"{len(wrong_id)} with another id), {len(duplicated)} keys with more than one row",
            f"{len(unanswered)} without a 201, retried with their key: {status_counts(list(retried.values()))}, "
            f"{replayed} replayed (had been stored), {len(retried) - replayed} created now",
        ]
        passed = bool(acked) and not (lost or wrong_id or duplicated or retry_failed)
        self.record(Check("no create lost or duplicated", passed, figures))


# ------------------------------------------------------------------------------------------------- main


def run(cleanup: contextlib.ExitStack) -> bool:
    workdir = Path(tempfile.mkdtemp(prefix="cluster-drill-"))
    cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
    cluster = Cluster(
        data_dir=workdir,
        port=free_port(),
        app_env={
            "SECRET_KEY": secrets.token_urlsafe(48),
            "DEBUG": "false",
            "DATA_DIR": str(workdir),
            "LOG_LEVEL": "WARNING",
        },
    )
    cleanup.callback(cluster.stop)
    say(f"starting the cluster in {workdir} ...")
    cluster.start()
    say(cluster.banner().strip("\n"))
    drill = Drill(cluster)
    first = cluster.instances[0].port
    staff = create_staff(cluster)
    reader, writer, own, victim, target = (
        register(first, f"drill-{name}") for name in ("reader", "writer", "own", "victim", "target")
    )
    load = Load(cluster.port, reader, writer)
    counters = drill.replica_counters()
    load_started = time.monotonic()
    say(f"background load through nginx: {READERS} readers (GET /api/patients/), {WRITERS} writers (POST, keyed)")
    load.start()
    cleanup.callback(load.stop)
    try:
        drill.check_throttle(target)
        drill.check_idempotency(own)
        drill.check_revocation(staff, victim)
        drill.check_replica(load, own, load_started, counters)
        drill.check_rolling_restart(load)
        drill.check_kill(load)
        drill.check_redis(load, own)
    finally:
        load.stop()
    drill.check_durability(load, writer)
    answers = load.answers
    seconds = [answer.end - answer.start for answer in answers] or [0.0]
    say(
        f"background load: {len(answers)} requests in {time.monotonic() - load_started:.0f} s, "
        f"{status_counts(answers)}; p50 {statistics.median(seconds) * 1000:.0f} ms, max {max(seconds) * 1000:.0f} ms"
    )
    passed = all(check.passed for check in drill.checks)
    print(
        f"\n{'PASS' if passed else 'FAIL'}: {sum(c.passed for c in drill.checks)} of {len(drill.checks)} checks passed"
    )
    if not passed:
        for log in sorted(cluster.logs.glob("*.log")):
            print(f"--- {log.name} (last 20 lines) ---\n{cluster_module.tail(log, 20)}")
    return passed


def main() -> int:
    signal.signal(signal.SIGTERM, interrupt)
    started = time.monotonic()
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(lambda: say(f"stopped and removed everything; {time.monotonic() - started:.0f} s in all"))
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
