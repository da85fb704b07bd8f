"""Conditional requests on /api/patients/<id>/ and /api/doctors/<id>/: ETag, If-None-Match (304), If-Match (412)."""

import re

from django.urls import reverse
from rest_framework import status

from hospital.models import Doctor, Patient
from hospital.tests import factories
from hospital.tests.base import DOCTOR_BODY, PATIENT_BODY, ApiTestCase, ApiTransactionTestCase, run_concurrently

STRONG_ETAG = re.compile(r'"[^"]+"')
WRITES = [("PUT", None), ("PATCH", {"firstname": "Overwritten"}), ("DELETE", None)]


def send(client, method: str, url: str, body: dict | None = None, **headers: str):
    """`method` to `url` with `headers` given by name (If_Match="..." sends If-Match), and `body` as JSON."""
    headers = {name.replace("_", "-"): value for name, value in headers.items()}
    if method in {"GET", "DELETE"}:
        return getattr(client, method.lower())(url, headers=headers)
    return getattr(client, method.lower())(url, body, format="json", headers=headers)


def weak(etag: str) -> str:
    return f"W/{etag}"


class ConditionalRecordTests:
    """The same rules for patients and doctors; a subclass names the resource and how to make one."""

    model: type[Patient] | type[Doctor]
    detail_name: str
    put_body: dict

    @classmethod
    def make_record(cls, owner):
        raise NotImplementedError

    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        cls.record = cls.make_record(cls.owner)

    def setUp(self):
        super().setUp()
        self.client = factories.client_for(self.owner)
        self.url = reverse(self.detail_name, args=[self.record.pk])

    def live(self):
        """The records the API still serves."""
        return self.model.objects.all()

    def current_etag(self) -> str:
        response = self.client.get(self.url)
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        return response["ETag"]

    def stale_etag(self) -> str:
        """An ETag the record had before someone changed it (behind the API's back: updated_at stays)."""
        etag = self.current_etag()
        self.model.objects.filter(pk=self.record.pk).update(lastname="Changed-Elsewhere")
        return etag

    def body_for(self, method: str) -> dict | None:
        return self.put_body if method == "PUT" else dict(WRITES).get(method)

    def assert_untouched_since_stale(self):
        row = self.live().get(pk=self.record.pk)
        self.assertEqual((row.firstname, row.lastname), (self.record.firstname, "Changed-Elsewhere"))

    # ------------------------------------------------------------------------------------------ ETag

    def test_a_read_carries_a_strong_etag_that_stays_the_same_across_reads(self):
        first, second = self.client.get(self.url), self.client.get(self.url)
        self.assertEqual(first.status_code, status.HTTP_200_OK)
        self.assertTrue(STRONG_ETAG.fullmatch(first["ETag"]), first["ETag"])
        self.assertEqual(second["ETag"], first["ETag"])

    def test_the_etag_changes_when_the_record_changes_through_the_api(self):
        before = self.current_etag()
        response = self.client.patch(self.url, {"firstname": "Renamed"}, format="json")
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertNotEqual(self.current_etag(), before)

    def test_the_etag_follows_the_representation_even_when_updated_at_stays(self):
        before = self.stale_etag()
        self.assertNotEqual(self.current_etag(), before)

    # -------------------------------------------------------------------------------- If-None-Match

    def test_if_none_match_with_the_current_etag_answers_304_with_the_etag_and_no_body(self):
        etag = self.current_etag()
        variants = {"strong": etag, "weak": weak(etag), "star": "*", "list": f'"nope", W/"other", {etag}'}
        for name, header in variants.items():
            with self.subTest(name):
                response = send(self.client, "GET", self.url, If_None_Match=header)
                self.assertEqual(response.status_code, status.HTTP_304_NOT_MODIFIED)
                self.assertEqual(response["ETag"], etag)
                self.assertEqual(response.content, b"")

    def test_if_none_match_with_another_etag_answers_200_with_the_record(self):
        stale = self.stale_etag()
        for header in [stale, weak(stale), '"nope", W/"other"']:
            with self.subTest(header):
                response = send(self.client, "GET", self.url, If_None_Match=header)
                self.assertEqual(response.status_code, status.HTTP_200_OK)
                self.assertEqual(response.json()["lastname"], "Changed-Elsewhere")
                self.assertEqual(response["ETag"], self.current_etag())
                self.assertNotEqual(response["ETag"], stale)

    # ------------------------------------------------------------------------------------- If-Match

    def test_a_write_with_a_stale_if_match_answers_412_with_the_current_etag_and_changes_nothing(self):
        stale = self.stale_etag()
        current = self.current_etag()
        for method, _ in WRITES:
            with self.subTest(method):
                response = send(self.client, method, self.url, self.body_for(method), If_Match=stale)
                self.assertEqual(response.status_code, status.HTTP_412_PRECONDITION_FAILED)
                self.assertEqual(set(response.json()), {"detail"})
                self.assertEqual(response["ETag"], current)
                self.assert_untouched_since_stale()
        self.assertEqual(self.current_etag(), current)

    def test_a_weak_if_match_never_matches_even_the_current_etag(self):
        self.stale_etag()
        current = self.current_etag()
        for method, _ in WRITES:
            with self.subTest(method):
                response = send(self.client, method, self.url, self.body_for(method), If_Match=weak(current))
                self.assertEqual(response.status_code, status.HTTP_412_PRECONDITION_FAILED)
                self.assertEqual(response["ETag"], current)
                self.assert_untouched_since_stale()

    def test_the_etag_of_a_412_lets_the_client_retry_successfully(self):
        refused = send(self.client, "PATCH", self.url, {"firstname": "Retried"}, If_Match=self.stale_etag())
        self.assertEqual(refused.status_code, status.HTTP_412_PRECONDITION_FAILED)
        retried = send(self.client, "PATCH", self.url, {"firstname": "Retried"}, If_Match=refused["ETag"])
        self.assertEqual(retried.status_code, status.HTTP_200_OK, retried.content)
        self.assertEqual(self.live().get(pk=self.record.pk).firstname, "Retried")

    def test_put_and_patch_with_a_matching_if_match_succeed_and_return_the_new_etag(self):
        for method, body in [("PUT", self.put_body), ("PATCH", {"firstname": "Patched"})]:
            with self.subTest(method):
                before = self.current_etag()
                response = send(self.client, method, self.url, body, If_Match=before)
                self.assertEqual(response.status_code, status.HTTP_200_OK, response.content)
                self.assertEqual(self.live().get(pk=self.record.pk).firstname, body["firstname"])
                self.assertNotEqual(response["ETag"], before)
                self.assertEqual(response["ETag"], self.current_etag())

    def test_if_match_accepts_a_list_containing_the_current_etag(self):
        header = f'"nope", W/"other", {self.current_etag()}'
        response = send(self.client, "PATCH", self.url, {"firstname": "Listed"}, If_Match=header)
        self.assertEqual(response.status_code, status.HTTP_200_OK, response.content)
        self.assertEqual(self.live().get(pk=self.record.pk).firstname, "Listed")

    def test_if_match_star_matches_the_existing_record(self):
        self.stale_etag()
        response = send(self.client, "PATCH", self.url, {"firstname": "Starred"}, If_Match="*")
        self.assertEqual(response.status_code, status.HTTP_200_OK, response.content)
        self.assertEqual(response["ETag"], self.current_etag())
        response = send(self.client, "DELETE", self.url, If_Match="*")
        self.assertEqual(response.status_code, status.HTTP_204_NO_CONTENT)
        self.assertFalse(self.live().filter(pk=self.record.pk).exists())

    def test_delete_with_a_matching_if_match_deletes(self):
        response = send(self.client, "DELETE", self.url, If_Match=self.current_etag())
        self.assertEqual(response.status_code, status.HTTP_204_NO_CONTENT)
        self.assertFalse(self.live().filter(pk=self.record.pk).exists())
        self.assertEqual(self.client.get(self.url).status_code, status.HTTP_404_NOT_FOUND)

    def test_writes_without_if_match_work_as_before(self):
        self.stale_etag()
        response = self.client.put(self.url, self.put_body, format="json")
        self.assertEqual(response.status_code, status.HTTP_200_OK, response.content)
        response = self.client.patch(self.url, {"lastname": "Unconditional"}, format="json")
        self.assertEqual(response.status_code, status.HTTP_200_OK, response.content)
        row = self.live().get(pk=self.record.pk)
        self.assertEqual((row.firstname, row.lastname), (self.put_body["firstname"], "Unconditional"))
        self.assertEqual(self.client.delete(self.url).status_code, status.HTTP_204_NO_CONTENT)
        self.assertFalse(self.live().filter(pk=self.record.pk).exists())

    def test_if_match_on_a_missing_record_is_404(self):
        missing = reverse(self.detail_name, args=[self.model.objects.order_by("-id").first().pk + 1000])
        for method, _ in WRITES:
            for header in ["*", self.current_etag()]:
                with self.subTest(method=method, header=header):
                    response = send(self.client, method, missing, self.body_for(method), If_Match=header)
                    self.assertEqual(response.status_code, status.HTTP_404_NOT_FOUND)


