"""`manage.py seed_demo`: realistic demo patients, doctors, assignments, working hours and appointments, and
the accounts to see them through (owners, front desk, clinicians linked to demo doctors), fast, with a progress bar.

Rows go in with PostgreSQL COPY, several times faster than bulk_create. Both bypass django-simple-history's
signals, so each record's first ("created") version is written alongside it (and an appointment's status
changes after it): the history endpoints then work on demo data as on any other. Every constraint and trigger
stays on: appointments are generated so as to satisfy them (hospital.management.demo_schedule), and the
database checks each row all the same.

Demo accounts are marked (DEMO_MARKER). --reset and --delete remove them and all they own, and refuse,
changing nothing, when that would take or alter other accounts' data.
"""

import argparse
import math
import random
import time
import unicodedata
from datetime import timedelta
from itertools import accumulate, chain, islice, repeat

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.models import ProtectedError
from django.utils import timezone
from psycopg import sql

from hospital.access import Role
from hospital.management import demo_schedule
from hospital.management.demo_names import FEMALE_FIRST_NAMES, LAST_NAMES, MALE_FIRST_NAMES
from hospital.models import (
    Appointment,
    Doctor,
    Gender,
    Patient,
    PatientDoctorMapping,
    Specialization,
    User,
    WorkingHours,
)
from hospital.scheduling import clinic_day
from hospital.usernames import username_key

DEMO_PASSWORD = "demo-password-123"  # noqa: S105 (documented, for demo accounts only)
# Demo accounts carry this last name, which registration cannot set: --reset never takes a real account.
DEMO_MARKER = "(demo data)"
STAFF_USERNAME = "demo-staff"
FRONT_DESK_USERNAME = "frontdesk{}"
CLINICIAN_USERNAME = "clinician{}"  # numbered like the doctor it is linked to: the n-th demo doctor
ALL_NEW_DOCTORS = "all"  # --clinicians without a number
# Of the appointments, the share that front desk accounts booked, when there are some; the patient's owner the rest.
FRONT_DESK_BOOKING_SHARE = 0.6
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
WORKING_HOURS_COLUMNS = ["id", "doctor_id", "weekday", "start_minute", "end_minute"]
APPOINTMENT_COLUMNS = ["id", "patient_id", "doctor_id", "start", "end", "status", "overbooked", "reason"]
APPOINTMENT_COLUMNS += ["created_by_id", "created_at", "updated_at"]
HISTORY_COLUMNS = ["history_date", "history_type", "history_user_id"]
CREATED, CHANGED = "+", "~"

