"""`make bench`: requests/s, latency, queries and memory of the API under fixed load, against a ceiling.

    python -m benchmarks.run              full run (about 15 minutes on 2 cores); writes BENCHMARKS.md
    BENCH_QUICK=1 python -m benchmarks.run   10k rows only, short rounds; writes .data/bench/BENCHMARKS-quick.md

Everything lives in a temporary directory, removed at the end (also on Ctrl-C): a private PostgreSQL
(pgserver), a fresh migrated database, and three servers, each nginx in front of gunicorn (gunicorn.conf.py)
exactly as `make run` serves the app (scripts/serving.py, the app with its login pool), with production
settings (DEBUG=false):

  app      healthcare.wsgi, the server wrk measures; exactly the production middleware
  ceiling  benchmarks.ceiling: the patients page from one raw query, measured the same way
  probe    healthcare.wsgi with BENCHMARK_QUERY_COUNT=true and one worker, idle except for one request per
           endpoint, whose X-Query-Count header gives the queries per request

For each data set the database is seeded afresh (`seed()`), the audit table emptied and VACUUM ANALYZE run.
Each endpoint is then loaded by wrk from a separate process at its connection counts: a warm-up, then
several rounds, of which the median (by requests/s) is reported; each round also measures the CPU that
other processes took meanwhile, and noisy rounds are retried a little (run_rounds). Requests are made as one
staff user, so that lists are full pages over every row of the data set, except the care-team lists: the same
lists as an owner and as a clinician who sees the owner's patients through assignments (care_team()). Login is
measured alone, at 1 connection, next to the bare time of Django's password hasher in this process; the
mixed run (measure_mixed) measures the patients list with logins alongside.
"""

import contextlib
import functools
import http.client
import json
import os
import platform
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
    # {patient}: a patient's id; {mapped_patient}: a patient with doctors; {doctor}, {date}: a doctor's busiest day
    path: str
    server: str = "app"
    body: str | None = None
    user: str = "staff"  # who asks: staff (sees everything), owner, or clinician (the care team: see care_team())
    connections: tuple[int, ...] = (1, 8)
    queries_before: int | None = None  # statements per request in the last report before issue 11, if measured


APPOINTMENTS_DAY = "/api/appointments/?doctor={doctor}&date={date}"
ENDPOINTS = {
    endpoint.key: endpoint
    for endpoint in (
        Endpoint(
            "ceiling",
            "ceiling (patients page, raw)",
            "ceiling",
            "GET",
            "/api/patients/",
            "ceiling",
            None,
            "staff",
            CONNECTIONS,
        ),
        Endpoint(
            "patients", "GET /api/patients/", "list", "GET", "/api/patients/", connections=CONNECTIONS, queries_before=3
        ),
        Endpoint("patient", "GET /api/patients/<id>/", "detail", "GET", "/api/patients/{patient}/", queries_before=2),
        Endpoint("mappings", "GET /api/mappings/", "list", "GET", "/api/mappings/", queries_before=2),
        Endpoint(
            "doctors_of",
            "GET /api/mappings/<patient_id>/",
            "detail",
            "GET",
            "/api/mappings/{mapped_patient}/",
            queries_before=3,
        ),
        Endpoint("appointments_day", "GET /api/appointments/?doctor=&date=", "list", "GET", APPOINTMENTS_DAY),
        *(
            Endpoint(
                f"{user}_{name}",
                f"GET /api/{name}/ as the {role}",
                "list",
                "GET",
                f"/api/{name}/",
                user=user,
                connections=(8,),
            )
            for name in ("patients", "mappings", "appointments")
            for user, role in (("owner", "owner"), ("clinician", "clinician (care team)"))
        ),
        Endpoint(
            "create", "POST /api/patients/", "create", "POST", "/api/patients/", body=PATIENT_BODY, queries_before=3
        ),
        Endpoint(
            "login", "POST /api/auth/login/", "login", "POST", "/api/auth/login/", connections=(1,), queries_before=3
        ),
    )
}
CARE_TEAM = tuple(
    f"{user}_{name}" for name in ("patients", "mappings", "appointments") for user in ("owner", "clinician")
)


