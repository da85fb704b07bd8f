"""`make bench`: requests/s, latency, queries and memory of the API under fixed load, against a ceiling.

    python -m benchmarks.run              full run (12-16 minutes on 2 cores); writes BENCHMARKS.md
    BENCH_QUICK=1 python -m benchmarks.run   10k rows only, short rounds; writes .data/bench/BENCHMARKS-quick.md

Everything lives in a temporary directory, removed at the end (also on Ctrl-C): a private PostgreSQL
(pgserver), a fresh migrated database, and three servers, each nginx in front of gunicorn (gunicorn.conf.py)
exactly as `make run` serves the app (scripts/serving.py), with production settings (DEBUG=false):

  app      healthcare.wsgi, the server wrk measures; exactly the production middleware
  ceiling  benchmarks.ceiling: the patients page from one raw query, measured the same way
  probe    healthcare.wsgi with BENCHMARK_QUERY_COUNT=true and one worker, idle except for one request per
           endpoint, whose X-Query-Count header gives the queries per request

For each data set the database is seeded afresh (`seed()`), the audit table emptied and VACUUM ANALYZE run.
Each endpoint is then loaded by wrk from a separate process at 1, 8 and 32 connections: a warm-up, then
several rounds, of which the median (by requests/s) is reported; each round also measures the CPU that
other processes took meanwhile, and noisy rounds are retried a little (run_rounds). Every request is made as
one staff user, so that lists are full pages over every row of the data set. Login is measured alone, at 1
connection, next to the bare time of Django's password hasher in this process.
"""

import contextlib
import functools
import http.client
import json
import os
import platform
import random
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from scripts.fault_tolerance import Postgres, free_port, interrupt, print_server_log
from scripts.serving import Stack

BASE_DIR = Path(__file__).resolve().parent.parent
POST_SCRIPT = Path(__file__).with_name("post.lua")
QUICK = os.environ.get("BENCH_QUICK", "").strip().lower() in {"1", "true", "yes", "on"}
OUTPUT = BASE_DIR / ".data" / "bench" / "BENCHMARKS-quick.md" if QUICK else BASE_DIR / "BENCHMARKS.md"

CONNECTIONS = (1, 8, 32)
SEED = 20251124
STAFF_USERNAME = "bench"
# Above any rate the benchmark reaches, so that logins (anonymous requests too) are measured rather than
# refused; the throttles' store reads and writes still happen on every login.
AUTH_THROTTLE_RATE = "1000000/s"
PATIENT_BODY = json.dumps(
    {"firstname": "Bench", "lastname": "Mark", "age": 40, "gender": "O", "email": "bench.mark@example.com"}
)
MIB = 1024 * 1024


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


# ---------------------------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Endpoint:
    key: str
    label: str
    kind: str  # ceiling, list, detail, create, login: what its targets are
    method: str
    path: str  # {patient}: a patient's id; {mapped_patient}: a patient with doctors
    server: str = "app"
    body: str | None = None


ENDPOINTS = {
    endpoint.key: endpoint
    for endpoint in (
        Endpoint("ceiling", "ceiling (patients page, raw)", "ceiling", "GET", "/api/patients/", server="ceiling"),
        Endpoint("patients", "GET /api/patients/", "list", "GET", "/api/patients/"),
        Endpoint("patient", "GET /api/patients/<id>/", "detail", "GET", "/api/patients/{patient}/"),
        Endpoint("mappings", "GET /api/mappings/", "list", "GET", "/api/mappings/"),
        Endpoint("doctors_of", "GET /api/mappings/<patient_id>/", "detail", "GET", "/api/mappings/{mapped_patient}/"),
        Endpoint("create", "POST /api/patients/", "create", "POST", "/api/patients/", body=PATIENT_BODY),
        Endpoint("login", "POST /api/auth/login/", "login", "POST", "/api/auth/login/"),
    )
}


@dataclass(frozen=True)
class DataSet:
    label: str
    patients: int
    doctors: int
    mappings: int
    endpoints: tuple[str, ...]  # the ceiling first: every other figure is a percentage of it


@dataclass(frozen=True)
class Plan:
    data_sets: tuple[DataSet, ...]
    warmup_seconds: int
    rounds: int
    extra_rounds: int  # at most this many more while other processes load the machine (see run_rounds)
    round_seconds: int
    login_round_seconds: int  # a login takes a whole password hash: longer rounds for enough samples
    quiet_wait_budget_seconds: int  # in all, for other processes to quiet down (see run_rounds)


