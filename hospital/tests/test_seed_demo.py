"""`manage.py seed_demo`: what it creates, --reset and --delete, the refusals, and logging in as a demo account."""

import io
import itertools
from datetime import date, datetime, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from rest_framework import status

from hospital.access import Role
from hospital.management.commands import seed_demo
from hospital.management.demo_schedule import SLOT_MINUTES, day_slots
from hospital.models import (
    TIME_HOLDING_STATUSES,
    Appointment,
    AppointmentStatus,
    Doctor,
    EmergencyAccessGrant,
    Gender,
    Patient,
    PatientDoctorMapping,
    Specialization,
    User,
    WorkingHours,
)
from hospital.scheduling import clinic_day, day_bounds, wall_time_instant
from hospital.services import check_working_hours
from hospital.tests import factories
from hospital.tests.base import ApiTestCase, clinic_time_zone, ids

DEMO_PASSWORD = seed_demo.DEMO_PASSWORD


def seed(*args: str, **options) -> str:
    """Run the command with small defaults; return what it printed."""
    out = io.StringIO()
    options = {"patients": 30, "doctors": 5, "mappings": 40, "users": 3, "stdout": out, **options}
    call_command("seed_demo", *args, **options)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {
        "users": User.objects.count(),
        "patients": Patient.objects.count(),
        "doctors": Doctor.objects.count(),
        "mappings": PatientDoctorMapping.objects.count(),
        "patient versions": Patient.history.count(),
        "doctor versions": Doctor.history.count(),
        "mapping versions": PatientDoctorMapping.history.count(),
    }


def demo_people() -> list[tuple]:
    return list(Patient.objects.order_by("id").values_list("firstname", "lastname", "age", "gender", "email"))


class TTYStringIO(io.StringIO):
    def isatty(self):
        return True