@dataclass(frozen=True)
class DataSet:
    label: str
    patients: int
    doctors: int
    mappings: int
    appointments: int
    endpoints: tuple[str, ...]  # the ceiling first: every other figure is a percentage of it
    mixed: bool = False  # the patients list with logins alongside (measure_mixed)


@dataclass(frozen=True)
class Plan:
    data_sets: tuple[DataSet, ...]
    warmup_seconds: int
    rounds: int
    extra_rounds: int  # at most this many more while other processes load the machine (see run_rounds)
    round_seconds: int
    login_round_seconds: int  # a login takes a whole password hash: longer rounds for enough samples
    quiet_wait_budget_seconds: int  # in all, for other processes to quiet down (see run_rounds)
    mixed_seconds: int  # each half of a mixed pair (measure_mixed)


EVERY_ENDPOINT = (
    "ceiling",
    "patients",
    "patient",
    "mappings",
    "doctors_of",
    "appointments_day",
    *CARE_TEAM,
    "create",
    "login",
)
LOGINS_PER_SECOND = 2
MIXED_CONNECTIONS = 8
FULL = Plan(
    data_sets=(
        DataSet("10k", 10_000, 500, 10_000, 10_000, EVERY_ENDPOINT, mixed=True),
        DataSet("100k", 100_000, 1_000, 100_000, 0, ("ceiling", "patients", "patient", "mappings", "doctors_of")),
    ),
    warmup_seconds=2,
    rounds=3,
    extra_rounds=2,
    round_seconds=5,
    login_round_seconds=10,
    quiet_wait_budget_seconds=180,
    mixed_seconds=10,
)
QUICK_PLAN = Plan(
    data_sets=(DataSet("10k", 10_000, 500, 10_000, 10_000, EVERY_ENDPOINT, mixed=True),),
    warmup_seconds=1,
    rounds=1,
    extra_rounds=1,
    round_seconds=2,
    login_round_seconds=4,
    quiet_wait_budget_seconds=20,
    mixed_seconds=5,
)


# ------------------------------------------------------------------------------------------- seeding


def seed(data_set: DataSet) -> None:
    """Fresh demo data by `manage.py seed_demo` (appointments included)."""
    from django.core.management import call_command

    call_command(
        "seed_demo",
        patients=data_set.patients,
        doctors=data_set.doctors,
        mappings=data_set.mappings,
        appointments=data_set.appointments,
        reset=True,
        seed=SEED,
        verbosity=0,
    )


def ensure_staff_user():
    """The account every request is made as: staff, so lists are full pages over every row."""
    from hospital.models import User

    user, _ = User.objects.get_or_create(
        username=STAFF_USERNAME, defaults={"email": "bench@example.com", "is_staff": True}
    )
    return user


