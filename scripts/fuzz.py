"""Fuzz the API with Schemathesis, in-process, against its own OpenAPI schema, on a throwaway database.

    make fuzz
    python scripts/dev.py run -- .venv/bin/python scripts/fuzz.py     (what `make fuzz` runs)

Every operation in /api/schema/ is tested through the WSGI application, signed in as a regular user with
a JWT, in Schemathesis' coverage, fuzzing and stateful phases, with the checks in CHECKS. The exit status
is 1 when a check fails, Schemathesis reports an error, or an operation got no test case.

The database is DATABASE_URL's name + "_fuzz", dropped and recreated on every run (and kept afterwards
for inspection). FUZZ_MAX_EXAMPLES (default 100) bounds the cases per operation in the fuzzing phase and the
scenarios of the stateful one; FUZZ_SEED (default 20251124) makes a run repeatable.
"""

import os
import secrets
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

SEED = int(os.environ.get("FUZZ_SEED", "20251124"))
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "100"))
USERNAME, STAFF_USERNAME = "fuzzer", "fuzz-staff"

# Every built-in check that holds for this API. Left out: positive_data_acceptance (schema-valid bodies
# may still break rules a schema cannot state: a too common password, an id that does not exist, a taken
# username, all 400 by design), object_level_authorization (needs several identities through a Web
# Fuzzing Commons auth file; doctors are readable by everyone on purpose) and max_response_time.
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "ignored_auth",
    "ensure_resource_availability",
    "use_after_free",
]


# Statuses that count as rejecting a schema-violating request: Schemathesis' defaults plus 412 (a stale
# If-Match may be answered before the body is read) and 413 (a body over 1 MiB).
REJECTION_STATUSES = ["400", "401", "403", "404", "405", "406", "409", "412", "413", "415", "422", "428", "429", "5xx"]


def say(message: str) -> None:
    print(f"[fuzz] {message}", flush=True)


def fuzz_database_url(url: str) -> str:
    """The configured database's name + "_fuzz" on the same server, so a run never touches real data."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{parts.path.lstrip('/')}_fuzz"))


def recreate_database(url: str) -> None:
    """Drop and create the fuzz database, so every run starts from the same state."""
    import dj_database_url
    import psycopg
    from psycopg import sql

    config = dj_database_url.parse(url)
    params = {key.lower(): config.get(key) for key in ("HOST", "PORT", "USER", "PASSWORD") if config.get(key)}
    name = sql.Identifier(config["NAME"])
    with psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=5, **params) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(name))


def configure_environment(data_dir: str) -> str:
    """Settings for the run, set before Django reads them; return the fuzz database URL."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        sys.exit("DATABASE_URL is not set: run this through `make fuzz` or `scripts/dev.py run --`.")
    url = fuzz_database_url(url)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "healthcare.settings",
            "DATABASE_URL": url,
            # A key of its own, and a private DATA_DIR: the throttle's file cache must not share counters
            # with `make run`.
            "SECRET_KEY": secrets.token_urlsafe(64),
            "DATA_DIR": data_dir,
            # Login, registration and anonymous requests are throttled (429 is documented); at 20/min and
            # 60/min almost every case of theirs would be a 429 and test nothing else.
            "AUTH_THROTTLE_RATE": "100000/min",
            "ANON_THROTTLE_RATE": "100000/min",
            "ACCESS_TOKEN_MINUTES": "120",
            # The WSGI client calls http://localhost; a .env meant for production must not redirect it.
            "ALLOWED_HOSTS": "localhost",
            "HTTPS": "false",
            "DEBUG": "false",
        }
    )
    return url


def seed_data(password: str) -> int:
    """Rows for path ids to hit: the fuzzer's own, and the staff user's (404 or 403 for the fuzzer).

    Return the id of a staff user's doctor: every user may assign it, and the fuzzer cannot delete it.
    """
    from hospital.models import Doctor, Patient, PatientDoctorMapping, User

    user = User.objects.create_user(USERNAME, f"{USERNAME}@example.com", password)
    staff = User.objects.create_user(STAFF_USERNAME, f"{STAFF_USERNAME}@example.com", password, is_staff=True)
    for owner in (user, staff):
        for number in range(3):
            patient = Patient.objects.create(
                firstname=f"Pat{number}", lastname=owner.username, age=30 + number, gender="F", created_by=owner
            )
            doctor = Doctor.objects.create(
                firstname=f"Doc{number}", lastname=owner.username, specialization="GEN", gender="M", created_by=owner
            )
            PatientDoctorMapping.objects.create(patient=patient, doctor=doctor)
    return doctor.pk


