"""`manage.py seed_demo`: realistic demo patients, doctors and assignments, fast, with a progress bar.

Rows go in with PostgreSQL COPY, several times faster than bulk_create. Both bypass django-simple-history's
signals, so each record's first ("created") version is written alongside it: the history endpoints then
work on demo data as on any other.

Demo accounts are marked (DEMO_MARKER). --reset and --delete remove them and all they own, and refuse,
changing nothing, when that would take or alter other accounts' data.
"""

import argparse
import math
import random
import time
import unicodedata
from datetime import timedelta
from itertools import accumulate, islice

from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.models import ProtectedError
from django.utils import timezone
from psycopg import sql

from hospital.management.demo_names import FEMALE_FIRST_NAMES, LAST_NAMES, MALE_FIRST_NAMES
from hospital.models import Doctor, Gender, Patient, PatientDoctorMapping, Specialization, User
from hospital.usernames import username_key

DEMO_PASSWORD = "demo-password-123"  # noqa: S105 (documented, for demo accounts only)
# Demo accounts carry this last name, which registration cannot set: --reset never takes a real account.
DEMO_MARKER = "(demo data)"
STAFF_USERNAME = "demo-staff"
DEFAULT_SEED = 42
BATCH_SIZE = 10_000

# A population pyramid: even up to 60, then thinning out, with the odd centenarian.
AGES = range(101)
AGE_CUM_WEIGHTS = list(
    accumulate(1.0 if age < 18 else 1.2 if age < 60 else 1.2 * math.exp(-(((age - 60) / 22) ** 2)) for age in AGES)
)
GENDERS = [Gender.FEMALE, Gender.MALE, Gender.OTHER]
GENDER_CUM_WEIGHTS = [50, 98, 100]
FIRST_NAMES = {
    Gender.FEMALE: FEMALE_FIRST_NAMES,
    Gender.MALE: MALE_FIRST_NAMES,
    Gender.OTHER: FEMALE_FIRST_NAMES + MALE_FIRST_NAMES,
}
# Share of doctors (percent) and the usual range of appointments a day, by specialization.
SPECIALIZATIONS = {
    Specialization.GENERAL_PRACTICE: (30, 16, 30),
    Specialization.PEDIATRICS: (12, 14, 28),
    Specialization.CARDIOLOGY: (9, 10, 20),
    Specialization.ORTHOPEDICS: (9, 10, 20),
    Specialization.PSYCHIATRY: (8, 6, 12),
    Specialization.DERMATOLOGY: (7, 15, 30),
    Specialization.NEUROLOGY: (7, 8, 16),
    Specialization.ONCOLOGY: (7, 6, 14),
    Specialization.RADIOLOGY: (6, 20, 40),
    Specialization.ENT: (5, 12, 24),
}
PATIENT_EMAIL_SHARE = 0.7  # of patients aged 16 or more; children have none
DOCTOR_EMAIL_SHARE = 0.9
PATIENTS_SINCE = timedelta(days=2 * 365)
DOCTORS_SINCE = timedelta(days=3 * 365)

# The columns each generator yields, in order; then HISTORY_COLUMNS, for the record's history table.
PATIENT_COLUMNS = ["id", "firstname", "lastname", "age", "gender", "email", "created_by_id", "created_at", "updated_at"]
DOCTOR_COLUMNS = ["id", "firstname", "lastname", "specialization", "max_appointments_per_day", "gender", "email"]
DOCTOR_COLUMNS += ["created_by_id", "created_at", "updated_at"]
MAPPING_COLUMNS = ["id", "patient_id", "doctor_id", "assigned_at"]
HISTORY_COLUMNS = ["history_date", "history_type", "history_user_id"]
CREATED = "+"