def prepare_data_set(data_set: DataSet) -> dict[str, int | str]:
    """Seed, then start from the same state every time: no audit rows, fresh planner statistics."""
    from django.db import connection

    from hospital.models import AuditEvent, Patient, PatientDoctorMapping

    started = time.monotonic()
    seed(data_set)
    ids = care_team()
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {AuditEvent._meta.db_table}")  # the append-only trigger allows TRUNCATE only
        cursor.execute("VACUUM ANALYZE")
    live = Patient.objects.filter(deleted_at__isnull=True).order_by("id").values_list("id", flat=True)
    mapped = PatientDoctorMapping.objects.order_by("id").values_list("patient_id", flat=True)
    ids |= {"patient": live[live.count() // 2], "mapped_patient": mapped[mapped.count() // 2]}
    ids |= busiest_doctor_day()
    say(f"seeded {data_set.label} in {time.monotonic() - started:.1f} s (incl. VACUUM ANALYZE)")
    return ids


CARE_TEAM_DOCTOR_EMAIL = "bench.doctor@example.com"
CLINICIAN_USERNAME = "bench-clinician"


def care_team() -> dict[str, int | str]:
    """An owner and a clinician who see the same patients: the owner's by ownership, the clinician's through
    assignments to its linked doctor (care-team visibility). Returns the owner's name and how many patients.

    The owner is the demo owner with the most patients; the doctor, the clinician and their assignments are
    the harness's own, made afresh for each data set (seed_demo --reset removes the assignments with the demo
    patients, and keeps the rest)."""
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.db.models import Count

    from hospital.access import Role
    from hospital.models import Doctor, User

    staff = ensure_staff_user()
    owner = (
        User.objects.filter(is_staff=False, groups=None, patients__deleted_at__isnull=True)
        .annotate(n=Count("patients"))
        .order_by("-n", "pk")
        .first()
    )
    doctor, _ = Doctor.objects.get_or_create(
        email=CARE_TEAM_DOCTOR_EMAIL,
        defaults={
            "firstname": "Bench",
            "lastname": "Doctor",
            "specialization": "GEN",
            "gender": "F",
            "created_by": staff,
        },
    )
    clinician, _ = User.objects.update_or_create(
        username=CLINICIAN_USERNAME, defaults={"email": "bench.clinician@example.com", "doctor": doctor}
    )
    clinician.groups.set([Group.objects.get_or_create(name=Role.CLINICIAN)[0]])
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM hospital_patientdoctormapping WHERE doctor_id = %s", [doctor.pk])
        cursor.execute(
            "INSERT INTO hospital_patientdoctormapping (patient_id, doctor_id, assigned_at) "
            "SELECT id, %s, now() FROM hospital_patient WHERE created_by_id = %s AND deleted_at IS NULL",
            [doctor.pk, owner.pk],
        )
        assigned = cursor.rowcount
    return {"owner_username": owner.username, "care_team_patients": assigned}


def busiest_doctor_day() -> dict[str, int | str]:
    """The doctor and clinic day with the most appointments: GET /api/appointments/?doctor=&date= asks for it."""
    from django.conf import settings
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT doctor_id, (start AT TIME ZONE %s)::date AS day, count(*) FROM hospital_appointment "
            "GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 1",
            [str(settings.CLINIC_TIME_ZONE)],
        )
        row = cursor.fetchone()
    if row is None:
        return {"doctor": 1, "date": "2000-01-01", "day_appointments": 0}
    return {"doctor": row[0], "date": row[1].isoformat(), "day_appointments": row[2]}


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


def start_server(
    name: str, wsgi: str, env: dict[str, str], workdir: Path, ready_path: str, cleanup, login_workers: int = 0
) -> Server:
    """nginx and gunicorn as `make run` starts them (with its login pool, if `login_workers`), in sessions of
    their own: Ctrl-C reaches only this script, which stops the servers (`cleanup`) before PostgreSQL."""
    port = int(env["PORT"])
    log = workdir / f"{name}.log"
    stack = Stack(wsgi=wsgi, env=env, host="127.0.0.1", port=port, login_workers=login_workers)
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


def log_in(port: int, password: str, username: str = STAFF_USERNAME) -> str:
    status, _, body = fetch(port, "POST", "/api/auth/login/", body=login_body(password, username))
    if status != 200:
        raise RuntimeError(f"login failed: {status} {body[:200]!r}")
    return json.loads(body)["access"]


def login_body(password: str, username: str = STAFF_USERNAME) -> str:
    return json.dumps({"username": username, "password": password})


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
    data_facts: dict[str, dict] = field(default_factory=dict)  # data set -> prepare_data_set()'s ids and counts
    mixed: list["Mixed"] = field(default_factory=list)
    login_workers: int = 0
    web_workers: int = 0

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
    token = context["tokens"][endpoint.user] if endpoint.server == "app" and endpoint.kind != "login" else ""
    body = login_body(context["password"]) if endpoint.kind == "login" else endpoint.body
    plan = run.plan
    seconds = plan.login_round_seconds if endpoint.kind == "login" else plan.round_seconds
    for connections in endpoint.connections:
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


class LoginLoad:
    """Real logins (POST /api/auth/login/) at a steady rate, each in a thread of its own so that a slow one
    does not delay the next (an open loop, like users signing in), until stop()."""

    def __init__(self, port: int, body: str, per_second: float):
        self.port, self.body, self.interval = port, body, 1 / per_second
        self.latencies_ms: list[float] = []
        self.errors = 0
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.scheduler = threading.Thread(target=self.schedule, daemon=True)

    def __enter__(self):
        self.scheduler.start()
        return self

    def __exit__(self, *exc_info):
        self.stopping.set()
        self.scheduler.join()
        for thread in self.threads:
            thread.join()

    def schedule(self) -> None:
        next_at = time.monotonic()
        while not self.stopping.is_set():
            thread = threading.Thread(target=self.log_in, daemon=True)
            thread.start()
            self.threads.append(thread)
            next_at += self.interval
            self.stopping.wait(max(0.0, next_at - time.monotonic()))

    def log_in(self) -> None:
        started = time.perf_counter()
        try:
            status = fetch(self.port, "POST", "/api/auth/login/", body=self.body)[0]
        except OSError:
            status = 0
        self.latencies_ms.append((time.perf_counter() - started) * 1000)
        self.errors += status != 200


@dataclass
class Mixed:
    """The patients list with and without logins alongside: pairs of rounds, the median of each side."""

    data_set: str
    connections: int
    without: Round
    with_logins: Round
    pairs_p99_ms: list[tuple[float, float]]  # (without, with) of every pair
    logins: int
    login_p50_ms: float
    login_p99_ms: float
    login_errors: int
    other_load: float


def measure_mixed(run: Run, servers: dict[str, Server], data_set: DataSet, context: dict) -> None:
    """GET /api/patients/ at MIXED_CONNECTIONS, in pairs of rounds: alone, then with LOGINS_PER_SECOND real
    logins alongside (another account's, so the list's token and user cache are untouched)."""
    app, plan, meter = servers["app"], run.plan, context["other_load"]
    token = context["tokens"]["staff"]
    login = login_body(context["password"], context["ids"]["owner_username"])
    one_round = functools.partial(
        run_wrk, app.port, "/api/patients/", MIXED_CONNECTIONS, plan.mixed_seconds, token, None
    )
    run_wrk(app.port, "/api/patients/", MIXED_CONNECTIONS, plan.warmup_seconds, token, None)
    alone, together, loads, latencies, errors = [], [], [], [], 0
    for _ in range(plan.rounds):
        meter.wait_until_quiet()
        measured, load = meter.during(one_round)
        alone.append(measured)
        loads.append(load)
        with LoginLoad(app.port, login, LOGINS_PER_SECOND) as logins:
            measured, load = meter.during(one_round)
        together.append(measured)
        loads.append(load)
        latencies += logins.latencies_ms
        errors += logins.errors + measured.errors

    def median_by_p99(rounds: list[Round]) -> Round:
        return sorted(rounds, key=lambda r: r.p99_ms)[(len(rounds) - 1) // 2]

    latencies.sort()
    mixed = Mixed(
        data_set=data_set.label,
        connections=MIXED_CONNECTIONS,
        without=median_by_p99(alone),
        with_logins=median_by_p99(together),
        pairs_p99_ms=[(a.p99_ms, b.p99_ms) for a, b in zip(alone, together, strict=True)],
        logins=len(latencies),
        login_p50_ms=latencies[len(latencies) // 2] if latencies else 0.0,
        login_p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0,
        login_errors=errors,
        other_load=max(loads),
    )
    run.mixed.append(mixed)
    say(
        f"{data_set.label:>4} mixed: patients c={MIXED_CONNECTIONS} p99 {mixed.without.p99_ms:.1f} ms alone, "
        f"{mixed.with_logins.p99_ms:.1f} ms with {LOGINS_PER_SECOND} logins/s ({mixed.logins} logins, p50 "
        f"{mixed.login_p50_ms:.0f} ms, p99 {mixed.login_p99_ms:.0f} ms, {errors} errors), "
        f"other load {mixed.other_load:.0f}%"
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
    token = "" if endpoint.kind == "login" else context["tokens"][endpoint.user]
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


def check_care_team(app: Server, tokens: dict[str, str]) -> None:
    """The owner and the clinician must see the same rows of every list, or comparing them says nothing."""
    for name in ("patients", "mappings", "appointments"):
        pages = {user: fetch(app.port, "GET", f"/api/{name}/", token=tokens[user]) for user in ("owner", "clinician")}
        owner, clinician = pages["owner"], pages["clinician"]
        if owner[0] != 200 or owner[2] != clinician[2] or owner[1]["X-Total-Count"] != clinician[1]["X-Total-Count"]:
            raise RuntimeError(f"/api/{name}/: the owner and the clinician do not see the same rows")
        if len(json.loads(owner[2])) < 50:
            raise RuntimeError(f"/api/{name}/: the owner's first page is not full")


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
    """Issue 11's targets (and the earlier ones still in force)."""
    targets = []

    def add(name: str, result, value, passed, margin) -> None:
        if result is None:
            targets.append(Target(name, "not measured", None, ""))
        else:
            targets.append(Target(name, value(result), passed(result), margin(result)))

    def rps(result: Result) -> float:
        return result.median.requests_per_second

    patients_10k = run.find("10k", "patients", 8)
    add(
        "GET /api/patients/ at 10k, 8 connections: >= 50% of the ceiling's req/s",
        patients_10k,
        lambda r: f"{r.percent_of_ceiling:.1f}% ({rps(r):.0f} of {r.ceiling_rps:.0f} req/s)",
        lambda r: r.percent_of_ceiling >= 50,
        lambda r: f"{r.percent_of_ceiling - 50:+.1f} points",
    )
    add(
        "GET /api/patients/ at 10k, 8 connections: p99 < 25 ms",
        patients_10k,
        lambda r: f"{r.median.p99_ms:.1f} ms",
        lambda r: r.median.p99_ms < 25,
        lambda r: f"{r.median.p99_ms - 25:+.1f} ms",
    )
    mixed = next((m for m in run.mixed if m.data_set == "10k"), None)
    add(
        f"GET /api/patients/ at 10k, {MIXED_CONNECTIONS} connections, {LOGINS_PER_SECOND} logins/s alongside: "
        "p99 < 60 ms",
        mixed,
        lambda m: f"{m.with_logins.p99_ms:.1f} ms (alone in the same run: {m.without.p99_ms:.1f} ms)",
        lambda m: m.with_logins.p99_ms < 60,
        lambda m: f"{m.with_logins.p99_ms - 60:+.1f} ms",
    )
    patients_100k = run.find("100k", "patients", 8)
    add(
        "GET /api/patients/ at 100k, 8 connections: req/s within 10% of the 10k figure",
        patients_100k if patients_10k else None,
        lambda r: f"{rps(r):.0f} vs {rps(patients_10k):.0f} req/s ({100 * rps(r) / rps(patients_10k):.0f}%)",
        lambda r: rps(r) >= 0.9 * rps(patients_10k),
        lambda r: f"{100 * rps(r) / rps(patients_10k) - 100:+.0f}%",
    )
    for key in ("mappings", "appointments_day"):
        result = run.find("10k", key, 8)
        add(
            f"{ENDPOINTS[key].label} at 10k, 8 connections: >= 60% of the patient list's req/s",
            result if patients_10k else None,
            lambda r: f"{rps(r):.0f} req/s ({100 * rps(r) / rps(patients_10k):.0f}% of {rps(patients_10k):.0f})",
            lambda r: rps(r) >= 0.6 * rps(patients_10k),
            lambda r: f"{100 * rps(r) / rps(patients_10k) - 60:+.0f} points",
        )
    for name in ("patients", "mappings", "appointments"):
        owner, clinician = run.find("10k", f"owner_{name}", 8), run.find("10k", f"clinician_{name}", 8)
        add(
            f"GET /api/{name}/ at 10k, 8 connections: as a clinician (care team) within 10% of the owner's req/s",
            clinician if owner else None,
            lambda r, owner=owner: f"{rps(r):.0f} vs {rps(owner):.0f} req/s ({100 * rps(r) / rps(owner):.0f}%)",
            lambda r, owner=owner: rps(r) >= 0.9 * rps(owner),
            lambda r, owner=owner: f"{100 * rps(r) / rps(owner) - 100:+.0f}%",
        )
    for key, endpoint in ENDPOINTS.items():
        measured = [r for r in run.results if r.endpoint.key == key and r.queries is not None]
        if not measured:
            continue
        worst = max(r.queries for r in measured)
        if endpoint.queries_before is not None:
            limit, why = endpoint.queries_before, f"no more than before ({endpoint.queries_before})"
        elif endpoint.user == "clinician":
            owner = [r.queries for r in run.results if r.endpoint.key == key.replace("clinician", "owner")]
            limit, why = max(owner, default=3), "no more than the owner's list"
        else:
            limit, why = 3, "no more than the patient list before (3)"
        targets.append(
            Target(
                f"{endpoint.label}: statements per request, the audit row included: {why}",
                str(worst),
                worst <= limit,
                f"{worst - limit:+d}",
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
    if run.mixed:
        lines += [
            "",
            f"### Mixed load: GET /api/patients/ with {LOGINS_PER_SECOND} logins/s alongside",
            "",
            "Pairs of rounds of the patients list at the same connections, alone and then with real logins "
            f"(POST /api/auth/login/, another account's) started at {LOGINS_PER_SECOND} per second from another "
            "thread whatever the earlier ones' progress; the round with the median p99 of each side is shown.",
            "",
            "| Rows | Connections | Alone: req/s | p50 ms | p99 ms | With logins: req/s | p50 ms | p99 ms "
            "| Pairs' p99 ms (alone / with) | Logins (p50 / p99 ms) | Errors | Other load |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for m in run.mixed:
            pairs = ", ".join(f"{a:.0f} / {b:.0f}" for a, b in m.pairs_p99_ms)
            lines.append(
                f"| {m.data_set} | {m.connections} | {m.without.requests_per_second:.1f} | {m.without.p50_ms:.2f} | "
                f"{m.without.p99_ms:.2f} | {m.with_logins.requests_per_second:.1f} | {m.with_logins.p50_ms:.2f} | "
                f"{m.with_logins.p99_ms:.2f} | {pairs} | {m.logins} ({m.login_p50_ms:.0f} / {m.login_p99_ms:.0f}) | "
                f"{m.login_errors} | {m.other_load:.0f}% |"
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
        f"{d.label}: {d.patients:,} patients, {d.doctors:,} doctors, {d.mappings:,} mappings, "
        f"{d.appointments:,} appointments"
        for d in plan.data_sets
    )
    facts = "; ".join(
        f"{label}: the owner ({ids['owner_username']}) has {ids['care_team_patients']:,} patients; the busiest "
        f"doctor-day has {ids['day_appointments']} appointments"
        for label, ids in run.data_facts.items()
    )
    pool = (
        f"and, as `make run` starts it, a login pool of {run.login_workers} worker(s) at a lower CPU priority "
        "(`nice` 10) to which nginx sends the login, registration and admin login paths"
        if run.login_workers
        else "and no login pool (`LOGIN_CONCURRENCY=0`: the app's workers serve logins too)"
    )
    return [
        "One process runs everything (`python -m benchmarks.run`): a private PostgreSQL (pgserver, default "
        "configuration) in a temporary directory, a migrated database, and three servers started as `make run` "
        "starts one (scripts/serving.py: nginx on a loopback port in front of `gunicorn -c gunicorn.conf.py` on a "
        "unix socket; `DEBUG=false`, a 64-character random `SECRET_KEY`): the app, the ceiling "
        f"(`benchmarks/ceiling.py`) and a query-count probe. The app and the ceiling have {run.web_workers} sync "
        f"workers each (`WEB_CONCURRENCY`'s default), the app {pool}. wrk keeps its connections to nginx open; "
        "nginx opens a new unix-socket connection to gunicorn for each request (the sync worker closes it after "
        "each answer). The app's request log (one JSON line per request) goes to a file.",
        f"Data sets, each seeded afresh by `manage.py seed_demo --reset` before its measurements: {data_sets}. "
        "Then the audit table is emptied (TRUNCATE) and `VACUUM ANALYZE` runs, so every data set starts from the "
        "same state; the audit table then grows by one row per measured request, as in production. (The 1k data "
        "set of earlier reports is gone: it added no finding the 10k one does not show, and the time went to the "
        "care-team, appointment and mixed measurements.)",
        "Load: wrk (one thread, `--latency`) in its own process: the patients list and the ceiling at 1, 8 and 32 "
        "connections, the care-team lists at 8 (their target's), login at 1, every other endpoint at 1 and 8 (32 "
        "connections showed only the same throughput with longer queues). A "
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
        f"Mixed load: {plan.rounds} pairs of {plan.mixed_seconds} s rounds of GET /api/patients/ at "
        f"{MIXED_CONNECTIONS} connections, the first of each pair alone, the second with {LOGINS_PER_SECOND} real "
        "logins per second alongside (a thread of the harness starts one every half second, each on a connection "
        "of its own, whatever the earlier ones' progress, as users signing in would).",
        f"Every request but the care-team lists is made as one staff user (`{STAFF_USERNAME}`), which logs in once "
        "per data set: staff see every patient, so the lists are full pages of 50 over all rows and their count "
        "covers the whole table. Detail requests ask for the patient in the middle of the id range; "
        "`/api/mappings/<patient_id>/` for the patient of the middle mapping; `/api/appointments/?doctor=&date=` "
        "for the doctor and clinic day with the most appointments.",
        "Care-team lists: the same list as the demo owner with the most patients (its own patients) and as a "
        f"clinician (`{CLINICIAN_USERNAME}`) linked to a doctor to whom the harness assigns exactly those patients, "
        "so both see the same rows (checked: same first page and X-Total-Count for every list) by different "
        f"rules: ownership, and assignment to the linked doctor. {facts}.",
        "The ceiling answers the app's first patients page (as that staff user sees it) from one raw psycopg "
        "query (the count and the page together) on a connection each worker keeps, with no framework, "
        "authentication or audit row. Checked against the app on every data set: "
        + "; ".join(f"{label}: {verdict}" for label, verdict in run.ceiling_match.items())
        + ".",
        "Queries per request: one request per endpoint to the probe server (the app with "
        "`BENCHMARK_QUERY_COUNT=true`, one worker), whose middleware counts every statement Django sends through "
        "`connection.execute_wrapper`, the audit row included (written by the page's own statement where it can "
        "be). Not counted: Django's connection health check (`SELECT 1` on the first query of each request, "
        "`CONN_HEALTH_CHECKS`) and BEGIN/COMMIT, which psycopg sends itself. The measured app runs without that "
        "middleware.",
        f"`AUTH_THROTTLE_RATE` and `ANON_THROTTLE_RATE` `={AUTH_THROTTLE_RATE}`, so that logins are measured rather "
        "than refused with 429; the throttles' store reads and writes still happen on each login. Every other "
        "setting is the default.",
        "Worker RSS: `VmRSS` from /proc/<pid>/status of each child of the app's (or ceiling's) gunicorn master, "
        "read right after each measurement.",
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
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from hospital.models import User

    run.login_workers = settings.LOGIN_CONCURRENCY  # as make run starts the app: with its login pool
    run.web_workers = settings.WEB_CONCURRENCY
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
        login_workers = run.login_workers if name == "app" else 0
        servers[name] = start_server(name, wsgi, environments[name], workdir, ready, cleanup, login_workers)
    say(f"servers up: app on :{ports['app']}, ceiling on :{ports['ceiling']}, probe on :{ports['probe']}")

    password = secrets.token_urlsafe(18)
    other_load = OtherLoad(postgres.server.get_postmaster_info().pid, plan.quiet_wait_budget_seconds)
    for data_set in plan.data_sets:
        ids = prepare_data_set(data_set)
        run.data_facts[data_set.label] = ids
        tokens = {}
        for user, username in (
            ("staff", STAFF_USERNAME),
            ("owner", ids["owner_username"]),
            ("clinician", CLINICIAN_USERNAME),
        ):
            account = ensure_staff_user() if user == "staff" else User.objects.get(username=username)
            account.set_password(password)
            account.save()
            tokens[user] = log_in(servers["app"].port, password, username)
        context = {"ids": ids, "password": password, "tokens": tokens, "other_load": other_load}
        run.ceiling_match[data_set.label] = compare_with_ceiling(servers["app"], servers["ceiling"], tokens["staff"])
        say(f"ceiling vs app: {run.ceiling_match[data_set.label]}")
        if set(CARE_TEAM) & set(data_set.endpoints):
            check_care_team(servers["app"], tokens)
        for key in data_set.endpoints:
            endpoint = ENDPOINTS[key]
            if endpoint.kind == "login" and run.hash_ms is None:
                run.hash_ms = bare_hash_ms(password)
                say(f"bare password hash: {run.hash_ms:.0f} ms")
            queries = count_queries(servers["probe"], endpoint, context)
            measure(run, servers, data_set, endpoint, context, queries)
        if data_set.mixed:
            measure_mixed(run, servers, data_set, context)
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