class SeedDemoTests(ApiTestCase):
    def test_it_creates_the_requested_rows_owned_by_the_demo_accounts(self):
        output = seed()
        self.assertEqual(
            counts(),
            {
                "users": 3,
                "patients": 30,
                "doctors": 5,
                "mappings": 40,
                "patient versions": 30,
                "doctor versions": 5,
                "mapping versions": 40,
            },
        )
        demo = User.objects.filter(username__in=["demo1", "demo2", "demo3"], last_name=seed_demo.DEMO_MARKER)
        self.assertEqual(demo.count(), 3)
        self.assertFalse(demo.filter(is_staff=True).exists())
        self.assertEqual(Patient.objects.exclude(created_by__in=demo).count(), 0)
        self.assertEqual(Doctor.objects.exclude(created_by__in=demo).count(), 0)
        pairs = PatientDoctorMapping.objects.values("patient", "doctor").distinct()
        self.assertEqual(pairs.count(), 40)
        self.assertIn("Created 30 patients, 5 doctors and 40 assignments", output)
        self.assertIn(f"Log in as demo1..demo3 with the password '{DEMO_PASSWORD}'.", output)

    def test_each_record_has_one_created_version_by_its_owner(self):
        seed()
        for patient in Patient.objects.all():
            versions = list(patient.history.all())
            self.assertEqual([version.history_type for version in versions], ["+"])
            self.assertEqual(versions[0].history_user_id, patient.created_by_id)
            self.assertEqual(versions[0].history_date, patient.created_at)
        for mapping in PatientDoctorMapping.objects.select_related("patient"):
            version = mapping.history.get()
            self.assertEqual(version.history_user_id, mapping.patient.created_by_id)
            self.assertEqual((version.patient_id, version.doctor_id), (mapping.patient_id, mapping.doctor_id))
        self.assertEqual(Doctor.history.filter(history_type="+").count(), Doctor.objects.count())

    def test_the_rows_are_valid_and_plausible(self):
        seed(patients=300, doctors=40, mappings=600)
        for record in [*Patient.objects.all(), *Doctor.objects.all()]:
            record.full_clean()  # lengths, choices, ranges and email syntax, as the API would check them
        patients = Patient.objects.all()
        self.assertTrue(all(0 <= age <= 100 for age in patients.values_list("age", flat=True)))
        self.assertGreater(patients.values("age").distinct().count(), 50)
        self.assertEqual(set(patients.values_list("gender", flat=True)) - set(Gender.values), set())
        self.assertGreater(patients.values("lastname").distinct().count(), 100)
        with_email = patients.exclude(email="")
        self.assertTrue(0.4 * patients.count() < with_email.count() < 0.8 * patients.count())
        self.assertFalse(with_email.filter(age__lt=16).exists())
        emails = list(with_email.values_list("email", flat=True))
        self.assertEqual(len(set(emails)), len(emails))
        self.assertTrue(all(email.isascii() and email.endswith("@example.org") for email in emails))
        doctors = Doctor.objects.all()
        self.assertGreater(doctors.values("specialization").distinct().count(), 5)
        self.assertEqual(set(doctors.values_list("specialization", flat=True)) - set(Specialization.values), set())
        self.assertTrue(
            all(email.endswith("@example.com") for email in doctors.exclude(email="").values_list("email", flat=True))
        )
        # Assigned after both the patient and the doctor existed, and not in the future.
        for mapping in PatientDoctorMapping.objects.select_related("patient", "doctor"):
            self.assertGreaterEqual(mapping.assigned_at, max(mapping.patient.created_at, mapping.doctor.created_at))
            self.assertLessEqual(mapping.assigned_at, timezone.now())

    def test_the_same_seed_gives_the_same_data_and_another_seed_other_data(self):
        seed("--reset")
        first = demo_people()
        seed("--reset")
        self.assertEqual(demo_people(), first)
        seed("--reset", seed=7)
        self.assertNotEqual(demo_people(), first)

    def test_reset_replaces_the_demo_data_with_the_same_counts(self):
        seed("--reset")
        after_one = counts()
        output = seed("--reset")
        self.assertEqual(counts(), after_one)
        self.assertIn("Deleted 3 demo accounts, 30 patients, 5 doctors and 40 assignments", output)

    def test_a_second_run_without_reset_adds_new_people_and_keeps_the_accounts(self):
        seed()
        first = demo_people()
        accounts = set(User.objects.values_list("pk", flat=True))
        seed()
        self.assertEqual(set(User.objects.values_list("pk", flat=True)), accounts)
        self.assertEqual(counts()["patients"], 60)
        self.assertEqual(counts()["mappings"], 80)
        self.assertNotEqual(demo_people()[30:], first)
        emails = list(Patient.objects.exclude(email="").values_list("email", flat=True))
        self.assertEqual(len(set(emails)), len(emails))

    def test_reset_and_delete_leave_other_accounts_data_alone(self):
        real = factories.make_user("real")
        patient = factories.make_patient(real)
        doctor = factories.make_doctor(real)
        factories.make_mapping(patient, doctor)
        deleted = factories.make_patient(real)
        deleted.deleted_at, deleted.deleted_by = timezone.now(), real
        deleted.save()
        seed()
        # A demo patient assigned to a real doctor is demo data: it goes, the doctor stays.
        factories.make_mapping(Patient.objects.filter(created_by__username="demo1").first(), doctor)
        real_rows = {
            "patients": set(Patient.objects.filter(created_by=real).values_list("pk", "firstname", "deleted_at")),
            "doctors": set(Doctor.objects.filter(created_by=real).values_list("pk", "firstname")),
            "mappings": set(PatientDoctorMapping.objects.filter(patient__created_by=real).values_list("pk")),
            "versions": Patient.history.filter(created_by=real).count()
            + Doctor.history.filter(created_by=real).count(),
        }
        seed("--reset")
        seed("--delete")
        self.assertEqual(
            {
                "patients": set(Patient.objects.values_list("pk", "firstname", "deleted_at")),
                "doctors": set(Doctor.objects.values_list("pk", "firstname")),
                "mappings": set(PatientDoctorMapping.objects.values_list("pk")),
                "versions": Patient.history.count() + Doctor.history.count(),
            },
            real_rows,
        )
        self.assertEqual(list(User.objects.values_list("username", flat=True)), ["real"])
        self.assertEqual(PatientDoctorMapping.history.exclude(patient__created_by=real).count(), 0)

    def test_delete_only_deletes(self):
        seed("--staff")
        output = seed("--delete")
        self.assertEqual(set(counts().values()), {0})
        self.assertIn("Deleted 4 demo accounts, 30 patients, 5 doctors and 40 assignments", output)
        self.assertNotIn("Created", output)

    def test_reset_refuses_when_another_accounts_patient_is_assigned_to_a_demo_doctor(self):
        real = factories.make_user("real")
        seed()
        factories.make_mapping(factories.make_patient(real), Doctor.objects.first())
        before = counts()
        with self.assertRaisesMessage(CommandError, "Other accounts' patients have 1 assignments to demo doctors"):
            seed("--reset")
        self.assertEqual(counts(), before)

    def test_reset_refuses_when_a_demo_account_changed_another_accounts_record(self):
        real = factories.make_user("real")
        patient = factories.make_patient(real)
        seed("--staff")
        staff = User.objects.get(username=seed_demo.STAFF_USERNAME)
        response = factories.client_for(staff).patch(
            reverse("patient-detail", args=[patient.pk]), {"age": 41}, format="json"
        )
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        before = counts()
        with self.assertRaisesMessage(CommandError, "Demo accounts made 1 changes to other accounts' records"):
            seed("--reset")
        self.assertEqual(counts(), before)
        self.assertEqual(patient.history.first().history_user, staff)

    def test_reset_refuses_when_a_demo_account_deleted_another_accounts_patient(self):
        real = factories.make_user("real")
        patient = factories.make_patient(real)
        seed("--staff")
        staff = User.objects.get(username=seed_demo.STAFF_USERNAME)
        Patient.objects.filter(pk=patient.pk).update(deleted_at=timezone.now(), deleted_by=staff)  # no version
        before = counts()
        with self.assertRaisesMessage(
            CommandError, "1 records of other accounts refer to demo accounts (such as patient"
        ):
            seed("--reset")
        self.assertEqual(counts(), before)

    def test_it_refuses_more_mappings_than_distinct_pairs(self):
        message = "--mappings 11 is more than the 10 distinct (patient, doctor) pairs"
        with self.assertRaisesMessage(CommandError, message):
            call_command("seed_demo", "--patients", "5", "--doctors", "2", "--mappings", "11", stdout=io.StringIO())
        self.assertEqual(set(counts().values()), {0})
        seed(patients=5, doctors=2, mappings=10)  # every pair: the most there can be
        self.assertEqual(PatientDoctorMapping.objects.count(), 10)

    def test_it_refuses_records_without_an_owner_and_negative_numbers(self):
        with self.assertRaisesMessage(CommandError, "--users must be at least 1"):
            seed(users=0)
        with self.assertRaisesMessage(CommandError, "-1 is negative"):
            seed("--patients", "-1")
        self.assertEqual(set(counts().values()), {0})

    def test_it_creates_nothing_when_asked_for_nothing(self):
        output = seed(users=0, patients=0, doctors=0, mappings=0)
        self.assertEqual(set(counts().values()), {0})
        self.assertNotIn("Log in", output)

    def test_it_refuses_a_demo_username_taken_by_a_real_account(self):
        factories.make_user("Demo2")
        with self.assertRaisesMessage(CommandError, "Demo2: taken by an account that is not a demo account"):
            seed()
        self.assertEqual(User.objects.count(), 1)
        with self.assertRaisesMessage(CommandError, "Demo2: taken"):
            seed("--reset")
        seed(users=1)  # demo1 is free

    def test_it_refuses_a_password_the_validators_reject(self):
        with self.assertRaisesMessage(CommandError, "This password is too short."):
            seed(password="demo")
        self.assertEqual(User.objects.count(), 0)