def access_token(application, password: str) -> str:
    """Log in through the API, as a client would."""
    from werkzeug.test import Client

    response = Client(application).post("/api/auth/login/", json={"username": USERNAME, "password": password})
    if response.status_code != 200:
        sys.exit(f"login failed: {response.status_code} {response.get_data(as_text=True)}")
    return response.json["access"]


def add_mapping_links(staff_doctor_id: int) -> None:
    """OpenAPI links that Schemathesis' dependency analysis cannot infer, added as the schema loads.

    It infers links from response fields to path parameters (POST /api/patients/ -> GET, PUT, PATCH,
    DELETE /api/patients/{id}/, and so on), but nothing creates a mapping: both of its ids must exist.
    A new patient plus a doctor nobody but staff can delete makes a new pair every time; the mapping then
    leads to its patient's doctors (inference would wrongly use the mapping's id as patient_id) and to
    its deletion.
    """
    import schemathesis

    @schemathesis.hook("before_load_schema")
    def add_links(_context, raw_schema):
        paths = raw_schema["paths"]
        paths["/api/patients/"]["post"]["responses"]["201"]["links"] = {
            "AssignDoctor": {
                "operationId": "mappings_create",
                "requestBody": {"patient": "$response.body#/id", "doctor": staff_doctor_id},
                # Send this body as it is; by default Schemathesis merges each field into a generated body
                # only now and then.
                "x-schemathesis": {"merge_body": False},
            }
        }
        paths["/api/patients/"]["post"]["responses"]["201"]["links"]["BookAppointment"] = {
            "operationId": "appointments_create",
            "requestBody": {
                "patient": "$response.body#/id",
                "doctor": staff_doctor_id,
                "start": "2031-01-06T09:00:00Z",
                "end": "2031-01-06T09:30:00Z",
            },
            "x-schemathesis": {"merge_body": False},
        }
        paths["/api/mappings/"]["post"]["responses"]["201"]["links"] = {
            "GetPatientDoctors": {
                "operationId": "mappings_retrieve",
                "parameters": {"path.patient_id": "$response.body#/patient"},
            },
            "DeleteMapping": {
                "operationId": "mappings_delete_destroy",
                "parameters": {"path.id": "$response.body#/id"},
            },
        }


def unique_idempotency_keys() -> None:
    """A well-formed Idempotency-Key becomes unique to its case. Keys Schemathesis generates repeat ("0", "a"),
    so a later scenario would get the replay of an earlier one's create, whose record that scenario may have
    deleted since: right for the API (a replay repeats the first answer), but `ensure_resource_availability`
    then reports the created record missing. Replays are covered by the HTTP tests; malformed keys still reach
    the API as generated."""
    import uuid

    import schemathesis

    from hospital.idempotency import IDEMPOTENCY_HEADER, VALID_KEY

    @schemathesis.hook
    def before_call(_context, case, **_kwargs):
        key = (case.headers or {}).get(IDEMPOTENCY_HEADER)
        if isinstance(key, str) and VALID_KEY.fullmatch(key):
            case.headers[IDEMPOTENCY_HEADER] = f"{key[:200]}-{uuid.uuid4().hex}"


def drop_socket_options_for_wsgi() -> None:
    """Work around Schemathesis 4.32.5: `ignored_auth` re-sends a case without its session, and the WSGI
    transport then hands `max_redirects`, `verify` and `cert` to werkzeug, which raises a TypeError."""
    from schemathesis.transport.wsgi import WSGI_TRANSPORT

    send = WSGI_TRANSPORT.send

    def send_without_socket_options(case, **kwargs):
        for name in ("max_redirects", "verify", "cert", "proxies"):
            kwargs.pop(name, None)
        return send(case, **kwargs)

    WSGI_TRANSPORT.send = send_without_socket_options


def schemathesis_config(token: str):
    """The run's configuration, in the shape of schemathesis.toml."""
    from schemathesis.config import SchemathesisConfig

    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            # No state carried between runs: no Hypothesis example database, no Schemathesis cache.
            "cache": {"enabled": False},
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
            "checks": {
                "enabled": False,
                **{name: {"enabled": True} for name in CHECKS},
                "negative_data_rejection": {"enabled": True, "expected-statuses": REJECTION_STATUSES},
            },
            # The scheme drf-spectacular declares for SimpleJWT; only operations that require it get the header.
            "auth": {"openapi": {"jwtAuth": {"bearer": token}}},
        }
    )


