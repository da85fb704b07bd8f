"""Soft delete of patients: DELETE marks the row (kept, with its assignments), hides it from everyone;
staff list deleted patients with ?deleted=true and restore them with POST /api/patients/<id>/restore/."""

from django.urls import reverse
from django.utils import timezone
from rest_framework import status

from hospital.models import Doctor, Patient, PatientDoctorMapping
from hospital.tests import factories
from hospital.tests.base import ApiTestCase, call, ids

LIST_URL = reverse("patient-list")
MAPPING_LIST_URL = reverse("mapping-list")
VALID_BODY = {"firstname": "Ada", "lastname": "Lovelace", "age": 36, "gender": "F", "email": "ada@example.com"}
WRITES = [("GET", None), ("PUT", VALID_BODY), ("PATCH", {"firstname": "Changed"}), ("DELETE", None)]


def detail_url(pk: int) -> str:
    return reverse("patient-detail", args=[pk])


def restore_url(pk: int) -> str:
    return reverse("patient-restore", args=[pk])


def patient_doctors_url(pk: int) -> str:
    return reverse("patient-doctors", kwargs={"patient_id": pk})


def missing_patient_id() -> int:
    return (Patient.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1000


class SoftDeleteTestCase(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        cls.other = factories.make_user()
        cls.staff = factories.make_user(is_staff=True)
        cls.patient = factories.make_patient(cls.owner, firstname="Gone")
        cls.kept = factories.make_patient(cls.owner, firstname="Kept")
        cls.others_patient = factories.make_patient(cls.other)
        cls.doctors = [factories.make_doctor(cls.other) for _ in range(2)]
        cls.mappings = [factories.make_mapping(cls.patient, doctor) for doctor in cls.doctors]
        cls.kept_mapping = factories.make_mapping(cls.kept, cls.doctors[0])

    def setUp(self):
        super().setUp()
        self.owner_client = factories.client_for(self.owner)
        self.other_client = factories.client_for(self.other)
        self.staff_client = factories.client_for(self.staff)

    def delete_patient(self, client=None, patient=None):
        response = (client or self.owner_client).delete(detail_url((patient or self.patient).pk))
        self.assertEqual(response.status_code, status.HTTP_204_NO_CONTENT, response.content)
        return response


class SoftDeleteTests(SoftDeleteTestCase):
    def test_it_keeps_the_row_marked_deleted_by_the_caller(self):
        before = timezone.now()
        response = self.delete_patient()
        after = timezone.now()
        self.assertEqual(response.content, b"")
        self.patient.refresh_from_db()
        self.assertTrue(before <= self.patient.deleted_at <= after)
        self.assertEqual(self.patient.deleted_by, self.owner)
        self.assertEqual((self.patient.firstname, self.patient.created_by), ("Gone", self.owner))

    def test_it_marks_staff_as_the_deleter_of_another_users_patient(self):
        self.delete_patient(self.staff_client)
        self.patient.refresh_from_db()
        self.assertIsNotNone(self.patient.deleted_at)
        self.assertEqual(self.patient.deleted_by, self.staff)

    def test_it_shows_null_deletion_fields_on_live_patients(self):
        body = self.owner_client.get(detail_url(self.kept.pk)).json()
        self.assertEqual((body["deleted_at"], body["deleted_by"]), (None, None))

    def test_it_answers_404_to_everyone_exactly_like_a_missing_patient(self):
        self.delete_patient()
        deleted_at = Patient.objects.get(pk=self.patient.pk).deleted_at
        missing = missing_patient_id()
        for client_name in ["owner_client", "staff_client"]:
            client = getattr(self, client_name)
            for method, body in WRITES:
                with self.subTest(client=client_name, method=method):
                    deleted = call(client, method, detail_url(self.patient.pk), body)
                    absent = call(client, method, detail_url(missing), body)
                    self.assertEqual(deleted.status_code, status.HTTP_404_NOT_FOUND)
                    self.assertEqual(deleted.content, absent.content)
        self.patient.refresh_from_db()
        self.assertEqual(
            (self.patient.firstname, self.patient.deleted_at, self.patient.deleted_by),
            ("Gone", deleted_at, self.owner),
        )

    def test_it_leaves_a_deleted_patient_out_of_the_lists_and_their_totals(self):
        self.delete_patient()
        response = self.owner_client.get(LIST_URL)
        self.assertEqual((ids(response), response["X-Total-Count"]), ([self.kept.pk], "1"))
        live = [self.kept.pk, self.others_patient.pk]
        for query in [{}, {"deleted": "false"}, {"search": "Gone"}]:
            with self.subTest(query=query):
                response = self.staff_client.get(LIST_URL, query)
                self.assertEqual(response.status_code, status.HTTP_200_OK)
                expected = [] if "search" in query else live
                self.assertEqual(ids(response), expected)
                self.assertEqual(response["X-Total-Count"], str(len(expected)))

    def test_it_hides_the_mappings_of_a_deleted_patient_and_keeps_their_rows(self):
        self.delete_patient()
        for client in [self.owner_client, self.staff_client]:
            response = client.get(MAPPING_LIST_URL)
            self.assertEqual(response.status_code, status.HTTP_200_OK)
            self.assertEqual(ids(response), [self.kept_mapping.pk])
            self.assertEqual(response["X-Total-Count"], "1")
            self.assertEqual(client.get(MAPPING_LIST_URL, {"patient": self.patient.pk}).json(), [])
            self.assertEqual(client.get(patient_doctors_url(self.patient.pk)).status_code, status.HTTP_404_NOT_FOUND)
            for mapping in self.mappings:
                response = client.delete(reverse("mapping-delete", args=[mapping.pk]))
                self.assertEqual(response.status_code, status.HTTP_404_NOT_FOUND)
        self.assertEqual(
            list(PatientDoctorMapping.objects.filter(patient=self.patient).values_list("id", flat=True)),
            [mapping.pk for mapping in self.mappings],
        )

    def test_it_ignores_deletion_fields_in_a_written_body(self):
        detail = detail_url(self.kept.pk)
        marked = {"deleted_at": "2024-01-01T00:00:00Z", "deleted_by": self.owner.pk}
        for method, body in [("PATCH", marked), ("PUT", {**VALID_BODY, **marked})]:
            with self.subTest(method=method):
                response = call(self.owner_client, method, detail, body)
                self.assertEqual(response.status_code, status.HTTP_200_OK, response.content)
                self.assertEqual((response.json()["deleted_at"], response.json()["deleted_by"]), (None, None))
        self.kept.refresh_from_db()
        self.assertEqual((self.kept.deleted_at, self.kept.deleted_by), (None, None))
        response = self.owner_client.post(LIST_URL, {**VALID_BODY, **marked}, format="json")
        self.assertEqual(response.status_code, status.HTTP_201_CREATED)
        self.assertIsNone(Patient.objects.get(pk=response.json()["id"]).deleted_at)

    def test_it_refuses_to_assign_a_doctor_to_a_deleted_patient(self):
        self.delete_patient()
        doctor = factories.make_doctor(self.other)
        for client in [self.owner_client, self.staff_client]:
            body = {"patient": self.patient.pk, "doctor": doctor.pk}
            response = client.post(MAPPING_LIST_URL, body, format="json")
            self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST)
            self.assertIn("patient", response.json())
        self.assertFalse(PatientDoctorMapping.objects.filter(doctor=doctor).exists())


class DeletedListTests(SoftDeleteTestCase):
    def test_it_lists_only_deleted_patients_to_staff(self):
        self.delete_patient()
        self.delete_patient(self.staff_client, self.others_patient)
        for value in ["true", "True", "1"]:
            with self.subTest(value=value):
                response = self.staff_client.get(LIST_URL, {"deleted": value})
                self.assertEqual(response.status_code, status.HTTP_200_OK)
                self.assertEqual(ids(response), [self.patient.pk, self.others_patient.pk])
                self.assertEqual(response["X-Total-Count"], "2")
        rows = self.staff_client.get(LIST_URL, {"deleted": "true"}).json()
        self.assertEqual([row["deleted_by"] for row in rows], [self.owner.pk, self.staff.pk])
        self.assertTrue(all(row["deleted_at"] for row in rows))

    def test_it_lists_nothing_when_no_patient_is_deleted(self):
        response = self.staff_client.get(LIST_URL, {"deleted": "true"})
        self.assertEqual((response.status_code, response.json(), response["X-Total-Count"]), (200, [], "0"))

    def test_it_forbids_non_staff_to_list_deleted_patients(self):
        self.delete_patient()
        for client in [self.owner_client, self.other_client]:
            response = client.get(LIST_URL, {"deleted": "true"})
            self.assertEqual(response.status_code, status.HTTP_403_FORBIDDEN)
            self.assertIn("detail", response.json())
        response = self.owner_client.get(LIST_URL, {"deleted": "false"})
        self.assertEqual((response.status_code, ids(response)), (200, [self.kept.pk]))

    def test_it_rejects_an_invalid_deleted_value(self):
        for client_name in ["staff_client", "owner_client"]:
            for value in ["maybe", "2", "truee"]:
                with self.subTest(client=client_name, value=value):
                    response = getattr(self, client_name).get(LIST_URL, {"deleted": value})
                    self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST)
                    self.assertIsInstance(response.json()["deleted"], list)


