"""Idempotency-Key on POST /api/patients/, /api/doctors/ and /api/mappings/: a retried create happens once."""

import json
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone
from rest_framework import status

from hospital.models import Doctor, IdempotencyKey, Patient, PatientDoctorMapping
from hospital.tests import factories
from hospital.tests.base import DOCTOR_BODY, PATIENT_BODY, ApiTestCase, ApiTransactionTestCase, run_concurrently

PATIENTS_URL = reverse("patient-list")
DOCTORS_URL = reverse("doctor-list")
MAPPINGS_URL = reverse("mapping-list")
KEY = "3f2c9a6e-8d41-4b7e-9c55-1a2b3c4d5e6f"
REPLAYED = "Idempotent-Replayed"


def post(client, url: str, body, key: str | None = None):
    """POST `body` as JSON (a str is sent as it is), with `key` as the Idempotency-Key when given."""
    headers = {} if key is None else {"Idempotency-Key": key}
    if isinstance(body, str):
        return client.post(url, body, content_type="application/json", headers=headers)
    return client.post(url, body, format="json", headers=headers)


class IdempotencyTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        cls.other = factories.make_user()
        cls.patient = factories.make_patient(cls.owner)
        cls.doctor = factories.make_doctor(cls.owner)

    def setUp(self):
        super().setUp()
        self.client = factories.client_for(self.owner)

    def endpoints(self):
        """(name, url, a valid body, the model it creates) for each create endpoint."""
        mapping_body = {"patient": self.patient.pk, "doctor": self.doctor.pk}
        return [
            ("patients", PATIENTS_URL, PATIENT_BODY, Patient),
            ("doctors", DOCTORS_URL, DOCTOR_BODY, Doctor),
            ("mappings", MAPPINGS_URL, mapping_body, PatientDoctorMapping),
        ]

    @staticmethod
    def counts() -> tuple[int, int, int]:
        return Patient.objects.count(), Doctor.objects.count(), PatientDoctorMapping.objects.count()

    def assert_created(self, response):
        self.assertEqual(response.status_code, status.HTTP_201_CREATED, response.content)
        self.assertNotIn(REPLAYED, response)

    def assert_replay_of(self, replay, first):
        self.assertEqual(replay.status_code, first.status_code, replay.content)
        self.assertEqual(replay.content, first.content)
        self.assertEqual(replay["Content-Type"], first["Content-Type"])
        self.assertEqual(replay[REPLAYED], "true")

    # ------------------------------------------------------------------------------------------ replay

    def test_a_retry_replays_the_first_response_byte_for_byte_and_creates_nothing(self):
        for name, url, body, model in self.endpoints():
            with self.subTest(name):
                key = f"{KEY}-{name}"
                before = model.objects.count()
                first = post(self.client, url, body, key)
                self.assert_created(first)
                self.assertEqual(model.objects.count(), before + 1)
                for _ in range(2):
                    self.assert_replay_of(post(self.client, url, body, key), first)
                self.assertEqual(model.objects.count(), before + 1)

    def test_a_replay_repeats_the_first_response_even_after_the_record_changed(self):
        first = post(self.client, PATIENTS_URL, PATIENT_BODY, KEY)
        self.assert_created(first)
        Patient.objects.filter(pk=first.json()["id"]).update(firstname="Changed")
        replay = post(self.client, PATIENTS_URL, PATIENT_BODY, KEY)
        self.assert_replay_of(replay, first)
        self.assertEqual(replay.json()["firstname"], "Ada")

    def test_non_ascii_text_is_replayed_byte_for_byte(self):
        body = {**PATIENT_BODY, "firstname": "Zoë", "lastname": "Łukasiewicz-渡辺 😀"}
        first = post(self.client, PATIENTS_URL, body, KEY)
        self.assert_created(first)
        self.assertEqual(first.json()["lastname"], "Łukasiewicz-渡辺 😀")
        self.assert_replay_of(post(self.client, PATIENTS_URL, body, KEY), first)

    def test_the_order_of_the_body_keys_does_not_matter(self):
        in_order = json.dumps(PATIENT_BODY)
        reversed_order = json.dumps(dict(reversed(PATIENT_BODY.items())), indent=2)
        self.assertNotEqual(in_order, reversed_order)
        first = post(self.client, PATIENTS_URL, in_order, KEY)
        self.assert_created(first)
        self.assert_replay_of(post(self.client, PATIENTS_URL, reversed_order, KEY), first)
        self.assertEqual(Patient.objects.filter(created_by=self.owner).count(), 2)

    def test_the_route_without_its_final_slash_is_the_same_operation(self):
        first = post(self.client, PATIENTS_URL, PATIENT_BODY, KEY)
        self.assert_created(first)
        self.assert_replay_of(post(self.client, PATIENTS_URL.removesuffix("/"), PATIENT_BODY, KEY), first)
        self.assertEqual(Patient.objects.filter(created_by=self.owner).count(), 2)

    # ------------------------------------------------------------------------------------------ misuse

    def test_the_same_key_with_a_different_body_is_422_and_creates_nothing(self):
        first = post(self.client, PATIENTS_URL, PATIENT_BODY, KEY)
        self.assert_created(first)
        for change in [{"firstname": "Other"}, {"age": "36"}, {"email": ""}]:
            with self.subTest(change):
                response = post(self.client, PATIENTS_URL, {**PATIENT_BODY, **change}, KEY)
                self.assertEqual(response.status_code, status.HTTP_422_UNPROCESSABLE_ENTITY, response.content)
                self.assertEqual(set(response.json()), {"detail"})
                self.assertNotIn(REPLAYED, response)
        self.assertEqual(Patient.objects.filter(created_by=self.owner).count(), 2)
        self.assert_replay_of(post(self.client, PATIENTS_URL, PATIENT_BODY, KEY), first)

    def test_the_same_key_on_another_endpoint_is_422_and_creates_nothing(self):
        self.assert_created(post(self.client, PATIENTS_URL, PATIENT_BODY, KEY))
        counts = self.counts()
        for name, url, body, _ in self.endpoints()[1:]:
            for sent in [body, PATIENT_BODY]:
                with self.subTest(endpoint=name, body=sent):
                    response = post(self.client, url, sent, KEY)
                    self.assertEqual(response.status_code, status.HTTP_422_UNPROCESSABLE_ENTITY, response.content)
                    self.assertEqual(set(response.json()), {"detail"})
        self.assertEqual(
            (Patient.objects.count(), Doctor.objects.count(), PatientDoctorMapping.objects.count()), counts
        )

    def test_different_users_use_the_same_key_independently(self):
        other_client = factories.client_for(self.other)
        mine = post(self.client, PATIENTS_URL, PATIENT_BODY, KEY)
        theirs = post(other_client, PATIENTS_URL, PATIENT_BODY, KEY)
        self.assert_created(mine)
        self.assert_created(theirs)
        self.assertNotEqual(mine.json()["id"], theirs.json()["id"])
        self.assertEqual(Patient.objects.get(pk=theirs.json()["id"]).created_by, self.other)
        self.assert_replay_of(post(other_client, PATIENTS_URL, PATIENT_BODY, KEY), theirs)
        self.assert_replay_of(post(self.client, PATIENTS_URL, PATIENT_BODY, KEY), mine)
        response = post(other_client, PATIENTS_URL, {**PATIENT_BODY, "firstname": "Different"}, "their-own-key")
        self.assert_created(response)
        self.assert_created(post(self.client, PATIENTS_URL, PATIENT_BODY, "their-own-key"))

    def test_invalid_keys_are_400_naming_the_header_and_create_nothing(self):
        before = Patient.objects.count()
        for key in ["", " ", "a" * 256, "two words", "tab\there", "é", "ключ", "del\x7f"]:
            with self.subTest(key=key):
                response = post(self.client, PATIENTS_URL, PATIENT_BODY, key)
                self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST, response.content)
                self.assertEqual(list(response.json()), ["Idempotency-Key"])
                self.assertIsInstance(response.json()["Idempotency-Key"][0], str)
        self.assertEqual(Patient.objects.count(), before)
        self.assertFalse(IdempotencyKey.objects.exists())

    def test_keys_of_1_to_255_visible_ascii_characters_are_accepted(self):
        for key in ["x", "a" * 255, "!~\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}", KEY]:
            with self.subTest(key=key):
                first = post(self.client, PATIENTS_URL, PATIENT_BODY, key)
                self.assert_created(first)
                self.assert_replay_of(post(self.client, PATIENTS_URL, PATIENT_BODY, key), first)
        self.assertEqual(Patient.objects.filter(created_by=self.owner).count(), 1 + 4)

    # ------------------------------------------------------------------------------- failures and ttl

    def test_a_failed_first_attempt_does_not_burn_the_key(self):
        invalid = {**PATIENT_BODY, "age": 999}
        failed = post(self.client, PATIENTS_URL, invalid, KEY)
        self.assertEqual(failed.status_code, status.HTTP_400_BAD_REQUEST, failed.content)
        self.assertIn("age", failed.json())
        self.assertEqual(Patient.objects.filter(created_by=self.owner).count(), 1)
        corrected = post(self.client, PATIENTS_URL, PATIENT_BODY, KEY)
        self.assert_created(corrected)
        self.assertEqual(Patient.objects.filter(created_by=self.owner).count(), 2)
        self.assert_replay_of(post(self.client, PATIENTS_URL, PATIENT_BODY, KEY), corrected)
        # The key now belongs to the successful request: the failed body is another request.
        self.assertEqual(post(self.client, PATIENTS_URL, invalid, KEY).status_code, 422)

    def test_a_failed_assignment_does_not_burn_the_key_either(self):
        doctor = factories.make_doctor(self.owner)
        factories.make_mapping(self.patient, doctor)
        duplicate = post(self.client, MAPPINGS_URL, {"patient": self.patient.pk, "doctor": doctor.pk}, KEY)
        self.assertEqual(duplicate.status_code, status.HTTP_400_BAD_REQUEST, duplicate.content)
        corrected = post(self.client, MAPPINGS_URL, {"patient": self.patient.pk, "doctor": self.doctor.pk}, KEY)
        self.assert_created(corrected)
        self.assertEqual(PatientDoctorMapping.objects.filter(patient=self.patient).count(), 2)

    def age_key(self, hours: int) -> None:
        updated = IdempotencyKey.objects.filter(user=self.owner, key=KEY).update(
            created_at=timezone.now() - timedelta(hours=hours)
        )
        self.assertEqual(updated, 1)

    def test_a_key_older_than_24_hours_starts_a_new_request(self):
        first = post(self.client, PATIENTS_URL, PATIENT_BODY, KEY)
        self.assert_created(first)
        self.age_key(25)
        second = post(self.client, PATIENTS_URL, PATIENT_BODY, KEY)
        self.assert_created(second)
        self.assertNotEqual(second.json()["id"], first.json()["id"])
        self.assertEqual(Patient.objects.filter(created_by=self.owner).count(), 3)
        self.assert_replay_of(post(self.client, PATIENTS_URL, PATIENT_BODY, KEY), second)

    def test_an_expired_key_may_be_used_for_another_body(self):
        self.assert_created(post(self.client, PATIENTS_URL, PATIENT_BODY, KEY))
        self.age_key(25)
        other = post(self.client, DOCTORS_URL, DOCTOR_BODY, KEY)
        self.assert_created(other)
        self.assert_replay_of(post(self.client, DOCTORS_URL, DOCTOR_BODY, KEY), other)

    def test_a_key_younger_than_24_hours_still_replays(self):
        first = post(self.client, PATIENTS_URL, PATIENT_BODY, KEY)
        self.assert_created(first)
        self.age_key(23)
        self.assert_replay_of(post(self.client, PATIENTS_URL, PATIENT_BODY, KEY), first)
        self.assertEqual(post(self.client, PATIENTS_URL, {**PATIENT_BODY, "age": 1}, KEY).status_code, 422)
        self.assertEqual(Patient.objects.filter(created_by=self.owner).count(), 2)

    def test_without_the_header_every_post_creates(self):
        first, second = (post(self.client, PATIENTS_URL, PATIENT_BODY) for _ in range(2))
        self.assert_created(first)
        self.assert_created(second)
        self.assertNotEqual(first.json()["id"], second.json()["id"])
        self.assertEqual(Patient.objects.filter(created_by=self.owner).count(), 3)
        self.assertFalse(IdempotencyKey.objects.exists())


class IdempotencyRaceTests(ApiTransactionTestCase):
    THREADS = 8

    def test_concurrent_retries_with_the_same_key_create_exactly_one_record(self):
        owner = factories.make_user()
        # Each thread gets its own client (issuing a token writes to the database, so do it up front)
        # and, being a separate thread, its own database connection.
        clients = [factories.client_for(owner) for _ in range(self.THREADS)]
        responses = run_concurrently(clients, lambda client: post(client, PATIENTS_URL, PATIENT_BODY, KEY))

        self.assertEqual([response.status_code for response in responses], [status.HTTP_201_CREATED] * self.THREADS)
        self.assertEqual(len({response.json()["id"] for response in responses}), 1)
        self.assertEqual(len({response.content for response in responses}), 1)
        self.assertEqual(sum(REPLAYED not in response for response in responses), 1)
        self.assertEqual(Patient.objects.filter(created_by=owner).count(), 1)
        self.assertEqual(IdempotencyKey.objects.filter(user=owner).count(), 1)