class DemoLoginTests(ApiTestCase):
    def test_a_demo_account_logs_in_with_the_documented_password_and_sees_its_patients(self):
        seed("--staff", patients=50)
        response = self.client.post(reverse("login"), {"username": "demo2", "password": DEMO_PASSWORD}, format="json")
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
        response = self.client.get(reverse("patient-list"), {"page_size": 100})
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        own = list(Patient.objects.filter(created_by__username="demo2").order_by("id").values_list("pk", flat=True))
        self.assertGreater(len(own), 0)
        self.assertEqual(ids(response), own)
        self.assertEqual(response["X-Total-Count"], str(len(own)))
        response = self.client.get(reverse("patient-history", args=[own[0]]))
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual([version["change"] for version in response.json()], ["created"])

    def test_the_demo_staff_account_sees_every_patient(self):
        seed("--staff")
        response = self.client.post(
            reverse("login"), {"username": seed_demo.STAFF_USERNAME, "password": DEMO_PASSWORD}, format="json"
        )
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
        response = self.client.get(reverse("patient-list"))
        self.assertEqual(response["X-Total-Count"], "30")

    def test_a_new_password_replaces_the_old_one_and_an_unchanged_one_keeps_the_hash(self):
        seed()
        hashes = set(User.objects.values_list("password", flat=True))
        self.assertEqual(len(hashes), 1)
        seed()
        self.assertEqual(set(User.objects.values_list("password", flat=True)), hashes)  # tokens stay valid
        seed(password="another-demo-passphrase", users=4)
        for user in User.objects.all():
            self.assertTrue(check_password("another-demo-passphrase", user.password), user.username)
        response = self.client.post(reverse("login"), {"username": "demo1", "password": DEMO_PASSWORD}, format="json")
        self.assertEqual(response.status_code, status.HTTP_401_UNAUTHORIZED)