EVERY_ENDPOINT = ("ceiling", "patients", "patient", "mappings", "doctors_of", "create", "login")
FULL = Plan(
    data_sets=(
        DataSet("1k", 1_000, 100, 1_000, ("ceiling", "patients")),
        DataSet("10k", 10_000, 500, 10_000, EVERY_ENDPOINT),
        DataSet("100k", 100_000, 1_000, 100_000, ("ceiling", "patients", "patient", "mappings", "doctors_of")),
    ),
    warmup_seconds=2,
    rounds=3,
    extra_rounds=2,
    round_seconds=5,
    login_round_seconds=10,
    quiet_wait_budget_seconds=180,
)
QUICK_PLAN = Plan(
    data_sets=(DataSet("10k", 10_000, 500, 10_000, EVERY_ENDPOINT),),
    warmup_seconds=1,
    rounds=1,
    extra_rounds=1,
    round_seconds=2,
    login_round_seconds=4,
    quiet_wait_budget_seconds=20,
)


# ------------------------------------------------------------------------------------------- seeding


def seed(n_patients: int, n_doctors: int, n_mappings: int) -> None:
    """Fresh demo data: `manage.py seed_demo` where the project has it, else a small COPY-based fallback."""
    from django.core.management import call_command, get_commands

    if "seed_demo" in get_commands():
        call_command("seed_demo", patients=n_patients, doctors=n_doctors, mappings=n_mappings, reset=True, seed=SEED)
    else:
        copy_seed(n_patients, n_doctors, n_mappings)


def copy_seed(n_patients: int, n_doctors: int, n_mappings: int) -> None:
    """Empty the records and COPY new ones in, all owned by the staff user; ids restart at 1."""
    from django.db import connection

    from hospital.models import Doctor, IdempotencyKey, Patient, PatientDoctorMapping

    if n_mappings > n_patients * n_doctors:
        raise ValueError("more mappings than (patient, doctor) pairs")
    owner = ensure_staff_user()
    models = [PatientDoctorMapping, Patient, Doctor, IdempotencyKey]
    tables = [model._meta.db_table for model in models] + [
        model.history.model._meta.db_table for model in models if hasattr(model, "history")
    ]
    rng = random.Random(SEED)
    first, last = ["Ann", "Bo", "Chen", "Dana", "Eli", "Fatima", "Gus"], ["Lee", "Ek", "Patel", "Novak", "Okafor"]
    now = datetime.now(UTC)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY")
        columns = "firstname, lastname, age, gender, email, created_by_id, created_at, updated_at"
        with cursor.copy(f"COPY hospital_patient ({columns}) FROM STDIN") as copy:
            for n in range(n_patients):
                at = now - timedelta(seconds=n_patients - n)
                name = rng.choice(first), rng.choice(last)
                email = f"{name[0]}.{name[1]}{n}@example.com".lower()
                copy.write_row((*name, rng.randint(0, 100), rng.choice("MFO"), email, owner.pk, at, at))
        columns = "firstname, lastname, specialization, max_appointments_per_day, gender, email, created_by_id, "
        with cursor.copy(f"COPY hospital_doctor ({columns} created_at, updated_at) FROM STDIN") as copy:
            for _ in range(n_doctors):
                name = rng.choice(first), rng.choice(last)
                row = (*name, rng.choice(["GEN", "CARD", "NEUR", "PEDS"]), 10, rng.choice("MF"), "", owner.pk)
                copy.write_row((*row, now, now))
        # Mapping n: patient n mod P, and for that patient's j-th mapping a distinct doctor (j < doctors).
        with cursor.copy("COPY hospital_patientdoctormapping (patient_id, doctor_id, assigned_at) FROM STDIN") as copy:
            for n in range(n_mappings):
                patient, j = n % n_patients, n // n_patients
                copy.write_row((patient + 1, (patient * 31 + j) % n_doctors + 1, now))


def ensure_staff_user():
    """The account every request is made as: staff, so lists are full pages over every row."""
    from hospital.models import User

    user, _ = User.objects.get_or_create(
        username=STAFF_USERNAME, defaults={"email": "bench@example.com", "is_staff": True}
    )
    return user


