"""History: every saved version of patients, doctors and mappings; /api/patients/<id>/history/ and
/api/doctors/<id>/history/ list them newest first, each with the fields it changed."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework import status

from hospital.models import Doctor, Patient, PatientDoctorMapping
from hospital.tests import factories
from hospital.tests.base import DOCTOR_FIELDS, PATIENT_BODY, PATIENT_FIELDS, ApiTestCase, links

DOCTOR_BODY = {
    "firstname": "Gregory",
    "lastname": "House",
    "specialization": "NEUR",
    "gender": "M",
    "email": "house@example.com",
}
VERSION_FIELDS = {"version", "change", "changed_at", "changed_by", "changes", "record"}
# A first version lists the fields it set (non-null); updated_at never, deleted_at/deleted_by are null.
PATIENT_CREATED_FIELDS = PATIENT_FIELDS - {"updated_at", "deleted_at", "deleted_by"}
DOCTOR_CREATED_FIELDS = DOCTOR_FIELDS - {"updated_at"}


def patient_history_url(pk: int) -> str:
    return reverse("patient-history", args=[pk])


def doctor_history_url(pk: int) -> str:
    return reverse("doctor-history", args=[pk])


def changes_of(row: dict) -> dict[str, tuple]:
    """A version's changes as {field: (old, new)}."""
    return {change["field"]: (change["old"], change["new"]) for change in row["changes"]}


