"""`manage.py seed_demo`: what it creates, --reset and --delete, the refusals, and logging in as a demo account."""

import io
from unittest import mock

from django.contrib.auth.hashers import check_password
from django.core.management import CommandError, call_command
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from rest_framework import status

from hospital.management.commands import seed_demo
from hospital.models import Doctor, Gender, Patient, PatientDoctorMapping, Specialization, User
from hospital.tests import factories
from hospital.tests.base import ApiTestCase, ids

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
