"""/api/doctors/ and /api/doctors/<id>/: a directory shared by everyone signed in, changed by creator or staff."""

from django.conf import settings
from django.db.models import ProtectedError
from django.urls import reverse
from rest_framework import status

from hospital.models import AuditEvent, Doctor, PatientDoctorMapping, Specialization
from hospital.tests import factories
from hospital.tests.base import DOCTOR_FIELDS, ApiTestCase, call, ids, links

LIST_URL = reverse("doctor-list")
VALID_BODY = {
    "firstname": "Gregory",
    "lastname": "House",
    "specialization": "NEUR",
    "max_appointments_per_day": 12,
    "gender": "M",
    "email": "house@example.com",
}


def detail_url(pk: int) -> str:
    return reverse("doctor-detail", args=[pk])


class DoctorAuthenticationTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.doctor = factories.make_doctor(factories.make_user(), firstname="Kept")

    def test_it_answers_401_to_anonymous_callers_on_every_method(self):
        anonymous = factories.client_for(None)
        requests = [
            ("GET", LIST_URL, None),
            ("POST", LIST_URL, VALID_BODY),
            ("GET", detail_url(self.doctor.pk), None),
            ("PUT", detail_url(self.doctor.pk), VALID_BODY),
            ("PATCH", detail_url(self.doctor.pk), {"firstname": "Changed"}),
            ("DELETE", detail_url(self.doctor.pk), None),
        ]
        for method, url, body in requests:
            with self.subTest(method=method, url=url):
                response = call(anonymous, method, url, body)
                self.assertEqual(response.status_code, status.HTTP_401_UNAUTHORIZED)
                self.assertIn("detail", response.json())
        self.assertEqual(Doctor.objects.count(), 1)
        self.doctor.refresh_from_db()
        self.assertEqual(self.doctor.firstname, "Kept")


class DoctorDirectoryTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.creator = factories.make_user()
        cls.colleague = factories.make_user()
        cls.staff = factories.make_user(is_staff=True)
        cls.doctor = factories.make_doctor(cls.creator, firstname="Meredith", specialization="GEN")
        cls.colleagues_doctor = factories.make_doctor(cls.colleague)

    def setUp(self):
        super().setUp()
        self.creator_client = factories.client_for(self.creator)
        self.colleague_client = factories.client_for(self.colleague)
        self.staff_client = factories.client_for(self.staff)

    def test_it_lists_every_doctor_to_any_user(self):
        for client in [self.creator_client, self.colleague_client, self.staff_client]:
            response = client.get(LIST_URL)
            self.assertEqual(response.status_code, status.HTTP_200_OK)
            self.assertEqual(ids(response), [self.doctor.pk, self.colleagues_doctor.pk])
            self.assertEqual(response["X-Total-Count"], "2")
            self.assertEqual(set(response.json()[0]), DOCTOR_FIELDS)

    def test_it_shows_any_doctor_to_any_user(self):
        response = self.colleague_client.get(detail_url(self.doctor.pk))
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        body = response.json()
        self.assertEqual(set(body), DOCTOR_FIELDS)
        self.assertEqual((body["id"], body["firstname"]), (self.doctor.pk, "Meredith"))
        self.assertEqual(body["created_by"], self.creator.pk)

    def test_it_answers_404_for_a_missing_doctor(self):
        missing = (Doctor.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1000
        response = self.colleague_client.get(detail_url(missing))
        self.assertEqual(response.status_code, status.HTTP_404_NOT_FOUND)
        self.assertIn("detail", response.json())

    def test_it_creates_a_doctor_owned_by_the_caller(self):
        response = self.colleague_client.post(LIST_URL, {**VALID_BODY, "created_by": self.creator.pk}, format="json")
        self.assertEqual(response.status_code, status.HTTP_201_CREATED)
        body = response.json()
        self.assertEqual(set(body), DOCTOR_FIELDS)
        self.assertEqual({key: body[key] for key in VALID_BODY}, VALID_BODY)
        self.assertEqual(body["created_by"], self.colleague.pk)
        self.assertEqual(Doctor.objects.get(pk=body["id"]).created_by, self.colleague)

    def test_it_defaults_to_ten_appointments_a_day_and_no_email(self):
        body = {key: value for key, value in VALID_BODY.items() if key not in {"max_appointments_per_day", "email"}}
        response = self.colleague_client.post(LIST_URL, body, format="json")
        self.assertEqual(response.status_code, status.HTTP_201_CREATED)
        self.assertEqual((response.json()["max_appointments_per_day"], response.json()["email"]), (10, ""))

    def test_it_lets_the_creator_and_staff_change_a_doctor(self):
        for client in [self.creator_client, self.staff_client]:
            response = client.patch(detail_url(self.doctor.pk), {"max_appointments_per_day": 20}, format="json")
            self.assertEqual(response.status_code, status.HTTP_200_OK)
            response = client.put(
                detail_url(self.doctor.pk), {**VALID_BODY, "created_by": self.staff.pk}, format="json"
            )
            self.assertEqual(response.status_code, status.HTTP_200_OK)
            self.assertEqual(response.json()["created_by"], self.creator.pk)
        self.doctor.refresh_from_db()
        self.assertEqual((self.doctor.firstname, self.doctor.specialization), ("Gregory", "NEUR"))
        self.assertEqual(self.doctor.created_by, self.creator)

    def test_it_lets_the_creator_delete_a_doctor(self):
        response = self.creator_client.delete(detail_url(self.doctor.pk))
        self.assertEqual(response.status_code, status.HTTP_204_NO_CONTENT)
        self.assertFalse(Doctor.objects.filter(pk=self.doctor.pk).exists())

    def test_it_lets_staff_delete_another_users_doctor(self):
        response = self.staff_client.delete(detail_url(self.doctor.pk))
        self.assertEqual(response.status_code, status.HTTP_204_NO_CONTENT)
        self.assertFalse(Doctor.objects.filter(pk=self.doctor.pk).exists())

    def test_it_forbids_another_user_to_change_or_delete_a_doctor(self):
        for method, body in [("PUT", VALID_BODY), ("PATCH", {"firstname": "Hacked"}), ("DELETE", None)]:
            with self.subTest(method=method):
                response = call(self.colleague_client, method, detail_url(self.doctor.pk), body)
                self.assertEqual(response.status_code, status.HTTP_403_FORBIDDEN)
                self.assertIn("detail", response.json())
        self.doctor.refresh_from_db()
        self.assertEqual((self.doctor.firstname, self.doctor.specialization), ("Meredith", "GEN"))

    def test_it_forbids_another_user_even_with_an_invalid_body(self):
        response = self.colleague_client.patch(detail_url(self.doctor.pk), {"gender": "X"}, format="json")
        self.assertEqual(response.status_code, status.HTTP_403_FORBIDDEN)


class DoctorValidationTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.creator = factories.make_user()
        cls.doctor = factories.make_doctor(cls.creator, max_appointments_per_day=10, specialization="GEN")

    def setUp(self):
        super().setUp()
        self.client = factories.client_for(self.creator)

    def assert_rejected(self, body: dict, field: str):
        """POST `body`: a 400 naming `field`, and no row created."""
        before = Doctor.objects.count()
        response = self.client.post(LIST_URL, body, format="json")
        self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST, response.content)
        self.assertIn(field, response.json())
        self.assertEqual(Doctor.objects.count(), before)

    def test_it_accepts_every_specialization(self):
        self.assertEqual(
            set(Specialization.values), {"GEN", "CARD", "DERM", "NEUR", "PEDS", "ORTH", "ONCO", "PSYC", "RADI", "ENT"}
        )
        for specialization in Specialization.values:
            with self.subTest(specialization=specialization):
                response = self.client.post(LIST_URL, {**VALID_BODY, "specialization": specialization}, format="json")
                self.assertEqual(response.status_code, status.HTTP_201_CREATED)
                self.assertEqual(response.json()["specialization"], specialization)

    def test_it_rejects_an_unknown_specialization(self):
        for specialization in ["SURG", "card", "Cardiology", "", None]:
            with self.subTest(specialization=specialization):
                self.assert_rejected({**VALID_BODY, "specialization": specialization}, "specialization")

    def test_it_rejects_appointments_per_day_outside_1_to_100(self):
        for value in [0, 101, -1, 1.5, "abc", True, None]:
            with self.subTest(value=value):
                self.assert_rejected({**VALID_BODY, "max_appointments_per_day": value}, "max_appointments_per_day")

    def test_it_rejects_a_value_of_another_json_type_rather_than_converting_it(self):
        for field, value in [("firstname", 0), ("lastname", 1.5), ("email", False), ("max_appointments_per_day", "10")]:
            with self.subTest(field=field, value=value):
                self.assert_rejected({**VALID_BODY, field: value}, field)

    def test_it_accepts_the_appointments_per_day_bounds(self):
        for value in [1, 100]:
            with self.subTest(value=value):
                response = self.client.post(LIST_URL, {**VALID_BODY, "max_appointments_per_day": value}, format="json")
                self.assertEqual(response.status_code, status.HTTP_201_CREATED)
                self.assertEqual(response.json()["max_appointments_per_day"], value)

    def test_it_rejects_an_unknown_gender(self):
        for gender in ["X", "f", ""]:
            with self.subTest(gender=gender):
                self.assert_rejected({**VALID_BODY, "gender": gender}, "gender")

    def test_it_rejects_a_malformed_email(self):
        self.assert_rejected({**VALID_BODY, "email": "not-an-email"}, "email")

    def test_it_lets_two_doctors_share_an_email(self):
        for firstname in ["One", "Two"]:
            response = self.client.post(
                LIST_URL, {**VALID_BODY, "firstname": firstname, "email": "clinic@example.com"}, format="json"
            )
            self.assertEqual(response.status_code, status.HTTP_201_CREATED)

    def test_it_rejects_a_missing_required_field(self):
        for field in ["firstname", "lastname", "specialization", "gender"]:
            with self.subTest(field=field):
                self.assert_rejected({key: value for key, value in VALID_BODY.items() if key != field}, field)

    def test_it_rejects_a_nul_character_in_a_name(self):
        for field in ["firstname", "lastname"]:
            with self.subTest(field=field):
                self.assert_rejected({**VALID_BODY, field: "Greg\x00ory"}, field)

    def test_it_rejects_an_invalid_change_and_keeps_the_row(self):
        for body, field in [
            ({"max_appointments_per_day": 0}, "max_appointments_per_day"),
            ({"max_appointments_per_day": 101}, "max_appointments_per_day"),
            ({"specialization": "SURG"}, "specialization"),
        ]:
            with self.subTest(body=body):
                response = self.client.patch(detail_url(self.doctor.pk), body, format="json")
                self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST)
                self.assertIn(field, response.json())
        self.doctor.refresh_from_db()
        self.assertEqual((self.doctor.max_appointments_per_day, self.doctor.specialization), (10, "GEN"))


class DoctorListTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        creator = factories.make_user()
        cls.reader = factories.make_user()
        cls.house = factories.make_doctor(
            creator, firstname="Gregory", lastname="House", specialization="NEUR", gender="M", email="gh@ppth.org"
        )
        cls.cuddy = factories.make_doctor(
            creator, firstname="Lisa", lastname="Cuddy", specialization="GEN", gender="F", email="lc@ppth.org"
        )
        cls.wilson = factories.make_doctor(
            cls.reader, firstname="James", lastname="Wilson", specialization="ONCO", gender="M", email="jw@else.org"
        )

    def setUp(self):
        super().setUp()
        self.client = factories.client_for(self.reader)

    def assert_lists(self, query: dict, expected: list):
        response = self.client.get(LIST_URL, query)
        self.assertEqual(response.status_code, status.HTTP_200_OK, response.content)
        self.assertEqual(ids(response), [doctor.pk for doctor in expected])
        self.assertEqual(response["X-Total-Count"], str(len(expected)))

    def assert_rejected(self, query: dict, parameter: str):
        response = self.client.get(LIST_URL, query)
        self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST, response.content)
        self.assertIn(parameter, response.json())

    def test_it_searches_names_and_email_regardless_of_case(self):
        self.assert_lists({"search": "house"}, [self.house])
        self.assert_lists({"search": "LISA"}, [self.cuddy])
        self.assert_lists({"search": "PPTH"}, [self.house, self.cuddy])
        self.assert_lists({"search": "nobody"}, [])
        self.assert_rejected({"search": "a" * 101}, "search")

    def test_it_filters_by_specialization(self):
        self.assert_lists({"specialization": "ONCO"}, [self.wilson])
        self.assert_lists({"specialization": "DERM"}, [])
        self.assert_rejected({"specialization": "SURG"}, "specialization")

    def test_it_filters_by_gender(self):
        self.assert_lists({"gender": "M"}, [self.house, self.wilson])
        self.assert_rejected({"gender": "X"}, "gender")

    def test_it_orders_by_a_documented_field(self):
        self.assert_lists({"ordering": "lastname"}, [self.cuddy, self.house, self.wilson])
        self.assert_lists({"ordering": "-specialization"}, [self.wilson, self.house, self.cuddy])
        self.assert_lists({"ordering": "-id"}, [self.wilson, self.cuddy, self.house])

    def test_it_rejects_an_unknown_ordering_field(self):
        for ordering in ["password", "created_by__password", "created_by", "age", "lastname,nonsense"]:
            with self.subTest(ordering=ordering):
                self.assert_rejected({"ordering": ordering}, "ordering")

    def test_it_pages_with_link_headers(self):
        response = self.client.get(LIST_URL, {"page": 2, "page_size": 1})
        self.assertEqual(ids(response), [self.cuddy.pk])
        self.assertEqual(response["X-Total-Count"], "3")
        self.assertEqual(set(links(response)), {"first", "prev", "next", "last"})
        self.assert_rejected({"page_size": settings.MAX_PAGE_SIZE + 1}, "page_size")
        self.assertEqual(self.client.get(LIST_URL, {"page": 4, "page_size": 1}).status_code, status.HTTP_404_NOT_FOUND)


class DoctorQueryCountTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.creator = factories.make_user()
        for _ in range(2):
            factories.make_doctor(cls.creator)

    def assert_list_queries(self, client, expected_rows: int):
        client.get(LIST_URL)  # the token's user is cached from now on (hospital.authentication)
        # 1. SELECT COUNT(*) of the doctors (X-Total-Count)
        # 2. SELECT the doctors of the page, with the INSERT of its audit row
        with self.assertNumQueries(2):
            response = client.get(LIST_URL)
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(len(response.json()), expected_rows)

    def test_it_lists_doctors_in_the_same_number_of_queries_for_2_and_50_rows(self):
        client = factories.client_for(factories.make_user())
        self.assert_list_queries(client, 2)
        other_creator = factories.make_user()
        for _ in range(48):
            factories.make_doctor(other_creator)
        self.assert_list_queries(client, 50)


class DoctorDeletionTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.creator = factories.make_user()
        cls.patient_owner = factories.make_user()
        cls.doctor = factories.make_doctor(cls.creator)
        cls.kept_doctor = factories.make_doctor(cls.creator)
        cls.patients = [factories.make_patient(cls.patient_owner) for _ in range(2)]
        for patient in cls.patients:
            factories.make_mapping(patient, cls.doctor)
        cls.kept_mapping = factories.make_mapping(cls.patients[0], cls.kept_doctor)

    def test_it_removes_the_mappings_of_a_deleted_doctor(self):
        response = factories.client_for(self.creator).delete(detail_url(self.doctor.pk))
        self.assertEqual(response.status_code, status.HTTP_204_NO_CONTENT)
        self.assertFalse(PatientDoctorMapping.objects.filter(doctor_id=self.doctor.pk).exists())
        owner_client = factories.client_for(self.patient_owner)
        mappings = owner_client.get(reverse("mapping-list"))
        self.assertEqual(ids(mappings), [self.kept_mapping.pk])
        # The patients themselves are kept.
        self.assertEqual(len(owner_client.get(reverse("patient-list")).json()), 2)

    def test_the_removal_of_other_owners_assignments_shows_in_each_of_their_patients_access_logs(self):
        deletion = factories.client_for(self.creator).delete(detail_url(self.doctor.pk))

        self.assertEqual(deletion.status_code, status.HTTP_204_NO_CONTENT)
        owner_client = factories.client_for(self.patient_owner)
        for patient in self.patients:
            with self.subTest(patient=patient.pk):
                log = owner_client.get(reverse("patient-access-log", args=[patient.pk])).json()
                self.assertEqual(
                    [
                        (row["request_id"], row["actor"], row["action"], row["resource_type"], row["resource_ids"])
                        for row in log
                    ],
                    [(deletion["X-Request-ID"], self.creator.pk, "delete", "doctor", [self.doctor.pk])],
                )
        event = AuditEvent.objects.get(request_id=deletion["X-Request-ID"])
        self.assertEqual(event.patient_ids, sorted(patient.pk for patient in self.patients))

    def test_it_refuses_to_delete_a_user_who_created_a_doctor(self):
        with self.assertRaises(ProtectedError):
            self.creator.delete()
        self.assertTrue(Doctor.objects.filter(created_by=self.creator).exists())