class Report:
    """Tallies the engine's events: cases and statuses per operation, checks run, failures, errors."""

    def __init__(self):
        self.cases = defaultdict(Counter)  # operation -> phase -> cases
        self.statuses = defaultdict(Counter)  # operation -> status code -> responses
        self.checks = Counter()
        self.failures = {}  # (operation, check, title, message) -> reproduction
        self.errors = []

    def on_event(self, event) -> None:
        from schemathesis.engine import Status, events

        if isinstance(event, events.PhaseFinished):
            phase = event.phase
            reason = f" ({phase.skip_reason.value})" if phase.skip_reason else ""
            say(f"phase {phase.name.value}: {event.status.value}{reason}")
        elif isinstance(event, events.ScenarioFinished) and event.is_test_scenario:
            recorder = event.recorder
            for case_id, node in recorder.cases.items():
                label = node.value.operation.label
                self.cases[label][event.phase.value] += 1
                interaction = recorder.interactions.get(case_id)
                if interaction is not None and interaction.response is not None:
                    self.statuses[label][interaction.response.status_code] += 1
            for checks in recorder.checks.values():
                for check in checks:
                    self.checks[check.name] += 1
                    if check.status == Status.FAILURE:
                        failure = check.failure_info.failure
                        key = (failure.operation, check.name, failure.title, failure.message)
                        self.failures.setdefault(key, check.failure_info.code_sample)
        elif isinstance(event, events.NonFatalError):
            self.errors.append(f"{event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            raise event.exception
        elif isinstance(event, events.EngineFinished):
            for failure in event.failures:
                self.failures.setdefault((failure.operation, "after_run", failure.title, failure.message), "")
            say(f"engine finished in {event.running_time:.1f}s ({event.stop_reason.value})")

    def print(self, operations: list[str]) -> None:
        say(f"operations: {len(operations)}")
        for label in operations:
            phases = ", ".join(f"{phase} {count}" for phase, count in sorted(self.cases[label].items()))
            statuses = " ".join(f"{code}x{count}" for code, count in sorted(self.statuses[label].items()))
            say(f"  {sum(self.cases[label].values()):5d}  {label}  [{phases}]  {statuses}")
        total = sum(sum(phases.values()) for phases in self.cases.values())
        say(f"generated cases: {total}")
        say("checks run: " + ", ".join(f"{name} x{count}" for name, count in sorted(self.checks.items())))
        for (operation, check, title, message), reproduction in self.failures.items():
            print(f"\nFAILURE [{check}] {operation}: {title}\n{message}\n{reproduction}", flush=True)
        for error in self.errors:
            print(f"\nERROR {error}", flush=True)
        for label in self.untested(operations):
            print(f"\nUNTESTED {label}: no test case was generated", flush=True)
        say(f"failures: {len(self.failures)}, errors: {len(self.errors)}")

    def untested(self, operations: list[str]) -> list[str]:
        return [label for label in operations if not self.cases[label]]

    def passed(self, operations: list[str]) -> bool:
        return not (self.failures or self.errors or self.untested(operations))


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="healthcare-fuzz-") as data_dir:
        url = configure_environment(data_dir)
        recreate_database(url)
        say(f"database {urlsplit(url).path.lstrip('/')!r} recreated; seed {SEED}, max examples {MAX_EXAMPLES}")

        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        password = secrets.token_urlsafe(16)
        staff_doctor_id = seed_data(password)

        import schemathesis
        from schemathesis import engine

        from healthcare.wsgi import application

        # Static files are not collected for this run, and no test needs them.
        warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
        drop_socket_options_for_wsgi()
        add_mapping_links(staff_doctor_id)
        unique_idempotency_keys()
        token = access_token(application, password)
        schema = schemathesis.openapi.from_wsgi("/api/schema/", application, config=schemathesis_config(token))
        operations = [result.ok().label for result in schema.get_all_operations()]
        say(f"checks: {', '.join(CHECKS)}")

        report = Report()
        for event in engine.from_schema(schema).execute():
            report.on_event(event)
        report.print(operations)
    say(f"total time {time.monotonic() - started:.1f}s")
    return 0 if report.passed(operations) else 1


if __name__ == "__main__":
    sys.exit(main())
