"""/api/mappings/...: assigning doctors to the caller's patients (staff: anyone's), through HTTP only."""

from django.urls import reverse
from rest_framework import status

from hospital.models import Doctor, Patient, PatientDoctorMapping
from hospital.tests import factories
from hospital.tests.base import DOCTOR_FIELDS, PATIENT_FIELDS, ApiTestCase, ApiTransactionTestCase, run_concurrently

LIST_URL = reverse("mapping-list")
DUPLICATE_MESSAGE = "This doctor is already assigned to this patient."
MAPPING_FIELDS = {"id", "patient", "doctor", "assigned_at"}


def patient_doctors_url(patient_id: int) -> str:
    return reverse("patient-doctors", kwargs={"patient_id": patient_id})


def delete_url(pk: int) -> str:
    return reverse("mapping-delete", kwargs={"pk": pk})


def deleted_patient_id(owner) -> int:
    """The id of a patient that existed and no longer does: certainly unused."""
    patient = factories.make_patient(owner)
    patient_id = patient.pk
    patient.delete()
    return patient_id


def deleted_doctor_id(owner) -> int:
    doctor = factories.make_doctor(owner)
    doctor_id = doctor.pk
    doctor.delete()
    return doctor_id


class MappingAuthenticationTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        cls.patient = factories.make_patient(cls.owner)
        cls.doctor = factories.make_doctor(cls.owner)
        cls.mapping = factories.make_mapping(cls.patient, cls.doctor)

    def test_it_answers_401_to_anonymous_callers_on_every_mapping_endpoint(self):
        anonymous = factories.client_for(None)
        other_doctor = factories.make_doctor(self.owner)
        requests = [
            ("get", LIST_URL, None),
            ("post", LIST_URL, {"patient": self.patient.pk, "doctor": other_doctor.pk}),
            ("get", patient_doctors_url(self.patient.pk), None),
            ("delete", delete_url(self.mapping.pk), None),
            ("delete", f"/api/mappings/{self.mapping.pk}/delete", None),
        ]
        for method, url, body in requests:
            with self.subTest(method=method, url=url):
                response = getattr(anonymous, method)(url, body, format="json")
                self.assertEqual(response.status_code, status.HTTP_401_UNAUTHORIZED)
                self.assertIn("detail", response.json())
                self.assertIn("Bearer", response["WWW-Authenticate"])
        self.assertEqual(list(PatientDoctorMapping.objects.values_list("id", flat=True)), [self.mapping.pk])


class MappingCreateTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        cls.stranger = factories.make_user()
        cls.staff = factories.make_user(is_staff=True)
        cls.patient = factories.make_patient(cls.owner)
        cls.strangers_patient = factories.make_patient(cls.stranger)
        cls.doctor = factories.make_doctor(cls.stranger)

    def setUp(self):
        super().setUp()
        self.client = factories.client_for(self.owner)

    def assert_rejected(self, response, field):
        """A 400 naming `field`, and no mapping created."""
        self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST, response.content)
        self.assertIn(field, response.json())
        self.assertFalse(PatientDoctorMapping.objects.exists())

    def test_it_assigns_a_doctor_to_the_callers_patient(self):
        response = self.client.post(LIST_URL, {"patient": self.patient.pk, "doctor": self.doctor.pk}, format="json")

        self.assertEqual(response.status_code, status.HTTP_201_CREATED, response.content)
        body = response.json()
        self.assertEqual(set(body), MAPPING_FIELDS)
        mapping = PatientDoctorMapping.objects.get()
        self.assertEqual(body["id"], mapping.pk)
        self.assertEqual(body["patient"], self.patient.pk)
        self.assertEqual(body["doctor"], self.doctor.pk)
        self.assertEqual((mapping.patient_id, mapping.doctor_id), (self.patient.pk, self.doctor.pk))
        self.assertTrue(body["assigned_at"])

    def test_it_also_accepts_the_route_without_its_final_slash(self):
        response = self.client.post(
            "/api/mappings", {"patient": self.patient.pk, "doctor": self.doctor.pk}, format="json"
        )

        self.assertEqual(response.status_code, status.HTTP_201_CREATED, response.content)
        self.assertTrue(PatientDoctorMapping.objects.filter(patient=self.patient, doctor=self.doctor).exists())

    def test_staff_may_assign_a_doctor_to_anyones_patient(self):
        staff = factories.client_for(self.staff)

        response = staff.post(LIST_URL, {"patient": self.strangers_patient.pk, "doctor": self.doctor.pk}, format="json")

        self.assertEqual(response.status_code, status.HTTP_201_CREATED, response.content)
        self.assertTrue(PatientDoctorMapping.objects.filter(patient=self.strangers_patient).exists())

    def test_another_users_patient_is_rejected_exactly_like_a_missing_one(self):
        body = {"patient": self.strangers_patient.pk, "doctor": self.doctor.pk}
        foreign = self.client.post(LIST_URL, body, format="json")
        self.assert_rejected(foreign, "patient")

        # The same id once the patient is gone: a different answer would reveal that it existed.
        PatientDoctorMapping.objects.filter(patient=self.strangers_patient).delete()
        Patient.objects.filter(pk=self.strangers_patient.pk).delete()
        missing = self.client.post(LIST_URL, body, format="json")

        self.assert_rejected(missing, "patient")
        self.assertEqual(foreign.json(), missing.json())

    def test_it_rejects_a_patient_id_that_never_existed(self):
        response = self.client.post(
            LIST_URL, {"patient": deleted_patient_id(self.owner), "doctor": self.doctor.pk}, format="json"
        )

        self.assert_rejected(response, "patient")
        self.assertNotIn("doctor", response.json())

    def test_it_rejects_a_doctor_that_does_not_exist(self):
        response = self.client.post(
            LIST_URL, {"patient": self.patient.pk, "doctor": deleted_doctor_id(self.owner)}, format="json"
        )

        self.assert_rejected(response, "doctor")
        self.assertNotIn("patient", response.json())

    def test_it_rejects_missing_fields(self):
        response = self.client.post(LIST_URL, {}, format="json")

        self.assert_rejected(response, "patient")
        self.assertIn("doctor", response.json())

    def test_it_rejects_ids_of_the_wrong_type_with_400_never_500(self):
        # `pk + 0.5` would be truncated to an existing id if floats were passed through to the query.
        wrong_values = ["x", True, "null", None, 10**30, -1, [1], {"id": 1}]
        valid = {"patient": self.patient.pk, "doctor": self.doctor.pk}
        for field in ("patient", "doctor"):
            for value in [*wrong_values, valid[field] + 0.5, str(valid[field])]:
                with self.subTest(field=field, value=value):
                    response = self.client.post(LIST_URL, {**valid, field: value}, format="json")
                    try:
                        self.assert_rejected(response, field)
                    finally:
                        # A wrongly accepted value must not make the next ones fail as duplicates.
                        PatientDoctorMapping.objects.all().delete()

    def test_it_rejects_the_same_pair_twice_naming_the_doctor(self):
        factories.make_mapping(self.patient, self.doctor)

        response = self.client.post(LIST_URL, {"patient": self.patient.pk, "doctor": self.doctor.pk}, format="json")

        self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST)
        self.assertEqual(response.json(), {"doctor": [DUPLICATE_MESSAGE]})
        self.assertEqual(PatientDoctorMapping.objects.count(), 1)

    def test_the_same_doctor_may_be_assigned_to_several_patients(self):
        second_patient = factories.make_patient(self.owner)
        factories.make_mapping(self.patient, self.doctor)

        response = self.client.post(LIST_URL, {"patient": second_patient.pk, "doctor": self.doctor.pk}, format="json")

        self.assertEqual(response.status_code, status.HTTP_201_CREATED, response.content)
        self.assertEqual(PatientDoctorMapping.objects.filter(doctor=self.doctor).count(), 2)