# Letters that Unicode does not decompose into an ASCII letter and a mark.
ASCII_LETTERS = str.maketrans({"\u0131": "i", "ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "ß": "ss", "æ": "ae", "đ": "d"})


def count(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return number


def count_or_all(value: str):
    """A count, or "all" (--clinicians: one per new doctor)."""
    return ALL_NEW_DOCTORS if value == ALL_NEW_DOCTORS else count(value)


def serials(first: str, last: str) -> str:
    """ "demo1..demo3", or "demo1" alone."""
    return first if first == last else f"{first}..{last}"


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
        return f"{self.label:<12} [{bar}] {self.done:,}/{self.total:,}  {rate:,.0f}/s"


class Command(BaseCommand):
    help = (
        "Create realistic demo patients, doctors, assignments, working hours and appointments, owned by demo "
        f"accounts demo1..demoN (password {DEMO_PASSWORD!r}), and front desk and clinician demo accounts. "
        "A second run adds more; --reset replaces the previous demo data."
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
        parser.add_argument(
            "--appointments",
            type=count,
            default=0,
            help="Appointments between the new assigned pairs, within the doctors' working hours, over the past "
            "week and the next --weeks weeks (default 0).",
        )
        parser.add_argument(
            "--weeks", type=count, default=4, help="Weeks ahead that appointments are spread over (default 4)."
        )
        parser.add_argument("--users", type=count, default=10, help="Demo accounts demo1..demoN (default 10).")
        parser.add_argument(
            "--front-desk",
            type=count,
            default=0,
            metavar="N",
            help="Front desk demo accounts frontdesk1..frontdeskN: they see every patient (default 0).",
        )
        parser.add_argument(
            "--clinicians",
            type=count_or_all,
            nargs="?",
            const=ALL_NEW_DOCTORS,
            default=0,
            metavar="K",
            help="Clinician demo accounts, each linked to one new doctor and seeing its assigned patients: one per "
            "new doctor, or for the first K (default none).",
        )
        parser.add_argument(
            "--staff", action="store_true", help=f"Also create {STAFF_USERNAME!r}, a staff account: it sees all."
        )
        parser.add_argument("--password", default=DEMO_PASSWORD, help="Password of the demo accounts.")
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="Random seed: same seed, same data.")
        parser.add_argument("--reset", action="store_true", help="Delete the previous demo data first.")
        parser.add_argument("--delete", action="store_true", help="Only delete the demo data and accounts.")

    def handle(self, *args, **options):
        patients, doctors, mappings, users = (options[name] for name in ["patients", "doctors", "mappings", "users"])
        clinicians = doctors if options["clinicians"] == ALL_NEW_DOCTORS else options["clinicians"]
        if mappings > patients * doctors:
            raise CommandError(
                f"--mappings {mappings:,} is more than the {patients * doctors:,} distinct (patient, doctor) pairs "
                f"that --patients {patients:,} and --doctors {doctors:,} allow."
            )
        if (patients or doctors) and not users:
            raise CommandError("--users must be at least 1: every patient and doctor has an owner.")
        if clinicians > doctors:
            raise CommandError(
                f"--clinicians {clinicians:,} is more than the {doctors:,} doctors this run creates: each clinician "
                "is linked to a new doctor of its own."
            )
        if options["appointments"] and not mappings:
            raise CommandError(
                "--appointments needs --mappings: appointments are between assigned patients and doctors."
            )
        self.quiet = options["verbosity"] == 0
        started = time.monotonic()
        # One transaction: an interrupted or refused run leaves the database as it was.
        with transaction.atomic(), connection.cursor() as cursor:
            if options["reset"] or options["delete"]:
                self.delete_demo_data(cursor)
            if options["delete"]:
                return
            created, accounts = self.create_demo_data(cursor, options, clinicians)
        elapsed = time.monotonic() - started
        self.say(
            f"Created {patients:,} patients, {doctors:,} doctors and {mappings:,} assignments, each with its first "
            f"history version; {created['hours']:,} working-hour ranges"
            + (
                f" and {options['appointments']:,} appointments, each with its history"
                if options["appointments"]
                else ""
            )
            + f"; in {elapsed:.1f}s ({sum(created.values()) / max(elapsed, 1e-6):,.0f} records/s)."
        )
        if accounts:
            self.say(f"Log in as {accounts} with the password {options['password']!r}.")

    def create_demo_data(self, cursor, options, clinicians: int) -> tuple[dict[str, int], str]:
        """The accounts and records asked for; returns the number of records of each kind, and who logs in as what."""
        users, front_desk = options["users"], options["front_desk"]
        demo_owned = {"created_by__last_name": DEMO_MARKER}
        before = (Patient.objects.filter(**demo_owned).count(), Doctor.objects.filter(**demo_owned).count())
        owner_names = [f"demo{serial}" for serial in range(1, users + 1)]
        staff_names = [STAFF_USERNAME] if options["staff"] else []
        desk_names = [FRONT_DESK_USERNAME.format(serial) for serial in range(1, front_desk + 1)]
        clinician_names = [CLINICIAN_USERNAME.format(before[1] + serial) for serial in range(1, clinicians + 1)]
        everyone = owner_names + staff_names + desk_names + clinician_names
        hashed = self.demo_password(everyone, clinician_names, options["password"])
        owners = self.demo_accounts(owner_names + staff_names, hashed, staff=set(staff_names))[:users]
        desk = self.demo_accounts(desk_names, hashed, role=Role.FRONT_DESK)
        # Seeded by what is there already, so that a run without --reset adds new people, not the same again; the
        # schedules have their own stream, so that asking for them leaves the people as they were.
        seed = f"{options['seed']}:{before[0]}:{before[1]}"
        rng, schedule_rng = random.Random(seed), random.Random(f"{seed}:schedule")  # noqa: S311 (not a secret)
        now = timezone.now()
        generated = self.patients(rng, cursor, options["patients"], owners, now, before[0])
        patients = self.insert(cursor, "patients", Patient, PATIENT_COLUMNS, options["patients"], generated)
        generated = self.doctors(rng, cursor, options["doctors"], owners, now, before[1])
        doctors = self.insert(cursor, "doctors", Doctor, DOCTOR_COLUMNS, options["doctors"], generated)
        weeks = [demo_schedule.working_week(schedule_rng) for _doctor in doctors]
        hours = sum(map(len, weeks))
        generated = self.working_hours(cursor, doctors, weeks)
        self.insert(cursor, "hours", WorkingHours, WORKING_HOURS_COLUMNS, hours, generated)
        generated = self.mappings(rng, cursor, options["mappings"], patients, doctors, now)
        mappings = self.insert(
            cursor, "mappings", PatientDoctorMapping, MAPPING_COLUMNS, options["mappings"], generated
        )
        linked = dict(zip(clinician_names, (doctor[0] for doctor in doctors), strict=False))
        self.demo_accounts(clinician_names, hashed, doctors=linked, role=Role.CLINICIAN)
        # Fresh statistics, so that the first demo queries get good plans without waiting for autovacuum, and so
        # do the checks that the database runs on every appointment.
        cursor.execute(
            "ANALYZE hospital_user, hospital_patient, hospital_doctor, hospital_patientdoctormapping, "
            "hospital_workinghours"
        )
        if appointments := options["appointments"]:
            generated = self.appointments(
                schedule_rng, cursor, appointments, options["weeks"], patients, doctors, weeks, mappings, desk, now
            )
            self.insert(
                cursor, "appointments", Appointment, APPOINTMENT_COLUMNS, appointments, generated, analyze_after=1000
            )
            cursor.execute("ANALYZE hospital_appointment")
        created = {
            "patients": len(patients),
            "doctors": len(doctors),
            "hours": hours,
            "mappings": len(mappings),
            "appointments": appointments,
        }
        accounts = self.who_is_who(users, desk_names, clinician_names, staff=bool(staff_names)) if everyone else ""
        return created, accounts

    def say(self, message: str) -> None:
        if not self.quiet:
            self.stdout.write(message)

    # ---------------------------------------------------------------------------------------- accounts

    @staticmethod
    def who_is_who(users: int, desk_names: list[str], clinician_names: list[str], *, staff: bool) -> str:
        """ "demo1..demo3 or demo-staff (staff)": the accounts to log in as, with what each sees when it is not
        plain."""
        roles = bool(desk_names or clinician_names)
        names = []
        if users:
            names.append(serials("demo1", f"demo{users}") + (" (each sees the patients it created)" if roles else ""))
        if desk_names:
            names.append(f"{serials(desk_names[0], desk_names[-1])} (front desk: every patient)")
        if clinician_names:
            names.append(
                f"{serials(clinician_names[0], clinician_names[-1])} (clinicians: each is linked to the demo doctor of "
                "its number, GET /api/auth/me/ names it, and sees that doctor's assigned patients)"
            )
        if staff:
            names.append(f"{STAFF_USERNAME} (staff)")
        return ", ".join(names[:-1]) + (" or " if len(names) > 1 else "") + names[-1]

    def demo_password(self, usernames: list[str], new_usernames: list[str], password: str) -> str:
        """The hash of `password` for the demo accounts `usernames` (the one they have if it matches), after checking
        that no other account has one of these names, and that none of `new_usernames` exists at all."""
        if not usernames:
            return ""
        # Demo names are their own canonical form (lower-case ASCII).
        existing = list(User.objects.filter(username_key__in=usernames))
        taken = sorted(user.username for user in existing if user.last_name != DEMO_MARKER)
        if taken:
            raise CommandError(
                f"{', '.join(taken)}: taken by an account that is not a demo account. "
                "Rename that account, or ask for fewer demo accounts."
            )
        linked_elsewhere = sorted(user.username for user in existing if user.username_key in new_usernames)
        if linked_elsewhere:
            raise CommandError(
                f"{', '.join(linked_elsewhere)}: demo accounts of these names exist already (clinicians are numbered "
                "after the demo doctors, some of which were deleted). Use --reset."
            )
        try:
            validate_password(password, user=User(username=usernames[0], email=f"{usernames[0]}@example.org"))
        except ValidationError as error:
            raise CommandError(f"--password: {' '.join(error.messages)}") from None
        # One hash for every account, checked once per distinct hash: PBKDF2 is slow on purpose.
        current = [digest for digest in {user.password for user in existing} if check_password(password, digest)]
        return current[0] if current else make_password(password)

    def demo_accounts(
        self, usernames: list[str], hashed: str, *, staff=frozenset(), doctors=None, role: str | None = None
    ) -> list[int]:
        """The ids of these demo accounts, created if missing (those in `staff` as staff, linked to `doctors`
        [username -> doctor id]); existing ones get the password `hashed` if theirs differs. All get `role`."""
        if not usernames:
            return []
        existing = {user.username_key: user for user in User.objects.filter(username_key__in=usernames)}
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
                is_staff=username in staff,
                doctor_id=(doctors or {}).get(username),
            )
            for username in usernames
            if username not in existing
        )
        ids = {**{name: user.pk for name, user in existing.items()}, **{user.username: user.pk for user in created}}
        if role:
            # get_or_create, as services.update_account: the role groups come from a migration, but may be deleted.
            Group.objects.get_or_create(name=role)[0].user_set.add(*ids.values())
        return [ids[username] for username in usernames]

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
        others_booked = Appointment.objects.filter(doctor__created_by__in=demo).exclude(patient__created_by__in=demo)
        if others_booked.exists():
            raise CommandError(
                f"Other accounts' patients have {others_booked.count():,} appointments with demo doctors, and "
                "appointments are never erased. Leave the demo data in place, or use a database of its own for demos."
            )
        others_linked = sorted(
            User.objects.filter(doctor__created_by__in=demo).exclude(pk__in=demo).values_list("pk", flat=True)
        )
        if others_linked:
            raise CommandError(
                f"Accounts that are not demo accounts are linked to demo doctors (user ids "
                f"{', '.join(map(str, others_linked))}); unlink them first (PATCH /api/users/<id>/ "
                '{"doctor": null}).'
            )
        # Deleting an account blanks the author of the versions it made: keep that for others' records.
        others_changed = (
            PatientDoctorMapping.history.filter(history_user__in=demo).exclude(patient__created_by__in=demo).count()
            + Appointment.history.filter(history_user__in=demo).exclude(patient__created_by__in=demo).count()
            + Patient.history.filter(history_user__in=demo).exclude(created_by__in=demo).count()
            + Doctor.history.filter(history_user__in=demo).exclude(created_by__in=demo).count()
        )
        if others_changed:
            raise CommandError(
                f"Demo accounts made {others_changed:,} changes to other accounts' records, and their history "
                "would lose its author. Leave the demo data in place, or use a database of its own for demos."
            )
        demo_patients = "SELECT id FROM hospital_patient WHERE created_by_id = ANY(%s)"
        demo_doctors = "SELECT id FROM hospital_doctor WHERE created_by_id = ANY(%s)"
        # Whatever hangs off a demo patient is demo data, whoever made it: it goes with the patient.
        Appointment.history.filter(patient__created_by__in=demo).delete()
        PatientDoctorMapping.history.filter(patient__created_by__in=demo).delete()
        Patient.history.filter(created_by__in=demo).delete()
        Doctor.history.filter(created_by__in=demo).delete()
        cursor.execute(f"DELETE FROM hospital_appointment WHERE patient_id IN ({demo_patients})", [demo])  # noqa: S608
        appointments = cursor.rowcount
        cursor.execute(
            f"DELETE FROM hospital_emergencyaccessgrant WHERE user_id = ANY(%s) OR patient_id IN ({demo_patients})",  # noqa: S608
            [demo, demo],
        )
        grants = cursor.rowcount
        cursor.execute(f"DELETE FROM hospital_patientdoctormapping WHERE patient_id IN ({demo_patients})", [demo])  # noqa: S608
        mappings = cursor.rowcount
        cursor.execute("DELETE FROM hospital_patient WHERE created_by_id = ANY(%s)", [demo])
        patients = cursor.rowcount
        cursor.execute(f"DELETE FROM hospital_workinghours WHERE doctor_id IN ({demo_doctors})", [demo])  # noqa: S608
        hours = cursor.rowcount
        # A demo doctor linked to a demo account goes before the account: foreign keys are checked at the end (below).
        cursor.execute("DELETE FROM hospital_doctor WHERE created_by_id = ANY(%s)", [demo])
        doctors = cursor.rowcount
        try:
            User.objects.filter(pk__in=demo).delete()
        except ProtectedError as error:
            example = next(iter(error.protected_objects))
            raise CommandError(
                f"{len(error.protected_objects):,} records of other accounts refer to demo accounts (such as "
                f"{type(example).__name__.lower()} {example.pk}, made or deleted by one); --reset leaves them alone."
            ) from None
        # The foreign keys' deferred checks now, while the tables hold no new rows: PostgreSQL checks each deleted
        # account against every table referring to users, reading the whole table where no index serves (the
        # appointments' created_by, the patients' deleted_by), so each new row would make every check longer.
        connection.check_constraints()
        self.say(
            f"Deleted {len(demo):,} demo accounts, {patients:,} patients, {doctors:,} doctors and {mappings:,} "
            f"assignments, {hours:,} working-hour ranges, {appointments:,} appointments and {grants:,} emergency "
            f"access grants in {time.monotonic() - started:.1f}s."
        )

    # ----------------------------------------------------------------------------------------- records

    def insert(
        self, cursor, label: str, model, columns: list[str], total: int, rows, *, analyze_after: int = 0
    ) -> list[tuple]:
        """COPY `rows`, pairs of (record with `columns`, its versions with `columns` + HISTORY_COLUMNS), into the
        model's table and its history table, in batches, and return the records.

        `analyze_after`: a first batch of that many rows, then ANALYZE. A trigger's queries are planned once per
        connection and kept; planned for an empty table, the daily-limit trigger's count would read the whole table
        for every row (100,000 appointments: 106s instead of 26s)."""
        table = model._meta.db_table
        history = getattr(model, "history", None)
        progress = Progress(self.stdout, label, total, quiet=self.quiet)
        written = []
        iterator = iter(rows)
        sizes = chain([analyze_after] if analyze_after else [], repeat(BATCH_SIZE))
        while batch := list(islice(iterator, next(sizes))):
            copy_rows(cursor, table, columns, (record for record, _versions in batch))
            if history is not None:
                versions = (version for _record, versions in batch for version in versions)
                copy_rows(cursor, history.model._meta.db_table, columns + HISTORY_COLUMNS, versions)
            written.extend(record for record, _versions in batch)
            progress.advance(len(batch))
            if len(written) == analyze_after:
                cursor.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
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
            yield record, [(*record, at, CREATED, owner)]

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
            yield record, [(*record, at, CREATED, owner)]

    def working_hours(self, cursor, doctor_rows: list[tuple], weeks: list[list[tuple[int, int, int]]]):
        """Each new doctor's week (working hours have no history)."""
        ids = iter(reserve_ids(cursor, WorkingHours, sum(map(len, weeks))))
        for doctor, week in zip(doctor_rows, weeks, strict=True):
            for weekday, start, end in week:
                yield (next(ids), doctor[0], weekday, start, end), []

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
            yield record, [(*record, at, CREATED, patient[patient_owner])]

    def appointments(
        self,
        rng,
        cursor,
        number: int,
        weeks_ahead: int,
        patient_rows: list[tuple],
        doctor_rows: list[tuple],
        weeks: list[list[tuple[int, int, int]]],
        mapping_rows: list[tuple],
        front_desk: list[int],
        now,
    ):
        """`number` appointments of the new assigned pairs over the past week and the next `weeks_ahead` weeks of
        clinic days (demo_schedule keeps the invariants), each with its versions: booked, then each status change,
        by the account that booked it (the patient's owner, or often a front desk account)."""
        zone = settings.CLINIC_TIME_ZONE
        today = clinic_day(now, zone)
        days = [today + timedelta(days=offset) for offset in range(-7, 7 * weeks_ahead)]
        specialization_column, limit_column = (
            DOCTOR_COLUMNS.index(name) for name in ["specialization", "max_appointments_per_day"]
        )
        specialization = {doctor[0]: doctor[specialization_column] for doctor in doctor_rows}
        doctors = [
            demo_schedule.DemoDoctor(
                id=doctor[0],
                daily_limit=doctor[limit_column],
                slot_minutes=demo_schedule.SLOT_MINUTES[doctor[specialization_column]],
                week={
                    weekday: tuple((start, end) for day, start, end in week if day == weekday)
                    for weekday in {day for day, _start, _end in week}
                },
            )
            for doctor, week in zip(doctor_rows, weeks, strict=True)
        ]
        candidates: dict[int, list[demo_schedule.Candidate]] = {}
        for _pk, patient_id, doctor_id, assigned_at in mapping_rows:
            candidates.setdefault(doctor_id, []).append(demo_schedule.Candidate(patient_id, assigned_at))
        try:
            placements = demo_schedule.place_appointments(rng, number, doctors, candidates, days, zone)
        except demo_schedule.TooFew as too_few:
            if too_few.exact:
                raise CommandError(
                    f"Only {too_few.fit:,} of --appointments {number:,} fit: a patient has at most one appointment a "
                    "day, with a doctor assigned to them. Ask for fewer, or for more --weeks, --patients or --mappings."
                ) from None
            raise CommandError(
                f"--appointments {number:,} is more than the {too_few.fit:,} that fit in the assigned doctors' daily "
                f"limits on their working days, over the past week and the next {weeks_ahead} weeks. Ask for fewer, "
                "or for more --weeks, --doctors or --mappings."
            ) from None
        owner_column = PATIENT_COLUMNS.index("created_by_id")
        owner = {patient[0]: patient[owner_column] for patient in patient_rows}
        stories = []
        for placement in placements:
            story = demo_schedule.appointment_story(rng, placement.slot, placement.assigned_at, now)
            by = owner[placement.patient_id]
            if front_desk and rng.random() < FRONT_DESK_BOOKING_SHARE:
                by = rng.choice(front_desk)
            stories.append((story, placement, by, demo_schedule.reason(rng, specialization[placement.doctor_id])))
        stories.sort(key=lambda told: told[0][0][0])  # ids grow with the time of booking, as they would
        for pk, (story, placement, by, why) in zip(reserve_ids(cursor, Appointment, number), stories, strict=True):
            booked_at, (changed_at, status) = story[0][0], story[-1]
            head = (pk, placement.patient_id, placement.doctor_id, *placement.slot)
            record = (*head, status, False, why, by, booked_at, changed_at)
            versions = [
                (*head, version_status, False, why, by, booked_at, at, at, CHANGED if index else CREATED, by)
                for index, (at, version_status) in enumerate(story)
            ]
            yield record, versions