class RestoreTests(SoftDeleteTestCase):
    def test_it_restores_a_deleted_patient_with_its_etag(self):
        self.delete_patient()
        response = self.staff_client.post(restore_url(self.patient.pk))
        self.assertEqual(response.status_code, status.HTTP_200_OK, response.content)
        body = response.json()
        self.assertEqual((body["id"], body["deleted_at"], body["deleted_by"]), (self.patient.pk, None, None))
        current = self.owner_client.get(detail_url(self.patient.pk))
        self.assertEqual(current.status_code, status.HTTP_200_OK)
        self.assertEqual(body, current.json())
        self.assertEqual(response["ETag"], current["ETag"])
        self.patient.refresh_from_db()
        self.assertEqual((self.patient.deleted_at, self.patient.deleted_by), (None, None))
        self.assertEqual(ids(self.owner_client.get(LIST_URL)), [self.patient.pk, self.kept.pk])
        self.assertEqual(self.staff_client.get(LIST_URL, {"deleted": "true"}).json(), [])

    def test_it_shows_the_restored_patients_mappings_again(self):
        self.delete_patient()
        self.staff_client.post(restore_url(self.patient.pk))
        mappings = self.owner_client.get(MAPPING_LIST_URL)
        self.assertEqual(ids(mappings), [*[mapping.pk for mapping in self.mappings], self.kept_mapping.pk])
        doctors = self.owner_client.get(patient_doctors_url(self.patient.pk))
        self.assertEqual(doctors.status_code, status.HTTP_200_OK)
        self.assertEqual([doctor["id"] for doctor in doctors.json()["doctors"]], [d.pk for d in self.doctors])

    def test_it_does_not_bring_back_a_doctor_deleted_meanwhile(self):
        self.delete_patient()
        gone = self.doctors[1]
        self.assertEqual(self.staff_client.delete(reverse("doctor-detail", args=[gone.pk])).status_code, 204)
        self.assertEqual(self.staff_client.post(restore_url(self.patient.pk)).status_code, status.HTTP_200_OK)
        self.assertFalse(Doctor.objects.filter(pk=gone.pk).exists())
        doctors = self.owner_client.get(patient_doctors_url(self.patient.pk)).json()["doctors"]
        self.assertEqual([doctor["id"] for doctor in doctors], [self.doctors[0].pk])
        self.assertEqual(ids(self.owner_client.get(MAPPING_LIST_URL)), [self.mappings[0].pk, self.kept_mapping.pk])

    def test_it_lets_the_owner_use_a_restored_patient_again(self):
        self.delete_patient()
        self.staff_client.post(restore_url(self.patient.pk))
        response = self.owner_client.patch(detail_url(self.patient.pk), {"age": 41}, format="json")
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        doctor = factories.make_doctor(self.other)
        body = {"patient": self.patient.pk, "doctor": doctor.pk}
        self.assertEqual(self.owner_client.post(MAPPING_LIST_URL, body, format="json").status_code, 201)

    def test_it_forbids_non_staff_to_restore(self):
        self.delete_patient()
        for client in [self.owner_client, self.other_client]:
            response = client.post(restore_url(self.patient.pk))
            self.assertEqual(response.status_code, status.HTTP_403_FORBIDDEN)
            self.assertIn("detail", response.json())
        response = factories.client_for(None).post(restore_url(self.patient.pk))
        self.assertEqual(response.status_code, status.HTTP_401_UNAUTHORIZED)
        self.patient.refresh_from_db()
        self.assertEqual(self.patient.deleted_by, self.owner)
        self.assertEqual(self.owner_client.get(detail_url(self.patient.pk)).status_code, status.HTTP_404_NOT_FOUND)

    def test_it_answers_404_for_a_missing_patient(self):
        for pk in [missing_patient_id(), 2**63, 10**30]:
            with self.subTest(pk=pk):
                response = self.staff_client.post(restore_url(pk))
                self.assertEqual(response.status_code, status.HTTP_404_NOT_FOUND)
                self.assertIn("detail", response.json())

    def test_it_answers_409_for_a_patient_that_is_not_deleted(self):
        updated_at = self.kept.updated_at
        response = self.staff_client.post(restore_url(self.kept.pk))
        self.assertEqual(response.status_code, status.HTTP_409_CONFLICT)
        self.assertIn("detail", response.json())
        self.kept.refresh_from_db()
        self.assertEqual((self.kept.updated_at, self.kept.deleted_at), (updated_at, None))
        self.assertEqual(Patient.history.filter(id=self.kept.pk).count(), 1)

    def test_a_second_restore_is_409(self):
        self.delete_patient()
        self.assertEqual(self.staff_client.post(restore_url(self.patient.pk)).status_code, status.HTTP_200_OK)
        self.assertEqual(self.staff_client.post(restore_url(self.patient.pk)).status_code, status.HTTP_409_CONFLICT)