class MappingCreateRaceTests(ApiTransactionTestCase):
    THREADS = 8

    def setUp(self):
        super().setUp()
        self.owner = factories.make_user()
        self.patient = factories.make_patient(self.owner)
        self.doctor = factories.make_doctor(self.owner)

    def test_concurrent_duplicate_assignments_create_exactly_one_mapping(self):
        # Each thread gets its own client (issuing a token writes to the database, so do it up front)
        # and, being a separate thread, its own database connection.
        clients = [factories.client_for(self.owner) for _ in range(self.THREADS)]
        body = {"patient": self.patient.pk, "doctor": self.doctor.pk}

        responses = run_concurrently(clients, lambda client: client.post(LIST_URL, body, format="json"))

        codes = sorted(response.status_code for response in responses)
        self.assertEqual(codes, [status.HTTP_201_CREATED] + [status.HTTP_400_BAD_REQUEST] * (self.THREADS - 1))
        for response in responses:
            if response.status_code == status.HTTP_400_BAD_REQUEST:
                self.assertEqual(response.json(), {"doctor": [DUPLICATE_MESSAGE]})
        self.assertEqual(PatientDoctorMapping.objects.filter(patient=self.patient, doctor=self.doctor).count(), 1)


class MappingListTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        cls.stranger = factories.make_user()
        cls.staff = factories.make_user(is_staff=True)
        cls.patient = factories.make_patient(cls.owner)
        cls.other_patient = factories.make_patient(cls.owner)
        cls.strangers_patient = factories.make_patient(cls.stranger)
        cls.cardiologist = factories.make_doctor(cls.stranger)
        cls.neurologist = factories.make_doctor(cls.stranger, specialization="NEUR")
        cls.mapping = factories.make_mapping(cls.patient, cls.cardiologist)
        cls.other_mapping = factories.make_mapping(cls.other_patient, cls.neurologist)
        cls.strangers_mapping = factories.make_mapping(cls.strangers_patient, cls.cardiologist)

    def setUp(self):
        super().setUp()
        self.client = factories.client_for(self.owner)

    def ids(self, response) -> list[int]:
        self.assertEqual(response.status_code, status.HTTP_200_OK, response.content)
        return [item["id"] for item in response.json()]

    def test_it_lists_the_mappings_of_the_callers_patients_with_both_sides_nested(self):
        response = self.client.get(LIST_URL)

        self.assertEqual(self.ids(response), [self.mapping.pk, self.other_mapping.pk])
        first = response.json()[0]
        self.assertEqual(set(first), MAPPING_FIELDS)
        self.assertEqual(set(first["patient"]), PATIENT_FIELDS)
        self.assertEqual(set(first["doctor"]), DOCTOR_FIELDS)
        self.assertEqual(first["patient"]["id"], self.patient.pk)
        self.assertEqual(first["patient"]["firstname"], self.patient.firstname)
        self.assertEqual(first["doctor"]["id"], self.cardiologist.pk)
        self.assertEqual(first["doctor"]["specialization"], "CARD")
        self.assertTrue(first["assigned_at"])

    def test_it_answers_a_json_array_with_paging_headers(self):
        response = self.client.get(LIST_URL)

        self.assertIsInstance(response.json(), list)
        self.assertEqual(response["X-Total-Count"], "2")
        self.assertIn('rel="first"', response["Link"])
        self.assertIn('rel="last"', response["Link"])

    def test_it_pages_with_next_and_a_total_count(self):
        response = self.client.get(LIST_URL, {"page_size": 1})

        self.assertEqual(self.ids(response), [self.mapping.pk])
        self.assertEqual(response["X-Total-Count"], "2")
        self.assertIn('rel="next"', response["Link"])
        self.assertIn("page=2", response["Link"])

    def test_staff_see_every_mapping(self):
        response = factories.client_for(self.staff).get(LIST_URL)

        self.assertEqual(self.ids(response), [self.mapping.pk, self.other_mapping.pk, self.strangers_mapping.pk])

    def test_it_filters_by_patient(self):
        response = self.client.get(LIST_URL, {"patient": self.other_patient.pk})

        self.assertEqual(self.ids(response), [self.other_mapping.pk])

    def test_it_filters_by_doctor(self):
        response = self.client.get(LIST_URL, {"doctor": self.cardiologist.pk})

        # The stranger's mapping to the same doctor stays hidden.
        self.assertEqual(self.ids(response), [self.mapping.pk])

    def test_filtering_by_another_users_patient_gives_an_empty_list_not_an_error(self):
        foreign = self.client.get(LIST_URL, {"patient": self.strangers_patient.pk})
        missing = self.client.get(LIST_URL, {"patient": deleted_patient_id(self.owner)})

        self.assertEqual(self.ids(foreign), [])
        self.assertEqual(self.ids(missing), [])
        self.assertEqual(foreign["X-Total-Count"], "0")

    def test_it_rejects_malformed_filters_with_400(self):
        for params in ({"patient": "abc"}, {"doctor": "abc"}, {"patient": "1.5"}, {"patient": str(10**30)}):
            with self.subTest(params=params):
                response = self.client.get(LIST_URL, params)

                self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST, response.content)
                self.assertIn(next(iter(params)), response.json())

    def test_it_answers_the_route_without_its_final_slash(self):
        response = self.client.get("/api/mappings")

        self.assertEqual(self.ids(response), [self.mapping.pk, self.other_mapping.pk])


class MappingListQueryCountTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        cls.staff = factories.make_user(is_staff=True)
        cls.patients = [factories.make_patient(cls.owner) for _ in range(2)]
        for patient in cls.patients:
            factories.make_mapping(patient, factories.make_doctor(cls.owner))

    def add_mappings(self, count: int) -> None:
        for index in range(count):
            factories.make_mapping(self.patients[index % 2], factories.make_doctor(self.owner))

    def assert_list_queries(self, user, expected_rows: int) -> None:
        client = factories.client_for(user)
        client.get(LIST_URL)  # the token's user is cached from now on (hospital.authentication)
        # 1. COUNT(*) for X-Total-Count, 2. the page: mappings joined to their patient and doctor, with the INSERT
        # of its audit row (hospital.audit.PageAudit).
        with self.assertNumQueries(2):
            response = client.get(LIST_URL)
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(len(response.json()), expected_rows)

    def test_the_list_costs_the_same_queries_for_2_and_50_mappings(self):
        self.assert_list_queries(self.owner, 2)
        self.add_mappings(48)
        self.assert_list_queries(self.owner, 50)

    def test_the_staff_list_costs_the_same_queries_for_2_and_50_mappings(self):
        self.assert_list_queries(self.staff, 2)
        self.add_mappings(48)
        self.assert_list_queries(self.staff, 50)


class PatientDoctorsTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        cls.stranger = factories.make_user()
        cls.staff = factories.make_user(is_staff=True)
        cls.patient = factories.make_patient(cls.owner, firstname="Grace", lastname="Hopper")
        cls.strangers_patient = factories.make_patient(cls.stranger)
        cls.first_doctor = factories.make_doctor(cls.stranger)
        cls.second_doctor = factories.make_doctor(cls.stranger, specialization="DERM")
        factories.make_mapping(cls.patient, cls.first_doctor)
        factories.make_mapping(cls.patient, cls.second_doctor)
        factories.make_mapping(cls.strangers_patient, cls.first_doctor)

    def setUp(self):
        super().setUp()
        self.client = factories.client_for(self.owner)

    def test_it_lists_the_doctors_of_the_callers_patient(self):
        response = self.client.get(patient_doctors_url(self.patient.pk))

        self.assertEqual(response.status_code, status.HTTP_200_OK, response.content)
        body = response.json()
        self.assertEqual(set(body), {"patient_id", "patient", "doctors"})
        self.assertEqual(body["patient_id"], self.patient.pk)
        self.assertEqual(body["patient"], "Grace Hopper")
        self.assertEqual([doctor["id"] for doctor in body["doctors"]], [self.first_doctor.pk, self.second_doctor.pk])
        self.assertEqual(set(body["doctors"][0]), DOCTOR_FIELDS)
        self.assertEqual(body["doctors"][1]["specialization"], "DERM")

    def test_a_patient_without_doctors_has_an_empty_list(self):
        lonely = factories.make_patient(self.owner, firstname="Alan", lastname="Turing")

        response = self.client.get(patient_doctors_url(lonely.pk))

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(response.json(), {"patient_id": lonely.pk, "patient": "Alan Turing", "doctors": []})

    def test_another_users_patient_is_404_exactly_like_a_missing_one(self):
        foreign = self.client.get(patient_doctors_url(self.strangers_patient.pk))
        missing = self.client.get(patient_doctors_url(deleted_patient_id(self.owner)))
        huge = self.client.get(f"/api/mappings/{10**30}/")

        for response in (foreign, missing, huge):
            self.assertEqual(response.status_code, status.HTTP_404_NOT_FOUND)
            self.assertEqual(response["Content-Type"], "application/json")
        self.assertIn("detail", foreign.json())
        self.assertEqual(foreign.json(), missing.json())

    def test_staff_may_read_anyones_patient(self):
        response = factories.client_for(self.staff).get(patient_doctors_url(self.strangers_patient.pk))

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual([doctor["id"] for doctor in response.json()["doctors"]], [self.first_doctor.pk])

    def test_it_answers_the_route_without_its_final_slash(self):
        response = self.client.get(f"/api/mappings/{self.patient.pk}")

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(response.json()["patient_id"], self.patient.pk)

    def test_it_costs_the_same_queries_for_1_and_20_doctors(self):
        patient = factories.make_patient(self.owner)
        factories.make_mapping(patient, self.first_doctor)

        def fetch(expected_doctors: int) -> None:
            self.client.get(patient_doctors_url(patient.pk))  # caches the token's user
            # 1. the patient (scoped to the caller), 2. its doctors, 3. the audit event.
            with self.assertNumQueries(3):
                response = self.client.get(patient_doctors_url(patient.pk))
            self.assertEqual(response.status_code, status.HTTP_200_OK)
            self.assertEqual(len(response.json()["doctors"]), expected_doctors)

        fetch(1)
        for _ in range(19):
            factories.make_mapping(patient, factories.make_doctor(self.owner))
        fetch(20)


class MappingDeleteTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        cls.stranger = factories.make_user()
        cls.staff = factories.make_user(is_staff=True)
        cls.patient = factories.make_patient(cls.owner)
        cls.strangers_patient = factories.make_patient(cls.stranger)
        cls.doctor = factories.make_doctor(cls.owner)
        cls.second_doctor = factories.make_doctor(cls.owner)
        cls.mapping = factories.make_mapping(cls.patient, cls.doctor)
        cls.strangers_mapping = factories.make_mapping(cls.strangers_patient, cls.doctor)

    def setUp(self):
        super().setUp()
        self.client = factories.client_for(self.owner)

    def test_it_removes_a_doctor_from_the_callers_patient(self):
        response = self.client.delete(delete_url(self.mapping.pk))

        self.assertEqual(response.status_code, status.HTTP_204_NO_CONTENT)
        self.assertEqual(response.content, b"")
        self.assertFalse(PatientDoctorMapping.objects.filter(pk=self.mapping.pk).exists())
        # Only the assignment goes: the patient and the doctor stay.
        self.assertTrue(Patient.objects.filter(pk=self.patient.pk).exists())
        self.assertTrue(Doctor.objects.filter(pk=self.doctor.pk).exists())

    def test_it_also_answers_without_the_final_slash(self):
        response = self.client.delete(f"/api/mappings/{self.mapping.pk}/delete")

        self.assertEqual(response.status_code, status.HTTP_204_NO_CONTENT)
        self.assertFalse(PatientDoctorMapping.objects.filter(pk=self.mapping.pk).exists())

    def test_another_users_mapping_is_404_and_survives(self):
        foreign = self.client.delete(delete_url(self.strangers_mapping.pk))
        missing_mapping = factories.make_mapping(self.patient, self.second_doctor)
        missing_id = missing_mapping.pk
        missing_mapping.delete()
        missing = self.client.delete(delete_url(missing_id))

        self.assertEqual(foreign.status_code, status.HTTP_404_NOT_FOUND)
        self.assertEqual(missing.status_code, status.HTTP_404_NOT_FOUND)
        self.assertEqual(foreign.json(), missing.json())
        self.assertTrue(PatientDoctorMapping.objects.filter(pk=self.strangers_mapping.pk).exists())

    def test_a_second_delete_is_404(self):
        self.client.delete(delete_url(self.mapping.pk))

        response = self.client.delete(delete_url(self.mapping.pk))

        self.assertEqual(response.status_code, status.HTTP_404_NOT_FOUND)

    def test_staff_may_remove_anyones_mapping(self):
        response = factories.client_for(self.staff).delete(delete_url(self.strangers_mapping.pk))

        self.assertEqual(response.status_code, status.HTTP_204_NO_CONTENT)
        self.assertFalse(PatientDoctorMapping.objects.filter(pk=self.strangers_mapping.pk).exists())

    def test_a_huge_id_is_404_not_500(self):
        response = self.client.delete(f"/api/mappings/{10**30}/delete/")

        self.assertEqual(response.status_code, status.HTTP_404_NOT_FOUND)

    def test_other_methods_are_not_allowed(self):
        response = self.client.get(delete_url(self.mapping.pk))

        self.assertEqual(response.status_code, status.HTTP_405_METHOD_NOT_ALLOWED)
        self.assertTrue(PatientDoctorMapping.objects.filter(pk=self.mapping.pk).exists())


class MappingCascadeTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        cls.patient = factories.make_patient(cls.owner)
        cls.kept_patient = factories.make_patient(cls.owner)
        cls.doctor = factories.make_doctor(cls.owner)
        cls.kept_doctor = factories.make_doctor(cls.owner)

    def setUp(self):
        super().setUp()
        self.client = factories.client_for(self.owner)

    def test_deleting_a_patient_hides_its_mappings(self):
        hidden = factories.make_mapping(self.patient, self.doctor)
        kept = factories.make_mapping(self.kept_patient, self.doctor)

        response = self.client.delete(reverse("patient-detail", args=[self.patient.pk]))

        self.assertEqual(response.status_code, status.HTTP_204_NO_CONTENT)
        self.assertEqual(list(PatientDoctorMapping.objects.values_list("id", flat=True)), [hidden.pk, kept.pk])
        listed = self.client.get(LIST_URL).json()
        self.assertEqual([item["id"] for item in listed], [kept.pk])

    def test_deleting_a_doctor_removes_its_mappings(self):
        factories.make_mapping(self.patient, self.doctor)
        kept = factories.make_mapping(self.patient, self.kept_doctor)

        response = self.client.delete(reverse("doctor-detail", args=[self.doctor.pk]))

        self.assertEqual(response.status_code, status.HTTP_204_NO_CONTENT)
        self.assertEqual(list(PatientDoctorMapping.objects.values_list("id", flat=True)), [kept.pk])
        doctors = self.client.get(patient_doctors_url(self.patient.pk)).json()["doctors"]
        self.assertEqual([doctor["id"] for doctor in doctors], [self.kept_doctor.pk])
