"""/api/patients/ and /api/patients/<id>/: private to their creator (staff: everyone's), through HTTP only."""

from django.conf import settings
from django.db.models import ProtectedError
from django.urls import reverse
from rest_framework import status

from hospital.models import Patient, PatientDoctorMapping
from hospital.tests import factories
from hospital.tests.base import PATIENT_FIELDS, ApiTestCase, call, ids, links

LIST_URL = reverse("patient-list")
VALID_BODY = {"firstname": "Ada", "lastname": "Lovelace", "age": 36, "gender": "F", "email": "ada@example.com"}


def detail_url(pk: int) -> str:
    return reverse("patient-detail", args=[pk])


def missing_patient_id() -> int:
    """An id no patient has."""
    return (Patient.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1000


class PatientAuthenticationTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        cls.patient = factories.make_patient(cls.owner, firstname="Kept")

    def test_it_answers_401_to_anonymous_callers_on_every_method(self):
        anonymous = factories.client_for(None)
        requests = [
            ("GET", LIST_URL, None),
            ("POST", LIST_URL, VALID_BODY),
            ("GET", detail_url(self.patient.pk), None),
            ("PUT", detail_url(self.patient.pk), VALID_BODY),
            ("PATCH", detail_url(self.patient.pk), {"firstname": "Changed"}),
            ("DELETE", detail_url(self.patient.pk), None),
        ]
        for method, url, body in requests:
            with self.subTest(method=method, url=url):
                response = call(anonymous, method, url, body)
                self.assertEqual(response.status_code, status.HTTP_401_UNAUTHORIZED)
                self.assertIn("detail", response.json())
        self.assertEqual(Patient.objects.count(), 1)
        self.patient.refresh_from_db()
        self.assertEqual(self.patient.firstname, "Kept")

    def test_it_answers_401_to_a_malformed_token(self):
        client = factories.client_for(None)
        client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
        self.assertEqual(client.get(LIST_URL).status_code, status.HTTP_401_UNAUTHORIZED)


class PatientOwnerTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        cls.other = factories.make_user()
        cls.patient = factories.make_patient(cls.owner, firstname="Grace", lastname="Hopper", age=85, gender="F")

    def setUp(self):
        super().setUp()
        self.client = factories.client_for(self.owner)

    def test_it_lists_the_owners_patients(self):
        response = self.client.get(LIST_URL)
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(ids(response), [self.patient.pk])
        self.assertEqual(set(response.json()[0]), PATIENT_FIELDS)

    def test_it_creates_a_patient_owned_by_the_caller(self):
        response = self.client.post(LIST_URL, VALID_BODY, format="json")
        self.assertEqual(response.status_code, status.HTTP_201_CREATED)
        body = response.json()
        self.assertEqual(set(body), PATIENT_FIELDS)
        self.assertEqual({key: body[key] for key in VALID_BODY}, VALID_BODY)
        self.assertEqual(body["created_by"], self.owner.pk)
        created = Patient.objects.get(pk=body["id"])
        self.assertEqual(created.created_by, self.owner)
        self.assertEqual(created.lastname, "Lovelace")

    def test_it_ignores_a_created_by_in_the_body(self):
        response = self.client.post(LIST_URL, {**VALID_BODY, "created_by": self.other.pk}, format="json")
        self.assertEqual(response.status_code, status.HTTP_201_CREATED)
        self.assertEqual(response.json()["created_by"], self.owner.pk)
        self.assertEqual(Patient.objects.get(pk=response.json()["id"]).created_by, self.owner)

    def test_it_retrieves_the_owners_patient(self):
        response = self.client.get(detail_url(self.patient.pk))
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        body = response.json()
        self.assertEqual(set(body), PATIENT_FIELDS)
        self.assertEqual(
            (body["id"], body["firstname"], body["lastname"], body["age"], body["gender"], body["created_by"]),
            (self.patient.pk, "Grace", "Hopper", 85, "F", self.owner.pk),
        )

    def test_it_replaces_the_owners_patient(self):
        body = {**VALID_BODY, "created_by": self.other.pk}
        response = self.client.put(detail_url(self.patient.pk), body, format="json")
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(response.json()["firstname"], "Ada")
        self.assertEqual(response.json()["created_by"], self.owner.pk)
        self.patient.refresh_from_db()
        self.assertEqual((self.patient.firstname, self.patient.age), ("Ada", 36))
        self.assertEqual(self.patient.created_by, self.owner)

    def test_it_patches_one_field_of_the_owners_patient(self):
        response = self.client.patch(detail_url(self.patient.pk), {"age": 86}, format="json")
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(response.json()["age"], 86)
        self.patient.refresh_from_db()
        self.assertEqual((self.patient.firstname, self.patient.age), ("Grace", 86))

    def test_it_deletes_the_owners_patient_keeping_the_row_marked_deleted(self):
        response = self.client.delete(detail_url(self.patient.pk))
        self.assertEqual(response.status_code, status.HTTP_204_NO_CONTENT)
        self.patient.refresh_from_db()
        self.assertIsNotNone(self.patient.deleted_at)
        self.assertEqual(self.patient.deleted_by, self.owner)
        self.assertEqual(self.client.get(detail_url(self.patient.pk)).status_code, status.HTTP_404_NOT_FOUND)


class PatientIsolationTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        cls.intruder = factories.make_user()
        cls.staff = factories.make_user(is_staff=True)
        cls.patient = factories.make_patient(cls.owner, firstname="Private", lastname="Person")
        cls.intruders_patient = factories.make_patient(cls.intruder, firstname="Visible")

    def setUp(self):
        super().setUp()
        self.intruder_client = factories.client_for(self.intruder)
        self.staff_client = factories.client_for(self.staff)

    def test_it_hides_another_users_patient_exactly_like_a_missing_one(self):
        missing = missing_patient_id()
        for method, body in [("GET", None), ("PUT", VALID_BODY), ("PATCH", {"firstname": "Hacked"}), ("DELETE", None)]:
            with self.subTest(method=method):
                hidden = call(self.intruder_client, method, detail_url(self.patient.pk), body)
                absent = call(self.intruder_client, method, detail_url(missing), body)
                self.assertEqual(hidden.status_code, status.HTTP_404_NOT_FOUND)
                self.assertEqual(absent.status_code, status.HTTP_404_NOT_FOUND)
                self.assertEqual(hidden.content, absent.content)
        self.patient.refresh_from_db()
        self.assertEqual((self.patient.firstname, self.patient.created_by), ("Private", self.owner))

    def test_it_answers_404_for_an_id_beyond_the_database_range(self):
        for pk in [2**63 - 1, 2**63, 10**30]:
            for method, body in [("GET", None), ("PATCH", {"firstname": "Nobody"}), ("DELETE", None)]:
                with self.subTest(pk=pk, method=method):
                    response = call(self.intruder_client, method, detail_url(pk), body)
                    self.assertEqual(response.status_code, status.HTTP_404_NOT_FOUND)
                    self.assertIn("detail", response.json())

    def test_it_never_lists_another_users_patient(self):
        for query in ["", "?search=Private", "?search=Person", f"?ordering=-id&page_size={settings.MAX_PAGE_SIZE}"]:
            with self.subTest(query=query):
                response = self.intruder_client.get(LIST_URL + query)
                self.assertEqual(response.status_code, status.HTTP_200_OK)
                self.assertNotIn(self.patient.pk, ids(response))
        response = self.intruder_client.get(LIST_URL)
        self.assertEqual(ids(response), [self.intruders_patient.pk])
        self.assertEqual(response["X-Total-Count"], "1")

    def test_it_lets_staff_see_everyones_patients(self):
        response = self.staff_client.get(LIST_URL)
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(ids(response), [self.patient.pk, self.intruders_patient.pk])
        self.assertEqual(self.staff_client.get(detail_url(self.patient.pk)).status_code, status.HTTP_200_OK)

    def test_it_lets_staff_change_another_users_patient_without_taking_it_over(self):
        response = self.staff_client.patch(detail_url(self.patient.pk), {"firstname": "Edited"}, format="json")
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        response = self.staff_client.put(detail_url(self.patient.pk), VALID_BODY, format="json")
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(response.json()["created_by"], self.owner.pk)
        self.patient.refresh_from_db()
        self.assertEqual((self.patient.firstname, self.patient.created_by), ("Ada", self.owner))

    def test_it_lets_staff_delete_another_users_patient(self):
        response = self.staff_client.delete(detail_url(self.patient.pk))
        self.assertEqual(response.status_code, status.HTTP_204_NO_CONTENT)
        self.patient.refresh_from_db()
        self.assertEqual(self.patient.deleted_by, self.staff)


class PatientValidationTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        cls.patient = factories.make_patient(cls.owner, age=40, gender="F", firstname="Same")

    def setUp(self):
        super().setUp()
        self.client = factories.client_for(self.owner)

    def assert_rejected(self, body: dict, field: str):
        """POST `body`: a 400 naming `field`, and no row created."""
        before = Patient.objects.count()
        response = self.client.post(LIST_URL, body, format="json")
        self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST, response.content)
        self.assertIn(field, response.json())
        self.assertEqual(Patient.objects.count(), before)

    def test_it_rejects_an_age_out_of_range_or_not_a_whole_number(self):
        for age in [-1, 151, 1.5, "abc", True, None, ""]:
            with self.subTest(age=age):
                self.assert_rejected({**VALID_BODY, "age": age}, "age")

    def test_it_rejects_an_age_too_large_for_any_number_type(self):
        before = Patient.objects.count()
        for raw_age in ["1e999", "1" + "0" * 30]:
            with self.subTest(age=raw_age):
                body = f'{{"firstname": "Ada", "lastname": "Lovelace", "gender": "F", "age": {raw_age}}}'
                response = self.client.generic("POST", LIST_URL, body, content_type="application/json")
                self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST)
                self.assertIn("age", response.json())
        self.assertEqual(Patient.objects.count(), before)

    def test_it_rejects_a_value_of_another_json_type_rather_than_converting_it(self):
        for field, value in [("firstname", 0), ("lastname", ["Lee"]), ("email", 1), ("age", "36")]:
            with self.subTest(field=field, value=value):
                self.assert_rejected({**VALID_BODY, field: value}, field)

    def test_it_accepts_the_age_bounds(self):
        for age in [0, 150]:
            with self.subTest(age=age):
                response = self.client.post(LIST_URL, {**VALID_BODY, "age": age}, format="json")
                self.assertEqual(response.status_code, status.HTTP_201_CREATED)
                self.assertEqual(response.json()["age"], age)

    def test_it_rejects_an_unknown_gender(self):
        for gender in ["X", "m", "Male", ""]:
            with self.subTest(gender=gender):
                self.assert_rejected({**VALID_BODY, "gender": gender}, "gender")

    def test_it_accepts_every_gender(self):
        for gender in ["M", "F", "O"]:
            with self.subTest(gender=gender):
                response = self.client.post(LIST_URL, {**VALID_BODY, "gender": gender}, format="json")
                self.assertEqual(response.status_code, status.HTTP_201_CREATED)

    def test_it_rejects_a_malformed_email(self):
        for email in ["not-an-email", "a@", "@example.com", "a b@example.com"]:
            with self.subTest(email=email):
                self.assert_rejected({**VALID_BODY, "email": email}, "email")

    def test_it_accepts_a_patient_without_an_email(self):
        body = {key: value for key, value in VALID_BODY.items() if key != "email"}
        response = self.client.post(LIST_URL, body, format="json")
        self.assertEqual(response.status_code, status.HTTP_201_CREATED)
        self.assertEqual(response.json()["email"], "")
        response = self.client.post(LIST_URL, {**VALID_BODY, "email": ""}, format="json")
        self.assertEqual(response.status_code, status.HTTP_201_CREATED)

    def test_it_lets_two_patients_share_an_email(self):
        for firstname in ["Parent", "Child"]:
            response = self.client.post(
                LIST_URL, {**VALID_BODY, "firstname": firstname, "email": "family@example.com"}, format="json"
            )
            self.assertEqual(response.status_code, status.HTTP_201_CREATED)
        self.assertEqual(Patient.objects.filter(email="family@example.com").count(), 2)

    def test_it_rejects_a_missing_or_blank_name(self):
        for field in ["firstname", "lastname"]:
            with self.subTest(field=field, case="missing"):
                self.assert_rejected({key: value for key, value in VALID_BODY.items() if key != field}, field)
            with self.subTest(field=field, case="blank"):
                self.assert_rejected({**VALID_BODY, field: ""}, field)

    def test_it_rejects_a_missing_age_or_gender(self):
        for field in ["age", "gender"]:
            with self.subTest(field=field):
                self.assert_rejected({key: value for key, value in VALID_BODY.items() if key != field}, field)

    def test_it_rejects_a_nul_character_in_a_name(self):
        for field in ["firstname", "lastname"]:
            with self.subTest(field=field):
                self.assert_rejected({**VALID_BODY, field: "Ada\x00"}, field)

    def test_it_rejects_a_name_longer_than_100_characters(self):
        self.assert_rejected({**VALID_BODY, "lastname": "x" * 101}, "lastname")

    def test_it_rejects_an_invalid_change_and_keeps_the_row(self):
        for method, body, field in [
            ("PATCH", {"age": 151}, "age"),
            ("PATCH", {"gender": "X"}, "gender"),
            ("PATCH", {"firstname": ""}, "firstname"),
            ("PUT", {**VALID_BODY, "email": "nope"}, "email"),
            ("PUT", {"firstname": "Only"}, "age"),
        ]:
            with self.subTest(method=method, body=body):
                response = call(self.client, method, detail_url(self.patient.pk), body)
                self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST)
                self.assertIn(field, response.json())
        self.patient.refresh_from_db()
        self.assertEqual((self.patient.firstname, self.patient.age, self.patient.gender), ("Same", 40, "F"))

    def test_it_rejects_a_body_that_is_not_a_json_object(self):
        before = Patient.objects.count()
        for body in [[VALID_BODY], "text"]:
            with self.subTest(body=body):
                response = self.client.post(LIST_URL, body, format="json")
                self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST)
        self.assertEqual(Patient.objects.count(), before)


class PatientPaginationTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        cls.patients = [factories.make_patient(cls.owner) for _ in range(5)]

    def setUp(self):
        super().setUp()
        self.client = factories.client_for(self.owner)

    def test_it_answers_a_json_array_with_the_total_in_a_header(self):
        response = self.client.get(LIST_URL)
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertIsInstance(response.json(), list)
        self.assertEqual(ids(response), [patient.pk for patient in self.patients])
        self.assertEqual(response["X-Total-Count"], "5")

    def test_it_links_only_first_and_last_when_everything_fits_on_one_page(self):
        response = self.client.get(LIST_URL)
        self.assertEqual(links(response), {"first": {}, "last": {}})

    def test_it_serves_a_middle_page_with_every_link(self):
        response = self.client.get(LIST_URL, {"page": 2, "page_size": 2})
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(ids(response), [self.patients[2].pk, self.patients[3].pk])
        self.assertEqual(response["X-Total-Count"], "5")
        self.assertEqual(
            links(response),
            {
                "first": {"page_size": ["2"]},
                "prev": {"page_size": ["2"]},
                "next": {"page": ["3"], "page_size": ["2"]},
                "last": {"page": ["3"], "page_size": ["2"]},
            },
        )

    def test_it_serves_the_last_page_without_a_next_link(self):
        response = self.client.get(LIST_URL, {"page": 3, "page_size": 2})
        self.assertEqual(ids(response), [self.patients[4].pk])
        self.assertEqual(
            links(response),
            {
                "first": {"page_size": ["2"]},
                "prev": {"page": ["2"], "page_size": ["2"]},
                "last": {"page": ["3"], "page_size": ["2"]},
            },
        )

    def test_it_keeps_filters_in_the_links(self):
        response = self.client.get(LIST_URL, {"page_size": 1, "ordering": "-id"})
        self.assertEqual(ids(response), [self.patients[4].pk])
        self.assertEqual(links(response)["next"], {"page": ["2"], "page_size": ["1"], "ordering": ["-id"]})

    def test_it_accepts_the_largest_page_size(self):
        response = self.client.get(LIST_URL, {"page_size": settings.MAX_PAGE_SIZE})
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(len(response.json()), 5)

    def test_it_rejects_an_invalid_page_size(self):
        for page_size in [settings.MAX_PAGE_SIZE + 1, "9" * 40, 0, -1, "abc", "1.5"]:
            with self.subTest(page_size=page_size):
                response = self.client.get(LIST_URL, {"page_size": page_size})
                self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST)
                self.assertIn("page_size", response.json())

    def test_it_answers_404_for_a_page_that_does_not_exist(self):
        for page in [-1, "abc", 0, 4, "9" * 40]:
            with self.subTest(page=page):
                response = self.client.get(LIST_URL, {"page": page, "page_size": 2})
                self.assertEqual(response.status_code, status.HTTP_404_NOT_FOUND)
                self.assertEqual(response["Content-Type"], "application/json")
                self.assertIn("detail", response.json())

    def test_it_serves_an_empty_first_page_to_a_user_without_patients(self):
        response = factories.client_for(factories.make_user()).get(LIST_URL)
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(response.json(), [])
        self.assertEqual(response["X-Total-Count"], "0")


class PatientFilterTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        cls.alice = factories.make_patient(
            cls.owner, firstname="Alice", lastname="Smith", age=30, gender="F", email="alice@example.com"
        )
        cls.bob = factories.make_patient(
            cls.owner, firstname="Bob", lastname="Jones", age=60, gender="M", email="bob@clinic.org"
        )
        cls.carol = factories.make_patient(
            cls.owner, firstname="Carol", lastname="SMITHERS", age=10, gender="O", email=""
        )
        # Another user's patient that every filter below would match, were it visible.
        factories.make_patient(
            factories.make_user(), firstname="Alice", lastname="Smith", age=30, gender="F", email="x@clinic.org"
        )

    def setUp(self):
        super().setUp()
        self.client = factories.client_for(self.owner)

    def assert_lists(self, query: dict, expected: list):
        response = self.client.get(LIST_URL, query)
        self.assertEqual(response.status_code, status.HTTP_200_OK, response.content)
        self.assertEqual(ids(response), [patient.pk for patient in expected])
        self.assertEqual(response["X-Total-Count"], str(len(expected)))

    def assert_rejected(self, query: dict, parameter: str):
        response = self.client.get(LIST_URL, query)
        self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST, response.content)
        self.assertIn(parameter, response.json())

    def test_it_searches_names_and_email_regardless_of_case(self):
        self.assert_lists({"search": "smith"}, [self.alice, self.carol])
        self.assert_lists({"search": "ALICE"}, [self.alice])
        self.assert_lists({"search": "jOnEs"}, [self.bob])
        self.assert_lists({"search": "CLINIC.org"}, [self.bob])
        self.assert_lists({"search": "nobody"}, [])

    def test_it_requires_every_search_term_to_match(self):
        self.assert_lists({"search": "alice smith"}, [self.alice])
        self.assert_lists({"search": "alice jones"}, [])

    def test_it_rejects_a_search_longer_than_100_characters(self):
        self.assert_lists({"search": "a" * 100}, [])
        self.assert_rejected({"search": "a" * 101}, "search")

    def test_it_rejects_a_nul_character_in_a_search(self):
        self.assert_rejected({"search": "ali\x00ce"}, "search")

    def test_it_filters_by_gender(self):
        self.assert_lists({"gender": "M"}, [self.bob])
        self.assert_lists({"gender": "O"}, [self.carol])
        self.assert_rejected({"gender": "X"}, "gender")

    def test_it_filters_by_age_range_inclusively(self):
        self.assert_lists({"age_min": 30}, [self.alice, self.bob])
        self.assert_lists({"age_max": 30}, [self.alice, self.carol])
        self.assert_lists({"age_min": 20, "age_max": 40}, [self.alice])
        self.assert_lists({"age_min": 0, "age_max": 150}, [self.alice, self.bob, self.carol])

    def test_it_rejects_an_invalid_age_bound(self):
        for parameter in ["age_min", "age_max"]:
            for value in ["1.5", "-1", "999", "abc", "1e999"]:
                with self.subTest(parameter=parameter, value=value):
                    self.assert_rejected({parameter: value}, parameter)

    def test_it_orders_by_a_documented_field(self):
        self.assert_lists({"ordering": "age"}, [self.carol, self.alice, self.bob])
        self.assert_lists({"ordering": "-age"}, [self.bob, self.alice, self.carol])
        self.assert_lists({"ordering": "-lastname"}, [self.alice, self.carol, self.bob])
        self.assert_lists({"ordering": "firstname"}, [self.alice, self.bob, self.carol])

    def test_it_breaks_ordering_ties_by_id(self):
        twin = factories.make_patient(self.owner, firstname="Twin", lastname="Smith", age=30, gender="F")
        self.assert_lists({"ordering": "age"}, [self.carol, self.alice, twin, self.bob])
        self.assert_lists({"ordering": "age,-id"}, [self.carol, twin, self.alice, self.bob])

    def test_it_rejects_an_unknown_ordering_field(self):
        for ordering in ["password", "created_by__password", "-created_by__password", "created_by", "nonsense"]:
            with self.subTest(ordering=ordering):
                self.assert_rejected({"ordering": ordering}, "ordering")

    def test_it_combines_filters(self):
        self.assert_lists({"search": "smith", "gender": "F", "age_min": 20}, [self.alice])

    def test_it_reads_an_empty_parameter_as_one_not_sent(self):
        for name in ["search", "gender", "age_min", "age_max", "ordering", "page", "page_size"]:
            with self.subTest(name=name):
                self.assert_lists({name: ""}, [self.alice, self.bob, self.carol])


class PatientQueryCountTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        for _ in range(2):
            factories.make_patient(cls.owner)
        factories.make_patient(factories.make_user())

    def setUp(self):
        super().setUp()
        self.client = factories.client_for(self.owner)

    def assert_list_queries(self, client, expected_rows: int):
        client.get(LIST_URL)  # the token's user is cached from now on (hospital.authentication)
        # 1. SELECT COUNT(*) of the visible patients (X-Total-Count)
        # 2. SELECT the visible patients of the page, with the INSERT of its audit row (hospital.audit.PageAudit)
        with self.assertNumQueries(2):
            response = client.get(LIST_URL)
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(len(response.json()), expected_rows)

    def test_it_lists_patients_in_the_same_number_of_queries_for_2_and_50_rows(self):
        self.assert_list_queries(self.client, 2)
        for _ in range(48):
            factories.make_patient(self.owner)
        self.assert_list_queries(self.client, 50)

    def test_it_lists_everyones_patients_to_staff_in_the_same_number_of_queries(self):
        staff_client = factories.client_for(factories.make_user(is_staff=True))
        self.assert_list_queries(staff_client, 3)
        for _ in range(47):
            factories.make_patient(self.owner)
        self.assert_list_queries(staff_client, 50)


class PatientDeletionTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        cls.patient = factories.make_patient(cls.owner)
        cls.kept_patient = factories.make_patient(cls.owner)
        doctor_creator = factories.make_user()
        cls.doctors = [factories.make_doctor(doctor_creator) for _ in range(2)]
        for doctor in cls.doctors:
            factories.make_mapping(cls.patient, doctor)
        cls.kept_mapping = factories.make_mapping(cls.kept_patient, cls.doctors[0])

    def setUp(self):
        super().setUp()
        self.client = factories.client_for(self.owner)

    def test_it_hides_the_mappings_of_a_deleted_patient_and_keeps_their_rows(self):
        response = self.client.delete(detail_url(self.patient.pk))
        self.assertEqual(response.status_code, status.HTTP_204_NO_CONTENT)
        self.assertEqual(PatientDoctorMapping.objects.filter(patient_id=self.patient.pk).count(), 2)
        mappings = self.client.get(reverse("mapping-list"))
        self.assertEqual(mappings.status_code, status.HTTP_200_OK)
        self.assertEqual(ids(mappings), [self.kept_mapping.pk])
        # The doctors themselves stay in the directory.
        self.assertEqual(len(self.client.get(reverse("doctor-list")).json()), 2)

    def test_it_refuses_to_delete_a_user_who_created_a_patient(self):
        with self.assertRaises(ProtectedError):
            self.owner.delete()
        self.assertTrue(Patient.objects.filter(created_by=self.owner).exists())