class ProgressTests(ApiTestCase):
    def test_without_a_terminal_it_prints_a_line_at_every_tenth(self):
        with mock.patch.object(seed_demo, "BATCH_SIZE", 10):
            output = seed(patients=100, doctors=3, mappings=5)
        patient_lines = [line for line in output.splitlines() if line.startswith("patients ")]
        self.assertEqual(len(patient_lines), 10)
        self.assertIn("[###---------------------------] 10/100", patient_lines[0])
        self.assertIn("[##############################] 100/100", patient_lines[-1])
        self.assertNotIn("\r", output)
        doctor_lines = [line for line in output.splitlines() if line.startswith("doctors ")]
        self.assertEqual(len(doctor_lines), 1)  # one batch: one line, at 100%

    def test_on_a_terminal_it_redraws_one_line_per_table(self):
        out = TTYStringIO()
        with mock.patch.object(seed_demo, "BATCH_SIZE", 10):
            call_command("seed_demo", patients=100, doctors=3, mappings=5, users=2, stdout=out)
        output = out.getvalue()
        self.assertEqual(output.count("\rpatients "), 10)
        lines = output.split("\n")  # not splitlines(), which splits at carriage returns too
        self.assertTrue(lines[0].startswith("\rpatients "))
        self.assertIn("100/100", lines[0].rsplit("\r", 1)[-1])
        self.assertTrue(lines[1].startswith("\rdoctors "))

    def test_verbosity_0_prints_nothing(self):
        self.assertEqual(seed("--reset", verbosity=0), "")
        self.assertEqual(seed("--delete", verbosity=0), "")
        self.assertEqual(Patient.objects.count(), 0)


class CountByOwnerTests(ApiTestCase):
    def test_patients_are_spread_across_the_demo_accounts(self):
        seed(patients=300, users=3)
        per_owner = Patient.objects.values("created_by").annotate(n=Count("id")).values_list("n", flat=True)
        self.assertEqual(len(per_owner), 3)
        self.assertTrue(all(60 < n < 140 for n in per_owner))


# ------------------------------------------------------------------------------------- care team and appointments

# A Wednesday morning in Berlin four days before clocks go forward (Sunday 28 March 2027): the past week and the
# coming weeks include a 23-hour clinic day.
BERLIN_NOW = datetime(2027, 3, 24, 10, 7, tzinfo=ZoneInfo("Europe/Berlin"))
# In Auckland (UTC+13 in March) a clinic day's working hours span two UTC dates.
AUCKLAND_NOW = datetime(2027, 3, 3, 15, 41, tzinfo=ZoneInfo("Pacific/Auckland"))
TIME_HOLDING = tuple(TIME_HOLDING_STATUSES)
STEPS = {
    ("booked", "arrived"),
    ("arrived", "fulfilled"),
    ("booked", "noshow"),
    ("booked", "cancelled"),
    ("arrived", "cancelled"),
}


def seed_at(now: datetime, *args: str, **options) -> str:
    """seed() with the command's clock at `now`: the same seed then gives the same appointments, to the second."""
    with mock.patch.object(seed_demo.timezone, "now", return_value=now):
        return seed(*args, **options)


def care_counts() -> dict[str, int]:
    return {
        "appointments": Appointment.objects.count(),
        "appointment versions": Appointment.history.count(),
        "working hours": WorkingHours.objects.count(),
        "grants": EmergencyAccessGrant.objects.count(),
        "linked accounts": User.objects.filter(doctor__isnull=False).count(),
        "role members": User.groups.through.objects.count(),
    }