# Letters that Unicode does not decompose into an ASCII letter and a mark.
ASCII_LETTERS = str.maketrans({"\u0131": "i", "ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "ß": "ss", "æ": "ae", "đ": "d"})


def count(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return number


def email_part(name: str) -> str:
    """`Nguyễn` -> `nguyen`, `O'Brien` -> `obrien`: what people type in an address."""
    folded = unicodedata.normalize("NFKD", name.translate(ASCII_LETTERS)).encode("ascii", "ignore").decode()
    return "".join(character for character in folded.lower() if character.isalnum())


def spread_over(rng: random.Random, number: int, now, since: timedelta) -> list:
    """`number` moments of the last `since`, oldest first, so that ids grow with time as they would."""
    return [now - since * fraction for fraction in sorted((rng.random() for _ in range(number)), reverse=True)]


def reserve_ids(cursor, model, number: int) -> list[int]:
    """Ids from the table's own sequence, known before the rows exist (COPY returns none)."""
    cursor.execute(
        "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
        [model._meta.db_table, number],
    )
    return [pk for (pk,) in cursor.fetchall()]


def copy_rows(cursor, table: str, columns: list[str], rows) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with connection.wrap_database_errors, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


class Progress:
    """A bar redrawn in place on a terminal; elsewhere (a log, CI) a line at every tenth."""

    WIDTH = 30

    def __init__(self, out, label: str, total: int, *, quiet: bool):
        self.out, self.label, self.total = out, label, total
        self.quiet = quiet or total == 0
        self.in_place = out.isatty()
        self.done = self.tenths_shown = 0
        self.started = time.monotonic()

    def advance(self, number: int) -> None:
        self.done += number
        if self.quiet:
            return
        if self.in_place:
            self.out.write(f"\r{self.line()}", ending="\n" if self.done >= self.total else "")
            self.out.flush()
        elif (tenths := 10 * self.done // self.total) > self.tenths_shown:
            self.tenths_shown = tenths
            self.out.write(self.line())

    def line(self) -> str:
        filled = self.WIDTH * self.done // self.total
        rate = self.done / max(time.monotonic() - self.started, 1e-6)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        return f"{self.label:<9} [{bar}] {self.done:,}/{self.total:,}  {rate:,.0f}/s"


class Command(BaseCommand):
    help = (
        "Create realistic demo patients, doctors and assignments, owned by demo accounts demo1..demoN "
        f"(password {DEMO_PASSWORD!r}). A second run adds more; --reset replaces the previous demo data."
    )

    def add_arguments(self, parser):
        parser.add_argument("--patients", type=count, default=1000, help="Patients to create (default 1000).")
        parser.add_argument("--doctors", type=count, default=50, help="Doctors to create (default 50).")
        parser.add_argument(
            "--mappings",
            type=count,
            default=2000,
            help="Assignments: distinct (patient, doctor) pairs of the new patients and doctors (default 2000).",
        )
        parser.add_argument("--users", type=count, default=10, help="Demo accounts demo1..demoN (default 10).")
        parser.add_argument(
            "--staff", action="store_true", help=f"Also create {STAFF_USERNAME!r}, a staff account: it sees all."
        )
        parser.add_argument("--password", default=DEMO_PASSWORD, help="Password of the demo accounts.")
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="Random seed: same seed, same data.")
        parser.add_argument("--reset", action="store_true", help="Delete the previous demo data first.")
        parser.add_argument("--delete", action="store_true", help="Only delete the demo data and accounts.")

    def handle(self, *args, **options):
        patients, doctors, mappings, users = (options[name] for name in ["patients", "doctors", "mappings", "users"])
        if mappings > patients * doctors:
            raise CommandError(
                f"--mappings {mappings:,} is more than the {patients * doctors:,} distinct (patient, doctor) pairs "
                f"that --patients {patients:,} and --doctors {doctors:,} allow."
            )
        if (patients or doctors) and not users:
            raise CommandError("--users must be at least 1: every patient and doctor has an owner.")
        self.quiet = options["verbosity"] == 0
        started = time.monotonic()
        # One transaction: an interrupted or refused run leaves the database as it was.
        with transaction.atomic(), connection.cursor() as cursor:
            if options["reset"] or options["delete"]:
                self.delete_demo_data(cursor)
            if options["delete"]:
                return
            owners = self.demo_accounts(users, staff=options["staff"], password=options["password"])
            demo_owned = {"created_by__last_name": DEMO_MARKER}
            before = (Patient.objects.filter(**demo_owned).count(), Doctor.objects.filter(**demo_owned).count())
            # Seeded by what is there already, so that a run without --reset adds new people, not the same again.
            rng = random.Random(f"{options['seed']}:{before[0]}:{before[1]}")  # noqa: S311 (not a secret)
            now = timezone.now()
            generated = self.patients(rng, cursor, patients, owners, now, before[0])
            patient_rows = self.insert(cursor, "patients", Patient, PATIENT_COLUMNS, patients, generated)
            generated = self.doctors(rng, cursor, doctors, owners, now, before[1])
            doctor_rows = self.insert(cursor, "doctors", Doctor, DOCTOR_COLUMNS, doctors, generated)
            generated = self.mappings(rng, cursor, mappings, patient_rows, doctor_rows, now)
            self.insert(cursor, "mappings", PatientDoctorMapping, MAPPING_COLUMNS, mappings, generated)
            # Fresh statistics, so that the first demo queries get good plans without waiting for autovacuum.
            cursor.execute("ANALYZE hospital_patient, hospital_doctor, hospital_patientdoctormapping")
        elapsed = time.monotonic() - started
        records = patients + doctors + mappings
        self.say(
            f"Created {patients:,} patients, {doctors:,} doctors and {mappings:,} assignments, each with its first "
            f"history version, in {elapsed:.1f}s ({records / max(elapsed, 1e-6):,.0f} records/s)."
        )
        if users or options["staff"]:
            names = ([f"demo1..demo{users}" if users > 1 else "demo1"] if users else []) + (
                [f"{STAFF_USERNAME} (staff)"] if options["staff"] else []
            )
            self.say(f"Log in as {' or '.join(names)} with the password {options['password']!r}.")

    def say(self, message: str) -> None:
        if not self.quiet:
            self.stdout.write(message)

    # ---------------------------------------------------------------------------------------- accounts

    def demo_accounts(self, number: int, *, staff: bool, password: str) -> list[int]:
        """The ids of demo1..demo<number>, created if missing; existing ones get `password` if theirs differs."""
        usernames = [f"demo{serial}" for serial in range(1, number + 1)] + ([STAFF_USERNAME] if staff else [])
        if not usernames:
            return []
        # Demo names are their own canonical form (lower-case ASCII).
        existing = {user.username_key: user for user in User.objects.filter(username_key__in=usernames)}
        taken = sorted(user.username for user in existing.values() if user.last_name != DEMO_MARKER)
        if taken:
            raise CommandError(
                f"{', '.join(taken)}: taken by an account that is not a demo account. "
                "Rename that account, or use fewer --users."
            )
        try:
            validate_password(password, user=User(username=usernames[0], email=f"{usernames[0]}@example.org"))
        except ValidationError as error:
            raise CommandError(f"--password: {' '.join(error.messages)}") from None
        # One hash for every account, checked once per distinct hash: PBKDF2 is slow on purpose.
        current = [
            digest for digest in {user.password for user in existing.values()} if check_password(password, digest)
        ]
        hashed = current[0] if current else make_password(password)
        User.objects.filter(pk__in=[user.pk for user in existing.values() if user.password != hashed]).update(
            password=hashed
        )
        created = User.objects.bulk_create(
            User(
                username=username,
                username_key=username_key(username),
                email=f"{username}@example.org",
                first_name="Demo",
                last_name=DEMO_MARKER,
                password=hashed,
                is_staff=username == STAFF_USERNAME,
            )
            for username in usernames
            if username not in existing
        )
        ids = {**{name: user.pk for name, user in existing.items()}, **{user.username: user.pk for user in created}}
        return [ids[username] for username in usernames[:number]]

    def delete_demo_data(self, cursor) -> None:
        """Delete the demo accounts and all they own; refuse, changing nothing, if others' data would go too.

        Raw SQL for the big tables: the ORM would load every row to write a "deleted" version of each."""
        started = time.monotonic()
        demo = list(User.objects.filter(last_name=DEMO_MARKER).values_list("pk", flat=True))
        others_assigned = PatientDoctorMapping.objects.filter(doctor__created_by__in=demo).exclude(
            patient__created_by__in=demo
        )
        if others_assigned.exists():
            raise CommandError(
                f"Other accounts' patients have {others_assigned.count():,} assignments to demo doctors; "
                "delete those assignments first (DELETE /api/mappings/<id>/delete)."
            )
        # Deleting an account blanks the author of the versions it made: keep that for others' records.
        others_changed = (
            PatientDoctorMapping.history.filter(history_user__in=demo).exclude(patient__created_by__in=demo).count()
            + Patient.history.filter(history_user__in=demo).exclude(created_by__in=demo).count()
            + Doctor.history.filter(history_user__in=demo).exclude(created_by__in=demo).count()
        )
        if others_changed:
            raise CommandError(
                f"Demo accounts made {others_changed:,} changes to other accounts' records, and their history "
                "would lose its author. Leave the demo data in place, or use a database of its own for demos."
            )
        PatientDoctorMapping.history.filter(patient__created_by__in=demo).delete()
        Patient.history.filter(created_by__in=demo).delete()
        Doctor.history.filter(created_by__in=demo).delete()
        cursor.execute(
            "DELETE FROM hospital_patientdoctormapping"
            " WHERE patient_id IN (SELECT id FROM hospital_patient WHERE created_by_id = ANY(%s))",
            [demo],
        )
        mappings = cursor.rowcount
        cursor.execute("DELETE FROM hospital_patient WHERE created_by_id = ANY(%s)", [demo])
        patients = cursor.rowcount
        cursor.execute("DELETE FROM hospital_doctor WHERE created_by_id = ANY(%s)", [demo])
        doctors = cursor.rowcount
        try:
            User.objects.filter(pk__in=demo).delete()
        except ProtectedError as error:
            example = next(iter(error.protected_objects))
            raise CommandError(
                f"{len(error.protected_objects):,} records of other accounts refer to demo accounts (such as "
                f"{type(example).__name__.lower()} {example.pk}, deleted by one); --reset leaves them alone."
            ) from None
        self.say(
            f"Deleted {len(demo):,} demo accounts, {patients:,} patients, {doctors:,} doctors and {mappings:,} "
            f"assignments in {time.monotonic() - started:.1f}s."
        )

    # ----------------------------------------------------------------------------------------- records

    def insert(self, cursor, label: str, model, columns: list[str], total: int, rows) -> list[tuple]:
        """COPY `rows` (`columns`, then HISTORY_COLUMNS) into the model's table and its history table, in
        batches, and return them."""
        table, history_table = model._meta.db_table, model.history.model._meta.db_table
        progress = Progress(self.stdout, label, total, quiet=self.quiet)
        written = []
        iterator = iter(rows)
        while batch := list(islice(iterator, BATCH_SIZE)):
            copy_rows(cursor, table, columns, (row[: len(columns)] for row in batch))
            copy_rows(cursor, history_table, columns + HISTORY_COLUMNS, batch)
            written.extend(batch)
            progress.advance(len(batch))
        return written

    def patients(self, rng, cursor, number: int, owners: list[int], now, numbered_from: int):
        ids = reserve_ids(cursor, Patient, number)
        ages = rng.choices(AGES, cum_weights=AGE_CUM_WEIGHTS, k=number)
        genders = rng.choices(GENDERS, cum_weights=GENDER_CUM_WEIGHTS, k=number)
        created = spread_over(rng, number, now, PATIENTS_SINCE)
        rows = zip(ids, ages, genders, created, strict=True)
        for serial, (pk, age, gender, at) in enumerate(rows, numbered_from + 1):
            firstname, lastname = rng.choice(FIRST_NAMES[gender]), rng.choice(LAST_NAMES)
            email = ""
            if age >= 16 and rng.random() < PATIENT_EMAIL_SHARE:
                email = f"{email_part(firstname)}.{email_part(lastname)}+{serial}@example.org"
            owner = rng.choice(owners)
            record = (pk, firstname, lastname, age, gender, email, owner, at, at)
            yield (*record, at, CREATED, owner)

    def doctors(self, rng, cursor, number: int, owners: list[int], now, numbered_from: int):
        ids = reserve_ids(cursor, Doctor, number)
        specializations = rng.choices(
            list(SPECIALIZATIONS), weights=[share for share, _low, _high in SPECIALIZATIONS.values()], k=number
        )
        genders = rng.choices(GENDERS, cum_weights=GENDER_CUM_WEIGHTS, k=number)
        created = spread_over(rng, number, now, DOCTORS_SINCE)
        rows = zip(ids, specializations, genders, created, strict=True)
        for serial, (pk, specialization, gender, at) in enumerate(rows, numbered_from + 1):
            firstname, lastname = rng.choice(FIRST_NAMES[gender]), rng.choice(LAST_NAMES)
            _share, low, high = SPECIALIZATIONS[specialization]
            email = ""
            if rng.random() < DOCTOR_EMAIL_SHARE:
                email = f"dr.{email_part(firstname)}.{email_part(lastname)}+{serial}@example.com"
            owner = rng.choice(owners)
            appointments = rng.randint(low, high)
            record = (pk, firstname, lastname, specialization, appointments, gender, email, owner, at, at)
            yield (*record, at, CREATED, owner)

    def mappings(self, rng, cursor, number: int, patient_rows: list[tuple], doctor_rows: list[tuple], now):
        """`number` distinct (patient, doctor) pairs, each assigned after both existed, by the patient's owner."""
        ids = reserve_ids(cursor, PatientDoctorMapping, number)
        patient_owner, patient_created = PATIENT_COLUMNS.index("created_by_id"), PATIENT_COLUMNS.index("created_at")
        doctor_created = DOCTOR_COLUMNS.index("created_at")
        doctor_count = len(doctor_rows)
        # Sampling pair numbers rather than pairs keeps them distinct without a set of tuples.
        pairs = sorted(rng.sample(range(len(patient_rows) * doctor_count), number))
        for pk, pair in zip(ids, pairs, strict=True):
            patient, doctor = patient_rows[pair // doctor_count], doctor_rows[pair % doctor_count]
            since = max(patient[patient_created], doctor[doctor_created])
            at = since + (now - since) * rng.random()
            record = (pk, patient[0], doctor[0], at)
            yield (*record, at, CREATED, patient[patient_owner])