def prepare_data_set(data_set: DataSet) -> dict[str, int]:
    """Seed, then start from the same state every time: no audit rows, fresh planner statistics."""
    from django.db import connection

    from hospital.models import AuditEvent, Patient, PatientDoctorMapping

    started = time.monotonic()
    seed(data_set.patients, data_set.doctors, data_set.mappings)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {AuditEvent._meta.db_table}")  # the append-only trigger allows TRUNCATE only
        cursor.execute("VACUUM ANALYZE")
    live = Patient.objects.filter(deleted_at__isnull=True).order_by("id").values_list("id", flat=True)
    mapped = PatientDoctorMapping.objects.order_by("id").values_list("patient_id", flat=True)
    ids = {"patient": live[live.count() // 2], "mapped_patient": mapped[mapped.count() // 2]}
    say(f"seeded {data_set.label} in {time.monotonic() - started:.1f} s (incl. VACUUM ANALYZE)")
    return ids


# -------------------------------------------------------------------------------------------- servers


QUIET_LOAD_PERCENT = 5.0


class OtherLoad:
    """The share of the machine's CPU that processes outside the benchmark used while it measured.

    On a shared machine other work slows the servers down at random; this says which figures it touched.
    Ours: this process (with the wrk runs it has reaped), its descendants (nginx, gunicorn), and PostgreSQL.
    """

    def __init__(self, postmaster_pid: int, wait_budget_seconds: float):
        self.roots = {os.getpid(), postmaster_pid}
        self.wait_left = wait_budget_seconds
        self.waited = 0.0

    def snapshot(self) -> tuple[int, int, int]:
        """(ticks of all CPUs, busy ticks of all CPUs, ticks of our processes)."""
        cpu = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = cpu[3] + cpu[4]  # idle, iowait
        total = sum(cpu[:8])  # up to steal; guest time is already in user
        parents, ticks = {}, {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    parents[int(entry.name)] = int(fields[1])
                    ticks[int(entry.name)] = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        ours = set(self.roots)
        while True:
            more = {pid for pid, parent in parents.items() if parent in ours} - ours
            if not more:
                break
            ours |= more
        return total, total - idle, sum(ticks.get(pid, 0) for pid in ours)

    @staticmethod
    def percent(before: tuple[int, int, int], after: tuple[int, int, int]) -> float:
        total, busy, ours = (b - a for a, b in zip(before, after, strict=True))
        return max(0.0, 100 * (busy - ours) / total) if total else 0.0

    def during(self, action):
        """Run `action`; its result, and the other load meanwhile."""
        before = self.snapshot()
        result = action()
        return result, self.percent(before, self.snapshot())

    def wait_until_quiet(self, longest: float = 15.0) -> None:
        """Sleep, from the run's waiting budget, until half a second in which others were quiet."""
        started = time.monotonic()
        deadline = started + min(longest, self.wait_left)
        while time.monotonic() < deadline and self.during(lambda: time.sleep(0.5))[1] > QUIET_LOAD_PERCENT:
            pass
        self.wait_left -= time.monotonic() - started
        self.waited += time.monotonic() - started


@dataclass
class Server:
    name: str
    port: int
    stack: Stack
    log: Path

    def worker_rss_mib(self) -> list[float]:
        """VmRSS of each gunicorn worker (the master's children)."""
        pid = self.stack.gunicorn.pid
        sizes = []
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            with contextlib.suppress(FileNotFoundError):
                status = Path(f"/proc/{child}/status").read_text()
                sizes.append(int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)[1]) * 1024 / MIB)
        return sorted(sizes)


def start_server(name: str, wsgi: str, env: dict[str, str], workdir: Path, ready_path: str, cleanup) -> Server:
    """nginx and gunicorn as `make run` starts them, in sessions of their own: Ctrl-C reaches only this script,
    which stops the servers (`cleanup`) before PostgreSQL."""
    port = int(env["PORT"])
    log = workdir / f"{name}.log"
    stack = Stack(wsgi=wsgi, env=env, host="127.0.0.1", port=port)
    cleanup.callback(stack.stop)
    with log.open("w") as output:
        stack.start(output=output)
    server = Server(name, port, stack, log)
    deadline = time.monotonic() + 30
    while not stack.exited() and time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if fetch(port, "GET", ready_path)[0] == 200:
                return server
        time.sleep(0.2)
    print_server_log(log)
    raise RuntimeError(f"{name} did not serve within 30 s ({stack.exited() or 'still starting'})")


def fetch(port: int, method: str, path: str, *, token: str = "", body: str | None = None, host: str = ""):
    """One request: (status, headers, body bytes)."""
    headers = {"Accept": "application/json"}
    if host:
        headers["Host"] = host
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        headers["Content-Type"] = "application/json"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def log_in(port: int, password: str) -> str:
    status, _, body = fetch(port, "POST", "/api/auth/login/", body=login_body(password))
    if status != 200:
        raise RuntimeError(f"login failed: {status} {body[:200]!r}")
    return json.loads(body)["access"]


def login_body(password: str) -> str:
    return json.dumps({"username": STAFF_USERNAME, "password": password})


# ------------------------------------------------------------------------------------------------ wrk


@dataclass
class Round:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx/3xx answers and socket errors
    other_load: float = 0.0  # see OtherLoad


DURATION = re.compile(r"([\d.]+)(us|ms|s|m)")
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(output: str) -> Round:
    def number(pattern: str) -> str:
        match = re.search(pattern, output, re.M)
        if match is None:
            raise RuntimeError(f"unexpected wrk output (no {pattern!r}):\n{output}")
        return match[1]

    def milliseconds(text: str) -> float:
        value, unit = DURATION.fullmatch(text).groups()
        return float(value) * UNIT_MS[unit]

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = (int(non_2xx[1]) if non_2xx else 0) + (sum(map(int, sockets.groups())) if sockets else 0)
    return Round(
        requests_per_second=float(number(r"^Requests/sec:\s+([\d.]+)")),
        p50_ms=milliseconds(number(r"^\s+50%\s+(\S+)")),
        p99_ms=milliseconds(number(r"^\s+99%\s+(\S+)")),
        requests=int(number(r"(\d+) requests in")),
        errors=errors,
    )


def run_wrk(port: int, path: str, connections: int, seconds: int, token: str, body: str | None) -> Round:
    # One wrk thread: on a small machine every core it takes is one the servers do not get.
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    env = dict(os.environ)
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    if body is not None:
        command += ["-s", str(POST_SCRIPT)]
        env["WRK_BODY"] = body
    command.append(f"http://127.0.0.1:{port}{path}")
    finished = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if finished.returncode != 0:
        raise RuntimeError(f"wrk failed ({finished.returncode}): {finished.stderr or finished.stdout}")
    return parse_wrk(finished.stdout)


# ------------------------------------------------------------------------------------------ measuring


@dataclass
class Result:
    data_set: str
    endpoint: Endpoint
    connections: int
    median: Round
    rounds: list[float]  # requests/s of every round kept
    noisy_rounds: int  # rounds run and dropped as the noisiest
    errors: int  # over the warm-up and every round
    queries: int | None
    worker_rss_mib: list[float]
    other_load: float  # % of the machine's CPU used by other processes meanwhile
    ceiling_rps: float | None = None

    @property
    def percent_of_ceiling(self) -> float | None:
        if not self.ceiling_rps:
            return None
        return 100 * self.median.requests_per_second / self.ceiling_rps


@dataclass
class Run:
    """Everything the report needs."""

    plan: Plan
    results: list[Result] = field(default_factory=list)
    ceiling_match: dict[str, str] = field(default_factory=dict)  # data set -> "byte-identical ..." or difference
    hash_ms: float | None = None
    postgres_version: str = ""
    load_average: str = ""  # when the run started, before it added any load
    quiet_waited_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def workers(self) -> int:
        return max((len(r.worker_rss_mib) for r in self.results if r.endpoint.server == "app"), default=0)

    def find(self, data_set: str, key: str, connections: int) -> Result | None:
        for result in self.results:
            if (result.data_set, result.endpoint.key, result.connections) == (data_set, key, connections):
                return result
        return None


def measure(
    run: Run, servers: dict[str, Server], data_set: DataSet, endpoint: Endpoint, context: dict, queries: int | None
) -> None:
    server = servers[endpoint.server]
    path = endpoint.path.format(**context["ids"])
    token = context["token"] if endpoint.server == "app" and endpoint.kind != "login" else ""
    body = login_body(context["password"]) if endpoint.kind == "login" else endpoint.body
    plan = run.plan
    seconds = plan.login_round_seconds if endpoint.kind == "login" else plan.round_seconds
    for connections in (1,) if endpoint.kind == "login" else CONNECTIONS:
        warm_up = functools.partial(run_wrk, server.port, path, connections, plan.warmup_seconds, token, body)
        one_round = functools.partial(run_wrk, server.port, path, connections, seconds, token, body)
        warmup, rounds, noisy = run_rounds(plan, context["other_load"], warm_up, one_round)
        median = sorted(rounds, key=lambda r: r.requests_per_second)[(len(rounds) - 1) // 2]
        ceiling = run.find(data_set.label, "ceiling", connections)
        result = Result(
            data_set=data_set.label,
            endpoint=endpoint,
            connections=connections,
            median=median,
            rounds=[r.requests_per_second for r in rounds],
            noisy_rounds=noisy,
            errors=warmup.errors + sum(r.errors for r in rounds),
            queries=queries,
            worker_rss_mib=server.worker_rss_mib(),
            other_load=max(r.other_load for r in rounds),
            ceiling_rps=ceiling.median.requests_per_second if ceiling and endpoint.kind != "ceiling" else None,
        )
        run.results.append(result)
        share = f", {result.percent_of_ceiling:.0f}% of ceiling" if result.percent_of_ceiling else ""
        say(
            f"{data_set.label:>4} {endpoint.label:<32} c={connections:<2} {median.requests_per_second:8.1f} req/s, "
            f"p50 {median.p50_ms:6.2f} ms, p99 {median.p99_ms:6.2f} ms{share}, other load {result.other_load:.0f}%"
            + (f", {result.errors} ERRORS" if result.errors else "")
        )


def run_rounds(plan: Plan, meter: OtherLoad, warm_up, one_round) -> tuple[Round, list[Round], int]:
    """The warm-up, then `plan.rounds` rounds; while fewer than that ran on a quiet machine, up to
    `plan.extra_rounds` more. After a noisy one, it first waits a little for quiet (OtherLoad.wait_until_quiet).

    Returns the warm-up, the quietest `plan.rounds` rounds and how many it dropped.
    """
    warmup, load = meter.during(warm_up)
    rounds = []
    while len(rounds) < plan.rounds + plan.extra_rounds:
        if load > QUIET_LOAD_PERCENT:
            meter.wait_until_quiet()
        measured, load = meter.during(one_round)
        measured.other_load = load
        rounds.append(measured)
        if sum(r.other_load <= QUIET_LOAD_PERCENT for r in rounds) >= plan.rounds:
            break
    return warmup, sorted(rounds, key=lambda r: r.other_load)[: plan.rounds], len(rounds) - plan.rounds


def count_queries(probe: Server, endpoint: Endpoint, context: dict) -> int | None:
    """The probe server's X-Query-Count for a warm request; None for the ceiling (one query by design)."""
    if endpoint.kind == "ceiling":
        return None
    path = endpoint.path.format(**context["ids"])
    token = "" if endpoint.kind == "login" else context["token"]
    body = login_body(context["password"]) if endpoint.kind == "login" else endpoint.body
    counts = []
    # Twice: the first request of a token in a worker also looks its user up (cached for a minute after).
    for _ in range(2):
        status, headers, answer = fetch(probe.port, endpoint.method, path, token=token, body=body)
        if status >= 300:
            raise RuntimeError(f"{endpoint.label}: {status} {answer[:200]!r}")
        counts.append(int(headers["X-Query-Count"]))
    return counts[-1]


IGNORED_HEADERS = {"date", "x-request-id"}  # differ on every answer, from any server


def compare_with_ceiling(app: Server, ceiling: Server, token: str) -> str:
    """The ceiling must answer what the app answers; raises if the bodies differ."""
    host = f"127.0.0.1:{app.port}"  # the same Host, so that the Link headers can agree
    app_status, app_headers, app_body = fetch(app.port, "GET", "/api/patients/", token=token)
    ceiling_status, ceiling_headers, ceiling_body = fetch(ceiling.port, "GET", "/api/patients/", host=host)
    if (app_status, ceiling_status) != (200, 200):
        raise RuntimeError(f"patients page: app {app_status}, ceiling {ceiling_status}")
    if app_body == ceiling_body:
        verdict = f"byte-identical bodies ({len(app_body):,} bytes, {len(json.loads(app_body))} patients)"
    elif json.loads(app_body) == json.loads(ceiling_body):
        verdict = f"JSON-equal bodies, not byte-identical ({len(app_body):,} vs {len(ceiling_body):,} bytes)"
    else:
        raise RuntimeError("the ceiling's patients page differs from the app's")

    def normal(headers: dict) -> dict:
        return {name.lower(): value for name, value in headers.items() if name.lower() not in IGNORED_HEADERS}

    expected, got = normal(app_headers), normal(ceiling_headers)
    differences = [name for name in sorted(expected.keys() | got.keys()) if expected.get(name) != got.get(name)]
    if differences:
        return verdict + "; headers differ: " + ", ".join(differences)
    return verdict + "; same headers and values (Date and X-Request-ID aside)"


def bare_hash_ms(password: str, times: int = 5) -> float:
    """Median time of one check_password() with Django's configured hasher, in this process."""
    from django.contrib.auth.hashers import check_password, make_password

    encoded = make_password(password)
    timings = []
    for _ in range(times):
        started = time.perf_counter()
        check_password(password, encoded)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


# --------------------------------------------------------------------------------------------- report


@dataclass
class Target:
    name: str
    measured: str
    passed: bool | None  # None: not measured in this run
    margin: str


def evaluate_targets(run: Run) -> list[Target]:
    targets = []

    def add(name: str, result: Result | None, value, passed, margin) -> None:
        if result is None:
            targets.append(Target(name, "not measured", None, ""))
        else:
            targets.append(Target(name, value(result), passed(result), margin(result)))

    patients_10k = run.find("10k", "patients", 8)
    add(
        "GET /api/patients/ at 10k, 8 connections: >= 40% of the ceiling's req/s",
        patients_10k,
        lambda r: f"{r.percent_of_ceiling:.1f}% ({r.median.requests_per_second:.0f} of {r.ceiling_rps:.0f} req/s)",
        lambda r: r.percent_of_ceiling >= 40,
        lambda r: f"{r.percent_of_ceiling - 40:+.1f} points",
    )
    add(
        "GET /api/patients/ at 10k, 8 connections: p99 < 25 ms",
        patients_10k,
        lambda r: f"{r.median.p99_ms:.1f} ms",
        lambda r: r.median.p99_ms < 25,
        lambda r: f"{r.median.p99_ms - 25:+.1f} ms",
    )
    patients_100k = run.find("100k", "patients", 8)
    if patients_10k and patients_100k:
        ratio = 100 * patients_100k.median.requests_per_second / patients_10k.median.requests_per_second
        targets.append(
            Target(
                "GET /api/patients/ at 100k, 8 connections: req/s within 10% of the 10k figure",
                f"{patients_100k.median.requests_per_second:.0f} vs {patients_10k.median.requests_per_second:.0f}"
                f" req/s ({ratio:.0f}%)",
                ratio >= 90,
                f"{ratio - 100:+.0f}%",
            )
        )
    else:
        targets.append(Target("GET /api/patients/ at 100k within 10% of 10k", "not measured", None, ""))
    mappings_10k = run.find("10k", "mappings", 8)
    if patients_10k and mappings_10k:
        ratio = 100 * mappings_10k.median.requests_per_second / patients_10k.median.requests_per_second
        targets.append(
            Target(
                "GET /api/mappings/ at 10k, 8 connections: >= 60% of the patient list's req/s",
                f"{mappings_10k.median.requests_per_second:.0f} req/s ({ratio:.0f}% of "
                f"{patients_10k.median.requests_per_second:.0f})",
                ratio >= 60,
                f"{ratio - 60:+.0f} points",
            )
        )
    limits = {"list": 2, "detail": 2, "create": 3, "login": 2}
    for key in ("patients", "mappings", "patient", "doctors_of", "create", "login"):
        endpoint = ENDPOINTS[key]
        measured = [r for r in run.results if r.endpoint.key == key and r.queries is not None]
        if not measured:
            continue
        worst = max(r.queries for r in measured)
        limit = limits[endpoint.kind]
        targets.append(
            Target(
                f"{endpoint.label}: <= {limit} queries besides the audit INSERT",
                f"{worst} in all ({worst - 1} + audit)",
                worst - 1 <= limit,
                f"{worst - 1 - limit:+d}",
            )
        )
    login = run.find("10k", "login", 1)
    if login and run.hash_ms:
        ratio = 100 * login.median.p50_ms / run.hash_ms
        targets.append(
            Target(
                "Login (1 connection): p50 within 15% of the bare password hash",
                f"p50 {login.median.p50_ms:.0f} ms vs hash {run.hash_ms:.0f} ms ({ratio:.0f}%)",
                ratio <= 115,
                f"{ratio - 100:+.0f}%",
            )
        )
    rss = [size for result in run.results if result.endpoint.server == "app" for size in result.worker_rss_mib]
    if rss:
        targets.append(Target("App worker RSS < 100 MiB", f"{max(rss):.0f} MiB at most", max(rss) < 100, ""))
    return targets


def machine(run: Run) -> list[tuple[str, str]]:
    import django
    import gunicorn
    import psycopg

    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    memory = int(re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)[1]) * 1024
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return [
        ("CPU", f"{model[1] if model else platform.processor()}, {os.cpu_count()} cores"),
        ("RAM", f"{memory / 1024**3:.1f} GiB"),
        ("Kernel", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("Django", django.get_version()),
        ("PostgreSQL", run.postgres_version),
        ("gunicorn", gunicorn.__version__),
        ("nginx", nginx_version()),
        ("psycopg", psycopg.__version__),
        ("wrk", (wrk.stdout or wrk.stderr).splitlines()[0] if (wrk.stdout or wrk.stderr) else "unknown"),
        ("Load average at the start (1, 5, 15 min)", run.load_average),
    ]


def nginx_version() -> str:
    from scripts.serving import find_nginx

    finished = subprocess.run([find_nginx(), "-v"], capture_output=True, text=True, check=False)
    return (finished.stderr or finished.stdout).strip().removeprefix("nginx version: ") or "unknown"


def format_rss(sizes: list[float]) -> str:
    if not sizes:
        return "-"
    return f"{max(sizes):.0f}" if max(sizes) - min(sizes) < 1 else f"{min(sizes):.0f}-{max(sizes):.0f}"


def write_report(run: Run, path: Path) -> None:
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (benchmarks/run.py{', BENCH_QUICK=1' if QUICK else ''}) on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; the run took {run.seconds / 60:.1f} minutes. "
        "What was tuned, what was tried and dropped, and why the missed targets are missed: "
        '"Tuning" below (benchmarks/TUNING.md, written by hand and copied in by the harness).',
        "",
        "## Targets",
        "",
        "| Target | Measured | Verdict | By |",
        "|---|---|---|---|",
    ]
    for target in evaluate_targets(run):
        verdict = {True: "PASS", False: "**MISS**", None: "-"}[target.passed]
        lines.append(f"| {target.name} | {target.measured} | {verdict} | {target.margin} |")
    lines += [
        "",
        "## Results",
        "",
        "Median round of each measurement. req/s: requests per second; p50 and p99: latency by wrk; % of ceiling: "
        "of the ceiling server's req/s on the same data at the same number of connections; queries: SQL "
        "statements per request (X-Query-Count), the audit INSERT included; RSS: resident memory of each of the "
        "server's gunicorn workers after the measurement (MiB, lowest-highest); other load: share of the "
        "machine's CPU that processes outside the benchmark used during the rounds (a shared machine makes "
        "figures noisy; above a few percent, compare with care).",
    ]
    for key, endpoint in ENDPOINTS.items():
        rows = [result for result in run.results if result.endpoint.key == key]
        if not rows:
            continue
        lines += [
            "",
            f"### {endpoint.label}",
            "",
            "| Rows | Connections | req/s | p50 ms | p99 ms | % of ceiling | Queries | Worker RSS MiB | Rounds req/s "
            "| Other load |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for result in rows:
            share = f"{result.percent_of_ceiling:.0f}%" if result.percent_of_ceiling is not None else "-"
            rounds = ", ".join(f"{rps:.0f}" for rps in result.rounds)
            if result.noisy_rounds:
                rounds += f" ({result.noisy_rounds} noisier dropped)"
            errors = f" ({result.errors} errors)" if result.errors else ""
            lines.append(
                f"| {result.data_set} | {result.connections} | {result.median.requests_per_second:.1f}{errors} | "
                f"{result.median.p50_ms:.2f} | {result.median.p99_ms:.2f} | {share} | "
                f"{result.queries if result.queries is not None else '1 (by design)'} | "
                f"{format_rss(result.worker_rss_mib)} | {rounds} | {result.other_load:.0f}% |"
            )
    if run.hash_ms is not None:
        lines += [
            "",
            f"Bare password hash (Django's `check_password` with its default hasher, in the harness's own process, "
            f"median of 5): **{run.hash_ms:.0f} ms**.",
        ]
    lines += ["", "## Method", ""]
    lines += [f"- {line}" for line in method_notes(run)]
    lines += ["", "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in machine(run)]
    tuning = Path(__file__).with_name("TUNING.md")
    if tuning.exists():
        lines += ["", tuning.read_text().strip()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def method_notes(run: Run) -> list[str]:
    plan = run.plan
    data_sets = "; ".join(
        f"{d.label}: {d.patients:,} patients, {d.doctors:,} doctors, {d.mappings:,} mappings" for d in plan.data_sets
    )
    return [
        "One process runs everything (`python -m benchmarks.run`): a private PostgreSQL (pgserver, default "
        "configuration) in a temporary directory, a migrated database, and three servers started as `make run` "
        "starts one (scripts/serving.py: nginx on a loopback port in front of `gunicorn -c gunicorn.conf.py` on a "
        "unix socket; `DEBUG=false`, a 64-character random `SECRET_KEY`): the app, the ceiling "
        f"(`benchmarks/ceiling.py`) and a query-count probe. {run.workers} sync workers each (gunicorn.conf.py's "
        "default, 2 x cores + 1). wrk keeps its connections to nginx open; nginx opens a new unix-socket "
        "connection to gunicorn for each request (the sync worker closes it after each answer). The app's request "
        "log (one JSON line per request) goes to a file.",
        f"Data sets, each seeded afresh (`seed()`: `manage.py seed_demo` when the project has it, else a COPY "
        f"fallback) before its measurements: {data_sets}. Then the audit table is emptied (TRUNCATE) and "
        "`VACUUM ANALYZE` runs, so every data set starts from the same state; the audit table then grows by one "
        "row per measured request, as in production.",
        "Load: wrk (one thread, `--latency`) in its own process, at 1, 8 and 32 connections: a "
        f"{plan.warmup_seconds} s warm-up, then {plan.rounds} rounds of {plan.round_seconds} s; the round with "
        "the median req/s is reported, with its p50 and p99. Each round also measures the CPU that processes "
        f"outside the benchmark used meanwhile; while fewer than {plan.rounds} rounds ran with at most "
        f"{QUIET_LOAD_PERCENT:.0f}% of it, up to {plan.extra_rounds} more are run and the noisiest dropped; after "
        "a noisy warm-up or round the harness first waits up to 15 s for the machine to quiet down (this run "
        f"waited {run.quiet_waited_seconds:.0f} s of a {plan.quiet_wait_budget_seconds} s budget). "
        "Login: 1 connection only, rounds of "
        f"{plan.login_round_seconds} s (each login costs a whole password hash, so p99 is close to the slowest of "
        "a few dozen requests). POST /api/patients/ sends the same JSON body through benchmarks/post.lua, creating "
        "a patient (and its history and audit rows) each time.",
        f"Every request is made as one staff user (`{STAFF_USERNAME}`), which logs in once per data set: staff see "
        "every patient, so the lists are full pages of 50 over all rows and their count covers the whole table. "
        "(In the COPY fallback this user also owns every patient.) Detail requests ask for the patient in the "
        "middle of the id range; `/api/mappings/<patient_id>/` for the patient of the middle mapping.",
        "The ceiling answers the app's first patients page (as that staff user sees it) from one raw psycopg "
        "query (the count and the page together) on a connection each worker keeps, with no framework, "
        "authentication or audit row. Checked against the app on every data set: "
        + "; ".join(f"{label}: {verdict}" for label, verdict in run.ceiling_match.items())
        + ".",
        "Queries per request: one request per endpoint to the probe server (the app with "
        "`BENCHMARK_QUERY_COUNT=true`, one worker), whose middleware counts every statement Django sends through "
        "`connection.execute_wrapper`, the audit INSERT included; the targets exclude that INSERT. Not counted: "
        "Django's connection health check (`SELECT 1` on the first query of each request, `CONN_HEALTH_CHECKS`) "
        "and BEGIN/COMMIT, which psycopg sends itself. The measured app runs without that middleware.",
        f"`AUTH_THROTTLE_RATE` and `ANON_THROTTLE_RATE` `={AUTH_THROTTLE_RATE}`, so that logins are measured rather "
        "than refused with 429; the throttles' store reads and writes still happen on each login. Every other "
        "setting is the default.",
        "Worker RSS: `VmRSS` from /proc/<pid>/status of each child of the gunicorn master, read right after "
        "each measurement.",
    ]


# ----------------------------------------------------------------------------------------------- main


def server_environment(postgres: Postgres, workdir: Path, secret_key: str, port: int, **extra: str) -> dict:
    """Production settings, as a deployment would set them; only the database, paths and throttle are ours."""
    return {
        **os.environ,
        "DATABASE_URL": postgres.url(),
        "SECRET_KEY": secret_key,
        "DEBUG": "false",
        "DATA_DIR": str(workdir),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "AUTH_THROTTLE_RATE": AUTH_THROTTLE_RATE,
        "ANON_THROTTLE_RATE": AUTH_THROTTLE_RATE,
        "BENCHMARK_QUERY_COUNT": "false",
        "NUM_PROXIES": "1",  # nginx in front, as make run sets it
        **extra,
    }


def setup_django(env: dict[str, str]) -> None:
    """This process uses the app's settings too: seeding, the staff user, the password hasher."""
    os.environ.update({name: env[name] for name in ("DATABASE_URL", "SECRET_KEY", "DEBUG", "DATA_DIR")})
    os.environ["DJANGO_SETTINGS_MODULE"] = "healthcare.settings"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def run_benchmark(cleanup: contextlib.ExitStack, plan: Plan) -> Run:
    started = time.monotonic()
    run = Run(plan=plan, load_average=" / ".join(f"{load:.2f}" for load in os.getloadavg()))
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
    say(f"starting a private PostgreSQL in {workdir} ...")
    postgres = Postgres(workdir)
    cleanup.callback(postgres.close)
    postgres.create_database()

    secret_key = secrets.token_urlsafe(48)
    ports = {name: free_port() for name in ("app", "ceiling", "probe")}
    environments = {
        "app": server_environment(postgres, workdir, secret_key, ports["app"]),
        "ceiling": server_environment(postgres, workdir, secret_key, ports["ceiling"]),
        "probe": server_environment(
            postgres, workdir, secret_key, ports["probe"], BENCHMARK_QUERY_COUNT="true", WEB_CONCURRENCY="1"
        ),
    }
    setup_django(environments["app"])
    from django.core.management import call_command
    from django.db import connection

    say("migrating and collecting static files, as make run does ...")
    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        run.postgres_version = cursor.fetchone()[0]

    servers = {}
    for name, wsgi, ready in (
        ("app", "healthcare.wsgi", "/api/health/"),
        ("ceiling", "benchmarks.ceiling:application", "/api/patients/"),
        ("probe", "healthcare.wsgi", "/api/health/"),
    ):
        servers[name] = start_server(name, wsgi, environments[name], workdir, ready, cleanup)
    say(f"servers up: app on :{ports['app']}, ceiling on :{ports['ceiling']}, probe on :{ports['probe']}")

    password = secrets.token_urlsafe(18)
    other_load = OtherLoad(postgres.server.get_postmaster_info().pid, plan.quiet_wait_budget_seconds)
    for data_set in plan.data_sets:
        ids = prepare_data_set(data_set)
        user = ensure_staff_user()
        user.set_password(password)
        user.save()
        token = log_in(servers["app"].port, password)
        context = {"ids": ids, "password": password, "token": token, "other_load": other_load}
        run.ceiling_match[data_set.label] = compare_with_ceiling(servers["app"], servers["ceiling"], context["token"])
        say(f"ceiling vs app: {run.ceiling_match[data_set.label]}")
        for key in data_set.endpoints:
            endpoint = ENDPOINTS[key]
            if endpoint.kind == "login" and run.hash_ms is None:
                run.hash_ms = bare_hash_ms(password)
                say(f"bare password hash: {run.hash_ms:.0f} ms")
            queries = count_queries(servers["probe"], endpoint, context)
            measure(run, servers, data_set, endpoint, context, queries)
        connection.close()
    run.seconds = time.monotonic() - started
    run.quiet_waited_seconds = other_load.waited
    return run


def main() -> int:
    signal.signal(signal.SIGTERM, interrupt)
    if shutil.which("wrk") is None:
        say("wrk is not installed (Debian: apt-get install wrk; `make bench` installs it)")
        return 1
    plan = QUICK_PLAN if QUICK else FULL
    with contextlib.ExitStack() as cleanup:
        try:
            run = run_benchmark(cleanup, plan)
        except KeyboardInterrupt:
            say("interrupted; cleaning up ...")
            return 130
        except (RuntimeError, subprocess.CalledProcessError) as error:
            say(f"failed: {error}")
            return 1
    write_report(run, OUTPUT)
    say(f"wrote {OUTPUT.relative_to(BASE_DIR)} ({run.seconds / 60:.1f} minutes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