class PatientConditionalTests(ConditionalRecordTests, ApiTestCase):
    model = Patient
    detail_name = "patient-detail"
    put_body = PATIENT_BODY

    @classmethod
    def make_record(cls, owner):
        return factories.make_patient(owner, firstname="Grace", lastname="Hopper")

    def live(self):
        return Patient.objects.filter(deleted_at__isnull=True)

    def test_a_deleted_patient_is_404_even_with_if_match_star(self):
        etag = self.current_etag()
        self.assertEqual(self.client.delete(self.url).status_code, status.HTTP_204_NO_CONTENT)
        deleted_at = Patient.objects.get(pk=self.record.pk).deleted_at
        for method, _ in WRITES:
            with self.subTest(method):
                response = send(self.client, method, self.url, self.body_for(method), If_Match="*")
                self.assertEqual(response.status_code, status.HTTP_404_NOT_FOUND)
        self.assertEqual(send(self.client, "GET", self.url, If_None_Match=etag).status_code, status.HTTP_404_NOT_FOUND)
        self.assertEqual(Patient.objects.get(pk=self.record.pk).deleted_at, deleted_at)

    def test_another_users_patient_is_404_with_or_without_conditions(self):
        intruder = factories.client_for(factories.make_user())
        etag = self.current_etag()
        requests = [("GET", {}), ("GET", {"If_None_Match": etag}), ("GET", {"If_None_Match": "*"})]
        for method, _ in WRITES:
            requests += [(method, {}), (method, {"If_Match": etag}), (method, {"If_Match": "*"})]
            requests += [(method, {"If_Match": '"stale"'})]
        for method, headers in requests:
            with self.subTest(method=method, headers=headers):
                response = send(intruder, method, self.url, self.body_for(method), **headers)
                self.assertEqual(response.status_code, status.HTTP_404_NOT_FOUND)
                self.assertNotIn("ETag", response)
        self.assertEqual(self.current_etag(), etag)

    def test_staff_and_owner_see_the_same_etag_and_staff_may_write_with_it(self):
        staff = factories.client_for(factories.make_user(is_staff=True))
        etag = self.current_etag()
        self.assertEqual(staff.get(self.url)["ETag"], etag)
        response = send(staff, "PATCH", self.url, {"age": 99}, If_Match=etag)
        self.assertEqual(response.status_code, status.HTTP_200_OK, response.content)
        self.assertEqual(Patient.objects.get(pk=self.record.pk).age, 99)
        self.assertEqual(
            send(self.client, "PATCH", self.url, {"age": 1}, If_Match=etag).status_code,
            status.HTTP_412_PRECONDITION_FAILED,
        )
        self.assertEqual(Patient.objects.get(pk=self.record.pk).age, 99)