def sql_rows(query: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def overlapping_pairs(column: str) -> int:
    """Pairs of time-holding appointments of one doctor (or patient) whose times overlap, over the whole table."""
    return sql_rows(
        f"""SELECT count(*) FROM hospital_appointment a JOIN hospital_appointment b
            ON a.{column} = b.{column} AND a.id < b.id AND tstzrange(a.start, a."end") && tstzrange(b.start, b."end")
            WHERE a.status = ANY(%s) AND b.status = ANY(%s)""",  # noqa: S608 (a column name of ours)
        [list(TIME_HOLDING), list(TIME_HOLDING)],
    )[0][0]


def doctor_days(zone: str) -> list[tuple[int, date, int, int]]:
    """(doctor, clinic day in `zone`, appointments counting against the limit, the limit), busiest first."""
    return sql_rows(
        """SELECT d.id, (a.start AT TIME ZONE %s)::date AS day, count(*), d.max_appointments_per_day
           FROM hospital_appointment a JOIN hospital_doctor d ON d.id = a.doctor_id
           WHERE a.status <> 'cancelled' AND NOT a.overbooked
           GROUP BY d.id, day ORDER BY count(*) - d.max_appointments_per_day DESC, d.id, day""",
        [zone],
    )


def appointment_keys() -> list[tuple]:
    """The appointments by what they are (people, times, status, reason), not by ids, which a sequence hands out."""
    return list(
        Appointment.objects.order_by("start", "doctor__email", "patient__firstname", "patient__lastname").values_list(
            "patient__firstname",
            "patient__lastname",
            "doctor__firstname",
            "doctor__lastname",
            "start",
            "end",
            "status",
            "reason",
            "created_at",
            "updated_at",
        )
    )


def log_in(client, username: str) -> None:
    response = client.post(reverse("login"), {"username": username, "password": DEMO_PASSWORD}, format="json")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")


class CareTeamSeedTests(ApiTestCase):
    def test_front_desk_and_clinician_accounts_are_demo_accounts_with_their_roles_and_links(self):
        output = seed("--clinicians", front_desk=2)
        front_desk = User.objects.filter(groups__name=Role.FRONT_DESK).order_by("username")
        self.assertEqual([user.username for user in front_desk], ["frontdesk1", "frontdesk2"])
        clinicians = User.objects.filter(groups__name=Role.CLINICIAN).order_by("doctor_id")
        self.assertEqual([user.username for user in clinicians], [f"clinician{n}" for n in range(1, 6)])
        # One per new doctor, in the order the doctors were made, each doctor linked once.
        self.assertEqual([user.doctor_id for user in clinicians], list(Doctor.objects.values_list("pk", flat=True)))
        for user in [*front_desk, *clinicians]:
            self.assertEqual((user.last_name, user.is_staff), (seed_demo.DEMO_MARKER, False))
            self.assertTrue(check_password(DEMO_PASSWORD, user.password))
        self.assertEqual(User.objects.filter(username__startswith="demo", groups__isnull=False).count(), 0)
        self.assertIn(
            "Log in as demo1..demo3 (each sees the patients it created), frontdesk1..frontdesk2 (front desk: every "
            "patient) or clinician1..clinician5 (clinicians: each is linked to the demo doctor of its number",
            output,
        )

    def test_clinicians_k_links_the_first_k_new_doctors_and_a_second_run_numbers_on(self):
        seed(clinicians=2)
        first_doctors = list(Doctor.objects.values_list("pk", flat=True))
        seed(clinicians=2)
        second_doctors = list(Doctor.objects.exclude(pk__in=first_doctors).values_list("pk", flat=True))
        links = dict(User.objects.filter(doctor__isnull=False).values_list("username", "doctor_id"))
        self.assertEqual(
            links,
            {
                "clinician1": first_doctors[0],
                "clinician2": first_doctors[1],
                "clinician6": second_doctors[0],
                "clinician7": second_doctors[1],
            },
        )

    def test_it_refuses_more_clinicians_than_new_doctors_and_a_demo_name_of_a_real_account(self):
        with self.assertRaisesMessage(CommandError, "--clinicians 6 is more than the 5 doctors this run creates"):
            seed(clinicians=6)
        factories.make_user("FrontDesk2")
        with self.assertRaisesMessage(CommandError, "FrontDesk2: taken by an account that is not a demo account"):
            seed(front_desk=2)
        self.assertEqual((User.objects.count(), Doctor.objects.count()), (1, 0))

    def test_it_refuses_a_clinician_name_that_exists_after_demo_doctors_were_deleted(self):
        seed("--clinicians")
        # Staff unlink clinician5 and delete its doctor: the next run's first new doctor is the 5th again.
        User.objects.filter(username="clinician5").update(doctor=None)
        Doctor.objects.filter(accounts__isnull=True).delete()
        before = {**counts(), **care_counts()}
        with self.assertRaisesMessage(CommandError, "clinician5: demo accounts of these names exist already"):
            seed("--clinicians")
        self.assertEqual({**counts(), **care_counts()}, before)
        seed("--reset", "--clinicians")
        self.assertEqual(User.objects.filter(doctor__isnull=False).count(), 5)

    def test_a_demo_clinician_logs_in_and_sees_its_doctors_assigned_patients(self):
        seed("--clinicians", appointments=60)
        clinician = User.objects.get(username="clinician3")
        assigned = list(
            PatientDoctorMapping.objects.filter(doctor=clinician.doctor_id)
            .order_by("patient_id")
            .values_list("patient_id", flat=True)
        )
        self.assertGreater(len(assigned), 0)
        log_in(self.client, "clinician3")
        me = self.client.get(reverse("me")).json()
        self.assertEqual((me["roles"], me["doctor"]), ([Role.CLINICIAN], clinician.doctor_id))
        response = self.client.get(reverse("patient-list"), {"page_size": 100})
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(ids(response), assigned)
        response = self.client.get(reverse("appointment-list"), {"doctor": clinician.doctor_id, "page_size": 100})
        self.assertEqual(
            ids(response), list(Appointment.objects.filter(doctor=clinician.doctor_id).values_list("pk", flat=True))
        )

    def test_a_demo_front_desk_account_sees_every_patient_and_appointment(self):
        seed(front_desk=1, appointments=60)
        log_in(self.client, "frontdesk1")
        self.assertEqual(self.client.get(reverse("me")).json()["roles"], [Role.FRONT_DESK])
        self.assertEqual(self.client.get(reverse("patient-list"))["X-Total-Count"], "30")
        self.assertEqual(self.client.get(reverse("appointment-list"))["X-Total-Count"], "60")


class AppointmentSeedTests(ApiTestCase):
    def assert_invariants(self, now: datetime, weeks: int = 4):
        """Both database invariants over the whole table, and the booking API's other rules, on every appointment."""
        zone = settings.CLINIC_TIME_ZONE
        self.assertEqual(overlapping_pairs("doctor_id"), 0)
        self.assertEqual(overlapping_pairs("patient_id"), 0)
        days = doctor_days(zone.key)
        doctor, day, taken, limit = days[0]
        self.assertLessEqual(taken, limit, f"doctor {doctor} on {day}")
        today = clinic_day(now, zone)
        first, last = (
            day_bounds(today - timedelta(days=7), zone).start,
            day_bounds(today + timedelta(weeks=weeks), zone),
        )
        versions_of = {}
        for version in Appointment.history.order_by("history_date", "history_id"):
            versions_of.setdefault(version.id, []).append(version)
        for appointment in Appointment.objects.select_related("doctor"):
            start, end = appointment.start, appointment.end
            self.assertTrue(first <= start and end <= last.start, appointment)
            check_working_hours(appointment.doctor, start, end)  # the booking API's rule: raises outside them
            self.assertEqual(end - start, timedelta(minutes=SLOT_MINUTES[appointment.doctor.specialization]))
            mapping = PatientDoctorMapping.objects.get(patient=appointment.patient_id, doctor=appointment.doctor_id)
            self.assertLess(mapping.assigned_at, appointment.created_at)
            self.assertLess(appointment.created_at, start)  # booked ahead of time
            expected = (
                {"fulfilled", "noshow", "cancelled"}
                if end <= now
                else {"arrived"}
                if start <= now
                else {"booked", "cancelled"}
            )
            self.assertIn(appointment.status, expected)
            versions = versions_of[appointment.pk]
            self.assertEqual(
                [(versions[0].history_type, versions[0].status, versions[0].history_date)],
                [("+", "booked", appointment.created_at)],
            )
            self.assertEqual(
                (versions[-1].status, versions[-1].history_date), (appointment.status, appointment.updated_at)
            )
            steps = set(itertools.pairwise(version.status for version in versions))
            self.assertLessEqual(steps, STEPS)
            self.assertEqual({version.history_user_id for version in versions}, {appointment.created_by_id})

    def test_appointments_keep_both_invariants_in_the_clinic_zone(self):
        for now in [BERLIN_NOW, AUCKLAND_NOW]:
            with self.subTest(zone=now.tzinfo.key), clinic_time_zone(now.tzinfo.key):
                output = seed_at(now, "--reset", patients=120, doctors=6, mappings=300, appointments=700, front_desk=2)
                self.assertIn("700 appointments, each with its history", output)
                self.assertEqual(Appointment.objects.count(), 700)
                self.assert_invariants(now)
                # A realistic mix: every status, past and future, booked by the front desk and by owners.
                self.assertEqual(set(Appointment.objects.values_list("status", flat=True)), set(AppointmentStatus))
                bookers = Appointment.objects.values_list("created_by__groups__name", flat=True).distinct()
                self.assertEqual(set(bookers), {Role.FRONT_DESK, None})
                self.assertGreater(Appointment.objects.exclude(reason="").count(), 400)

    def test_the_23_hour_day_gets_appointments_too(self):
        with clinic_time_zone("Europe/Berlin"):
            seed_at(BERLIN_NOW, patients=100, doctors=6, mappings=300, appointments=700, weeks=1)
            day = day_bounds(date(2027, 3, 29), settings.CLINIC_TIME_ZONE)  # the Monday after clocks went forward
            self.assertGreater(Appointment.objects.filter(start__gte=day.start, start__lt=day.end).count(), 0)
            self.assert_invariants(BERLIN_NOW, weeks=1)

    def test_it_fills_doctor_days_to_their_limits_and_the_database_still_checks_them(self):
        with clinic_time_zone("Europe/Berlin"):
            with self.assertRaises(CommandError) as refused:
                seed_at(BERLIN_NOW, patients=200, doctors=2, mappings=400, appointments=10**6, weeks=1)
            message = str(refused.exception)
            self.assertIn("--appointments 1,000,000 is more than the ", message)
            self.assertEqual((Patient.objects.count(), Appointment.objects.count()), (0, 0))
            fit = int(message.split("more than the ")[1].split(" ")[0].replace(",", ""))
            seed_at(BERLIN_NOW, patients=200, doctors=2, mappings=400, appointments=fit, weeks=1)
            self.assert_invariants(BERLIN_NOW, weeks=1)
            zone = settings.CLINIC_TIME_ZONE
            for doctor in Doctor.objects.all():
                for day in {clinic_day(start, zone) for start in doctor.appointments.values_list("start", flat=True)}:
                    hours = doctor.working_hours.filter(weekday=day.weekday()).values_list("start_minute", "end_minute")
                    slots = day_slots(day, hours, SLOT_MINUTES[doctor.specialization], zone)
                    bounds = day_bounds(day, zone)
                    on_day = doctor.appointments.filter(start__gte=bounds.start, start__lt=bounds.end)
                    self.assertEqual(on_day.count(), min(doctor.max_appointments_per_day, len(slots)))
            # Full: the trigger refuses one more, even at a free time, whatever writes it.
            doctor, day, taken, limit = doctor_days(zone.key)[0]
            self.assertEqual(taken, limit)
            early = wall_time_instant(day, 6 * 60, zone)
            with self.assertRaisesMessage(IntegrityError, "appointment_daily_limit"), transaction.atomic():
                factories.make_appointment(Patient.objects.first(), Doctor.objects.get(pk=doctor), early, minutes=15)

    def test_the_same_seed_gives_the_same_appointments_and_the_same_people_as_without_them(self):
        seed_at(BERLIN_NOW, "--reset", appointments=100)
        first, people = appointment_keys(), demo_people()
        self.assertEqual(len(first), 100)
        seed_at(BERLIN_NOW, "--reset", appointments=100)
        self.assertEqual(appointment_keys(), first)
        seed_at(BERLIN_NOW, "--reset", appointments=100, seed=7)
        self.assertNotEqual(appointment_keys(), first)
        seed_at(BERLIN_NOW, "--reset")
        self.assertEqual(demo_people(), people)

    def test_every_new_doctor_has_a_working_week_that_the_api_shows(self):
        seed(doctors=12)
        for doctor in Doctor.objects.all():
            response = factories.client_for(User.objects.get(username="demo1")).get(
                reverse("doctor-working-hours", args=[doctor.pk])
            )
            week = response.json()
            self.assertGreaterEqual(len(week), 5, doctor)
            self.assertTrue(all("07:30" <= item["start"] < item["end"] <= "18:00" for item in week), week)
            self.assertLessEqual({item["weekday"] for item in week}, set(range(6)))

    def test_it_refuses_appointments_without_assignments_or_that_do_not_fit_the_patients(self):
        with self.assertRaisesMessage(CommandError, "--appointments needs --mappings"):
            seed(mappings=0, appointments=1)
        with self.assertRaisesMessage(CommandError, "Only "):
            seed(patients=2, doctors=5, mappings=10, appointments=500)  # 2 patients, at most one appointment a day
        self.assertEqual(set(counts().values()) | set(care_counts().values()), {0})


class CareTeamResetTests(ApiTestCase):
    def test_reset_and_delete_remove_appointments_hours_grants_and_links_and_leave_others_alone(self):
        real = factories.make_user("real")
        real_patient, real_doctor = factories.make_patient(real), factories.make_doctor(real)
        factories.make_mapping(real_patient, real_doctor)
        real_appointment = factories.make_appointment(real_patient, real_doctor, timezone.now() + timedelta(days=2))
        real_clinician = factories.make_clinician(real_doctor, "realclinician")
        seed("--clinicians", front_desk=1, appointments=80)
        demo_patient = Patient.objects.filter(created_by__username="demo1").first()
        # Demo clinicians break the glass on a demo and on a real patient; a real one on a demo patient; a demo account
        # is linked by staff to a real doctor; a demo patient books a real doctor: all demo data, which goes.
        factories.make_grant(User.objects.get(username="clinician1"), demo_patient)
        factories.make_grant(real_clinician, demo_patient)
        factories.make_grant(User.objects.get(username="clinician2"), real_patient)
        real_doctor_2 = factories.make_doctor(real)
        User.objects.filter(username="frontdesk1").update(doctor=real_doctor_2)
        factories.make_appointment(demo_patient, real_doctor, timezone.now() + timedelta(days=3, hours=1))
        self.assertGreater(care_counts()["appointment versions"], 80)
        hours = WorkingHours.objects.count()
        output = seed("--reset", "--clinicians", front_desk=1, appointments=80)
        self.assertIn(
            f"Deleted 9 demo accounts, 30 patients, 5 doctors and 40 assignments, {hours} working-hour ranges, "
            "81 appointments and 3 emergency access grants",
            output,
        )
        seed("--delete")
        self.assertEqual(list(Appointment.objects.values_list("pk", flat=True)), [real_appointment.pk])
        self.assertEqual(Appointment.history.count(), 1)
        self.assertEqual(WorkingHours.objects.count(), 0)  # the real doctors have none
        self.assertEqual(EmergencyAccessGrant.objects.count(), 0)
        self.assertEqual(
            dict(User.objects.values_list("username", "doctor")), {"real": None, "realclinician": real_doctor.pk}
        )
        self.assertEqual(set(Doctor.objects.values_list("pk", flat=True)), {real_doctor.pk, real_doctor_2.pk})
        self.assertEqual(list(Patient.objects.values_list("pk", flat=True)), [real_patient.pk])
        self.assertEqual(
            list(User.objects.get(username="realclinician").groups.values_list("name", flat=True)), ["clinician"]
        )

    def test_reset_refuses_when_another_accounts_patient_has_an_appointment_with_a_demo_doctor(self):
        real = factories.make_user("real")
        seed(appointments=40)
        patient = factories.make_patient(real)
        factories.make_appointment(
            patient, Doctor.objects.first(), timezone.now() + timedelta(days=60), status="cancelled"
        )
        before = {**counts(), **care_counts()}
        with self.assertRaisesMessage(CommandError, "Other accounts' patients have 1 appointments with demo doctors"):
            seed("--reset")
        self.assertEqual({**counts(), **care_counts()}, before)

    def test_reset_refuses_when_a_real_account_is_linked_to_a_demo_doctor(self):
        seed()
        real = factories.make_clinician(Doctor.objects.first(), "real")
        before = {**counts(), **care_counts()}
        with self.assertRaisesMessage(
            CommandError, f"Accounts that are not demo accounts are linked to demo doctors (user ids {real.pk})"
        ):
            seed("--delete")
        self.assertEqual({**counts(), **care_counts()}, before)

    def test_reset_refuses_when_a_demo_front_desk_account_booked_for_another_accounts_patient(self):
        real = factories.make_user("real")
        patient, doctor = factories.make_patient(real), factories.make_doctor(real)
        seed(front_desk=1)
        log_in(self.client, "frontdesk1")
        start = timezone.now().replace(microsecond=0) + timedelta(days=5)
        response = self.client.post(
            reverse("appointment-list"),
            {
                "patient": patient.pk,
                "doctor": doctor.pk,
                "start": start.isoformat(),
                "end": (start + timedelta(minutes=20)).isoformat(),
            },
            format="json",
        )
        self.assertEqual(response.status_code, status.HTTP_201_CREATED, response.content)
        before = {**counts(), **care_counts()}
        with self.assertRaisesMessage(CommandError, "Demo accounts made 2 changes to other accounts' records"):
            seed("--reset")
        self.assertEqual({**counts(), **care_counts()}, before)