class HistoryTestCase(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        cls.other = factories.make_user()
        cls.staff = factories.make_user(is_staff=True)

    def setUp(self):
        super().setUp()
        self.owner_client = factories.client_for(self.owner)
        self.other_client = factories.client_for(self.other)
        self.staff_client = factories.client_for(self.staff)

    def create_patient(self, body=PATIENT_BODY) -> int:
        response = self.owner_client.post(reverse("patient-list"), body, format="json")
        self.assertEqual(response.status_code, status.HTTP_201_CREATED, response.content)
        return response.json()["id"]

    def history(self, client, url: str, **query) -> list[dict]:
        response = client.get(url, query)
        self.assertEqual(response.status_code, status.HTTP_200_OK, response.content)
        return response.json()


class PatientHistoryTests(HistoryTestCase):
    def test_it_records_a_first_version_listing_the_fields_it_set(self):
        pk = self.create_patient()
        current = self.owner_client.get(reverse("patient-detail", args=[pk])).json()
        [row] = self.history(self.owner_client, patient_history_url(pk))
        self.assertEqual(set(row), VERSION_FIELDS)
        self.assertEqual(row["version"], 1)
        self.assertEqual((row["change"], row["changed_by"]), ("created", self.owner.pk))
        self.assertEqual(row["record"], current)
        self.assertEqual(set(changes_of(row)), PATIENT_CREATED_FIELDS)
        for change in row["changes"]:
            with self.subTest(field=change["field"]):
                self.assertIsNone(change["old"])
                self.assertEqual(change["new"], current[change["field"]])

    def test_it_lists_versions_newest_first_with_only_the_fields_each_changed(self):
        pk = self.create_patient()
        detail = reverse("patient-detail", args=[pk])
        self.assertEqual(self.owner_client.patch(detail, {"age": 37}, format="json").status_code, 200)
        body = {**PATIENT_BODY, "age": 37, "firstname": "Augusta", "email": "augusta@example.com"}
        self.assertEqual(self.owner_client.put(detail, body, format="json").status_code, 200)
        rows = self.history(self.owner_client, patient_history_url(pk))
        self.assertEqual([row["change"] for row in rows], ["updated", "updated", "created"])
        self.assertEqual([row["version"] for row in rows], [3, 2, 1])
        self.assertEqual(
            rows[0]["changes"],
            [
                {"field": "firstname", "old": "Ada", "new": "Augusta"},
                {"field": "email", "old": "ada@example.com", "new": "augusta@example.com"},
            ],
        )
        self.assertEqual(rows[1]["changes"], [{"field": "age", "old": 36, "new": 37}])
        self.assertEqual((rows[1]["record"]["firstname"], rows[1]["record"]["age"]), ("Ada", 37))
        self.assertEqual(rows[0]["record"], self.owner_client.get(detail).json())

    def test_it_never_lists_updated_at_even_when_nothing_else_changed(self):
        pk = self.create_patient()
        response = self.owner_client.patch(reverse("patient-detail", args=[pk]), {"age": 36}, format="json")
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        newest, first = self.history(self.owner_client, patient_history_url(pk))
        self.assertNotEqual(newest["record"]["updated_at"], first["record"]["updated_at"])
        self.assertEqual((newest["change"], newest["changes"]), ("updated", []))
        self.assertNotIn("updated_at", changes_of(first))

    def test_it_names_the_user_who_made_each_change(self):
        pk = self.create_patient()
        response = self.staff_client.patch(reverse("patient-detail", args=[pk]), {"lastname": "King"}, format="json")
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        rows = self.history(self.owner_client, patient_history_url(pk))
        self.assertEqual([row["changed_by"] for row in rows], [self.staff.pk, self.owner.pk])
        self.assertEqual(changes_of(rows[0]), {"lastname": ("Lovelace", "King")})
        self.assertEqual(rows[0]["record"]["created_by"], self.owner.pk)

    def test_it_shows_a_soft_delete_and_a_restore_as_their_own_kinds_of_change(self):
        pk = self.create_patient()
        self.assertEqual(self.owner_client.delete(reverse("patient-detail", args=[pk])).status_code, 204)
        deleted_at = Patient.objects.get(pk=pk).deleted_at
        self.assertEqual(self.staff_client.post(reverse("patient-restore", args=[pk])).status_code, 200)
        restored, deleted, created = self.history(self.staff_client, patient_history_url(pk))
        self.assertEqual([row["change"] for row in (restored, deleted, created)], ["restored", "deleted", "created"])
        self.assertEqual((deleted["changed_by"], restored["changed_by"]), (self.owner.pk, self.staff.pk))
        deleted_at_text = deleted["record"]["deleted_at"]
        self.assertIsNotNone(deleted_at_text)
        self.assertEqual(deleted["version"], 2)
        self.assertEqual(Patient.history.filter(id=pk).order_by("history_id")[1].deleted_at, deleted_at)
        self.assertEqual(
            changes_of(deleted), {"deleted_at": (None, deleted_at_text), "deleted_by": (None, self.owner.pk)}
        )
        self.assertEqual(
            changes_of(restored), {"deleted_at": (deleted_at_text, None), "deleted_by": (self.owner.pk, None)}
        )
        self.assertEqual((restored["record"]["deleted_at"], restored["record"]["deleted_by"]), (None, None))

    def test_it_diffs_the_last_row_of_a_page_against_the_version_on_the_next_page(self):
        pk = self.create_patient()
        self.owner_client.patch(reverse("patient-detail", args=[pk]), {"age": 37}, format="json")
        self.owner_client.delete(reverse("patient-detail", args=[pk]))
        self.staff_client.post(reverse("patient-restore", args=[pk]))
        url = patient_history_url(pk)
        whole = self.history(self.staff_client, url)
        self.assertEqual(len(whole), 4)
        paged = []
        for page in range(1, 5):
            response = self.staff_client.get(url, {"page_size": 1, "page": page})
            self.assertEqual(response.status_code, status.HTTP_200_OK)
            self.assertEqual(response["X-Total-Count"], "4")
            paged.extend(response.json())
        self.assertEqual(paged, whole)
        self.assertEqual([row["change"] for row in paged], ["restored", "deleted", "updated", "created"])
        self.assertEqual(changes_of(paged[2]), {"age": (36, 37)})
        self.assertEqual(set(changes_of(paged[1])), {"deleted_at", "deleted_by"})
        first_page = self.staff_client.get(url, {"page_size": 1})
        self.assertEqual(links(first_page)["next"], {"page": ["2"], "page_size": ["1"]})
        self.assertEqual(self.staff_client.get(url, {"page_size": 1, "page": 5}).status_code, 404)

    def test_it_numbers_each_records_versions_from_one_whatever_other_records_do_meanwhile(self):
        first, second = self.create_patient(), self.create_patient()
        for age in (40, 41):
            for pk in (first, second):
                self.owner_client.patch(reverse("patient-detail", args=[pk]), {"age": age}, format="json")
        for pk in (first, second):
            with self.subTest(patient=pk):
                url = patient_history_url(pk)
                self.assertEqual([row["version"] for row in self.history(self.owner_client, url)], [3, 2, 1])
                self.assertEqual(
                    [row["version"] for row in self.history(self.owner_client, url, page=2, page_size=2)], [1]
                )

    def test_it_reads_the_history_in_a_constant_number_of_queries(self):
        pk = self.create_patient()
        url = patient_history_url(pk)

        def count_queries() -> int:
            with CaptureQueriesContext(connection) as queries:
                self.history(self.owner_client, url)
            return len(queries)

        self.owner_client.patch(reverse("patient-detail", args=[pk]), {"age": 1}, format="json")
        few = count_queries()
        for age in range(2, 12):
            self.owner_client.patch(reverse("patient-detail", args=[pk]), {"age": age}, format="json")
        self.assertEqual(count_queries(), few)


class PatientHistoryAccessTests(HistoryTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.patient = factories.make_patient(cls.owner)
        cls.deleted = factories.make_patient(cls.owner)
        Patient.objects.filter(pk=cls.deleted.pk).update(deleted_at="2024-01-01T00:00:00Z", deleted_by=cls.owner)

    def test_it_shows_the_history_to_the_creator_and_staff(self):
        for client in [self.owner_client, self.staff_client]:
            [row] = self.history(client, patient_history_url(self.patient.pk))
            self.assertEqual(row["record"]["id"], self.patient.pk)
            # Created outside a request: nobody to name.
            self.assertIsNone(row["changed_by"])

    def test_it_hides_another_users_patient_history_exactly_like_a_missing_one(self):
        missing = Patient.objects.order_by("-id").first().pk + 1000
        hidden = self.other_client.get(patient_history_url(self.patient.pk))
        absent = self.other_client.get(patient_history_url(missing))
        self.assertEqual(hidden.status_code, status.HTTP_404_NOT_FOUND)
        self.assertEqual(absent.status_code, status.HTTP_404_NOT_FOUND)
        self.assertEqual(hidden.content, absent.content)
        for pk in [missing, 2**63, 10**30]:
            with self.subTest(pk=pk):
                self.assertEqual(self.staff_client.get(patient_history_url(pk)).status_code, 404)

    def test_it_shows_a_deleted_patients_history_to_staff_only(self):
        missing = Patient.objects.order_by("-id").first().pk + 1000
        hidden = self.owner_client.get(patient_history_url(self.deleted.pk))
        self.assertEqual(hidden.status_code, status.HTTP_404_NOT_FOUND)
        self.assertEqual(hidden.content, self.owner_client.get(patient_history_url(missing)).content)
        self.assertEqual(self.other_client.get(patient_history_url(self.deleted.pk)).status_code, 404)
        [row] = self.history(self.staff_client, patient_history_url(self.deleted.pk))
        self.assertEqual(row["record"]["id"], self.deleted.pk)

    def test_it_answers_401_to_anonymous_callers(self):
        response = factories.client_for(None).get(patient_history_url(self.patient.pk))
        self.assertEqual(response.status_code, status.HTTP_401_UNAUTHORIZED)


class DoctorHistoryTests(HistoryTestCase):
    def create_doctor(self) -> int:
        response = self.owner_client.post(reverse("doctor-list"), DOCTOR_BODY, format="json")
        self.assertEqual(response.status_code, status.HTTP_201_CREATED, response.content)
        return response.json()["id"]

    def test_it_records_the_creation_and_each_update_with_who_made_it(self):
        pk = self.create_doctor()
        detail = reverse("doctor-detail", args=[pk])
        response = self.staff_client.patch(detail, {"max_appointments_per_day": 20}, format="json")
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(self.owner_client.patch(detail, {"email": "gh@example.com"}, format="json").status_code, 200)
        rows = self.history(self.other_client, doctor_history_url(pk))
        self.assertEqual([row["change"] for row in rows], ["updated", "updated", "created"])
        self.assertEqual([row["changed_by"] for row in rows], [self.owner.pk, self.staff.pk, self.owner.pk])
        self.assertEqual(rows[0]["changes"], [{"field": "email", "old": "house@example.com", "new": "gh@example.com"}])
        self.assertEqual(rows[1]["changes"], [{"field": "max_appointments_per_day", "old": 10, "new": 20}])
        self.assertEqual(set(changes_of(rows[2])), DOCTOR_CREATED_FIELDS)
        self.assertTrue(all(change["old"] is None for change in rows[2]["changes"]))
        self.assertEqual(rows[0]["record"], self.other_client.get(detail).json())
        self.assertEqual(rows[1]["record"]["email"], "house@example.com")
        self.assertEqual(rows[2]["record"]["max_appointments_per_day"], 10)

    def test_it_pages_doctor_versions_with_correct_diffs(self):
        pk = self.create_doctor()
        for lastname in ["Wilson", "Cuddy"]:
            self.owner_client.patch(reverse("doctor-detail", args=[pk]), {"lastname": lastname}, format="json")
        second = self.staff_client.get(doctor_history_url(pk), {"page_size": 1, "page": 2})
        self.assertEqual(second["X-Total-Count"], "3")
        [row] = second.json()
        self.assertEqual(row["changes"], [{"field": "lastname", "old": "House", "new": "Wilson"}])

    def test_it_shows_the_history_to_anyone_signed_in_and_401_to_anonymous_callers(self):
        pk = self.create_doctor()
        for client in [self.owner_client, self.other_client, self.staff_client]:
            self.assertEqual(len(self.history(client, doctor_history_url(pk))), 1)
        response = factories.client_for(None).get(doctor_history_url(pk))
        self.assertEqual(response.status_code, status.HTTP_401_UNAUTHORIZED)

    def test_it_answers_404_for_a_missing_or_deleted_doctor_and_keeps_its_versions(self):
        pk = self.create_doctor()
        self.assertEqual(self.owner_client.delete(reverse("doctor-detail", args=[pk])).status_code, 204)
        for doctor_id in [pk, pk + 1000, 2**63]:
            with self.subTest(doctor_id=doctor_id):
                response = self.other_client.get(doctor_history_url(doctor_id))
                self.assertEqual(response.status_code, status.HTTP_404_NOT_FOUND)
        kinds = list(Doctor.history.filter(id=pk).order_by("history_id").values_list("history_type", "history_user"))
        self.assertEqual(kinds, [("+", self.owner.pk), ("-", self.owner.pk)])


class MappingHistoryTests(HistoryTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.patient = factories.make_patient(cls.owner)
        cls.doctor = factories.make_doctor(cls.other)

    def assign(self) -> int:
        body = {"patient": self.patient.pk, "doctor": self.doctor.pk}
        response = self.owner_client.post(reverse("mapping-list"), body, format="json")
        self.assertEqual(response.status_code, status.HTTP_201_CREATED, response.content)
        return response.json()["id"]

    def versions(self, mapping_id: int) -> list[tuple]:
        return list(
            PatientDoctorMapping.history.filter(id=mapping_id)
            .order_by("history_id")
            .values_list("history_type", "history_user", "patient", "doctor")
        )

    def test_it_records_an_assignment_and_its_removal_through_the_api(self):
        mapping_id = self.assign()
        self.assertEqual(self.versions(mapping_id), [("+", self.owner.pk, self.patient.pk, self.doctor.pk)])
        response = self.staff_client.delete(reverse("mapping-delete", args=[mapping_id]))
        self.assertEqual(response.status_code, status.HTTP_204_NO_CONTENT)
        self.assertFalse(PatientDoctorMapping.objects.filter(pk=mapping_id).exists())
        pair = (self.patient.pk, self.doctor.pk)
        self.assertEqual(self.versions(mapping_id), [("+", self.owner.pk, *pair), ("-", self.staff.pk, *pair)])

    def test_it_records_the_removal_of_assignments_when_their_doctor_is_deleted(self):
        mapping_id = self.assign()
        response = self.other_client.delete(reverse("doctor-detail", args=[self.doctor.pk]))
        self.assertEqual(response.status_code, status.HTTP_204_NO_CONTENT)
        self.assertEqual(
            [(kind, user) for kind, user, _patient, _doctor in self.versions(mapping_id)],
            [("+", self.owner.pk), ("-", self.other.pk)],
        )

    def test_it_records_no_mapping_version_for_a_failed_assignment(self):
        mapping_id = self.assign()
        body = {"patient": self.patient.pk, "doctor": self.doctor.pk}
        response = self.owner_client.post(reverse("mapping-list"), body, format="json")
        self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST)
        self.assertEqual(PatientDoctorMapping.history.count(), 1)
        self.assertEqual(PatientDoctorMapping.history.get().id, mapping_id)