class DoctorConditionalTests(ConditionalRecordTests, ApiTestCase):
    model = Doctor
    detail_name = "doctor-detail"
    put_body = DOCTOR_BODY

    @classmethod
    def make_record(cls, owner):
        return factories.make_doctor(owner, firstname="Meredith", lastname="Grey")

    def test_a_colleague_gets_the_etag_and_304_but_403_on_writes_whatever_the_if_match(self):
        colleague = factories.client_for(factories.make_user())
        etag = self.current_etag()
        self.assertEqual(colleague.get(self.url)["ETag"], etag)
        self.assertEqual(send(colleague, "GET", self.url, If_None_Match=etag).status_code, status.HTTP_304_NOT_MODIFIED)
        for method, _ in WRITES:
            for header in [etag, '"stale"', weak(etag), "*"]:
                with self.subTest(method=method, header=header):
                    response = send(colleague, method, self.url, self.body_for(method), If_Match=header)
                    self.assertEqual(response.status_code, status.HTTP_403_FORBIDDEN)
        doctor = Doctor.objects.get(pk=self.record.pk)
        self.assertEqual((doctor.firstname, doctor.lastname), ("Meredith", "Grey"))
        self.assertEqual(self.current_etag(), etag)


class ConcurrentIfMatchTests:
    """Of writers holding the same ETag, exactly one wins: the row is locked before If-Match is compared."""

    ROUNDS = 5
    detail_name: str

    def make_record(self, owner):
        raise NotImplementedError

    def setUp(self):
        super().setUp()
        owner = factories.make_user()
        self.record = self.make_record(owner)
        self.url = reverse(self.detail_name, args=[self.record.pk])
        # Issuing a token writes to the database: do it up front, one client per thread.
        self.clients = {"Alice": factories.client_for(owner), "Bob": factories.client_for(owner)}

    def race(self, etag: str) -> dict:
        """Both clients PATCH their own name with the same If-Match at the same time."""
        writers = list(self.clients.items())
        responses = run_concurrently(
            writers, lambda writer: send(writer[1], "PATCH", self.url, {"firstname": writer[0]}, If_Match=etag)
        )
        return {name: response for (name, _client), response in zip(writers, responses, strict=True)}

    def test_of_two_concurrent_writers_holding_the_same_etag_exactly_one_wins(self):
        client = self.clients["Alice"]
        for round_number in range(self.ROUNDS):
            with self.subTest(round=round_number):
                etag = client.get(self.url)["ETag"]
                responses = self.race(etag)
                codes = sorted(response.status_code for response in responses.values())
                self.assertEqual(codes, [status.HTTP_200_OK, status.HTTP_412_PRECONDITION_FAILED])
                winner = next(name for name, response in responses.items() if response.status_code == 200)
                loser = next(name for name in responses if name != winner)
                self.assertEqual(type(self.record).objects.get(pk=self.record.pk).firstname, winner)
                self.assertEqual(responses[loser]["ETag"], responses[winner]["ETag"])
                self.assertEqual(client.get(self.url)["ETag"], responses[winner]["ETag"])


class PatientConcurrentIfMatchTests(ConcurrentIfMatchTests, ApiTransactionTestCase):
    detail_name = "patient-detail"

    def make_record(self, owner):
        return factories.make_patient(owner, firstname="Original")


class DoctorConcurrentIfMatchTests(ConcurrentIfMatchTests, ApiTransactionTestCase):
    detail_name = "doctor-detail"

    def make_record(self, owner):
        return factories.make_doctor(owner, firstname="Original")


class OptionsWithIfMatchTests(ApiTransactionTestCase):
    """Found by Schemathesis: DRF's metadata asks for the object with a write method, outside any transaction
    (which only a TransactionTestCase shows: a TestCase wraps every request in one)."""

    def test_options_with_if_match_describes_the_route_instead_of_failing(self):
        owner = factories.make_user()
        client = factories.client_for(owner)
        urls = [
            reverse("patient-detail", args=[factories.make_patient(owner).pk]),
            reverse("doctor-detail", args=[factories.make_doctor(owner).pk]),
        ]
        for url in urls:
            for if_match in (client.get(url)["ETag"], '"stale"'):
                with self.subTest(url=url, if_match=if_match):
                    response = client.options(url, HTTP_IF_MATCH=if_match)

                    self.assertEqual(response.status_code, status.HTTP_200_OK)
                    self.assertIn("name", response.json())
