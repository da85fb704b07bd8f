"""Emergency access ("break the glass"): clinicians only, a reason, a time limit, an audit row, a review queue."""

from datetime import timedelta

from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework import status

from hospital.models import AuditEvent, EmergencyAccessGrant, Patient
from hospital.tests import factories
from hospital.tests.base import ApiTestCase, ids

LIST_URL = reverse("emergency-access-list")
REASON = "Unconscious in the emergency room; allergies unknown"
GRANT_FIELDS = {"id", "patient", "user", "reason", "granted_at", "expires_at"}


def grant_url(patient_id: int) -> str:
    return reverse("patient-emergency-access", args=[patient_id])


class EmergencyAccessTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        cls.staff = factories.make_user(is_staff=True)
        cls.patient = factories.make_patient(cls.owner)
        cls.clinician = factories.make_clinician(factories.make_doctor(cls.staff))

    def setUp(self):
        super().setUp()
        self.client = factories.client_for(self.clinician)
        self.detail = reverse("patient-detail", args=[self.patient.pk])

    @override_settings(EMERGENCY_ACCESS_MINUTES=45)
    def test_a_clinician_gets_time_boxed_access_with_a_reason_and_an_audit_row(self):
        self.assertEqual(self.client.get(self.detail).status_code, status.HTTP_404_NOT_FOUND)

        response = self.client.post(grant_url(self.patient.pk), {"reason": REASON}, format="json")

        self.assertEqual(response.status_code, status.HTTP_201_CREATED, response.content)
        grant = response.json()
        self.assertEqual(set(grant), GRANT_FIELDS)
        self.assertEqual(
            (grant["patient"], grant["user"], grant["reason"]), (self.patient.pk, self.clinician.pk, REASON)
        )
        stored = EmergencyAccessGrant.objects.get()
        self.assertEqual(stored.expires_at - stored.granted_at, timedelta(minutes=45))
        self.assertEqual(self.client.get(self.detail).status_code, status.HTTP_200_OK)
        event = AuditEvent.objects.get(request_id=response["X-Request-ID"])
        self.assertEqual(
            (event.actor, event.action, event.resource_type, event.resource_ids, event.patient_ids, event.outcome),
            (self.clinician.pk, "emergency_access", "patient", [self.patient.pk], [self.patient.pk], 201),
        )
        log = factories.client_for(self.owner).get(reverse("patient-access-log", args=[self.patient.pk])).json()
        self.assertEqual(
            [(row["actor"], row["action"]) for row in log][-2:],
            [(self.clinician.pk, "emergency_access"), (self.clinician.pk, "read")],
        )

    def test_an_expired_grant_gives_no_access(self):
        factories.make_grant(self.clinician, self.patient, minutes=-1)
        self.assertEqual(self.client.get(self.detail).status_code, status.HTTP_404_NOT_FOUND)

    def test_the_reason_is_required_and_10_to_500_characters(self):
        for body in (
            {},
            {"reason": ""},
            {"reason": "too short"},
            {"reason": "x" * 501},
            {"reason": 1234567890},
            {"reason": None},
        ):
            with self.subTest(body=body):
                response = self.client.post(grant_url(self.patient.pk), body, format="json")
                self.assertEqual((response.status_code, list(response.json())), (400, ["reason"]))
        self.assertFalse(EmergencyAccessGrant.objects.exists())

    def test_a_missing_or_deleted_patient_is_a_404(self):
        deleted = factories.make_patient(self.owner)
        Patient.objects.filter(pk=deleted.pk).update(deleted_at=timezone.now(), deleted_by=self.owner)
        for patient_id in (deleted.pk, 10**9):
            with self.subTest(patient_id=patient_id):
                response = self.client.post(grant_url(patient_id), {"reason": REASON}, format="json")
                self.assertEqual(response.status_code, status.HTTP_404_NOT_FOUND)

    def test_only_clinicians_break_the_glass_and_others_learn_nothing_of_the_patient(self):
        for user in (self.owner, self.staff, factories.make_front_desk(), factories.make_user()):
            client = factories.client_for(user)
            for patient_id in (self.patient.pk, 10**9):
                with self.subTest(user=user.username, patient_id=patient_id):
                    response = client.post(grant_url(patient_id), {"reason": REASON}, format="json")
                    self.assertEqual(response.status_code, status.HTTP_403_FORBIDDEN)
        self.assertEqual(
            factories.client_for(None).post(grant_url(self.patient.pk), {"reason": REASON}).status_code, 401
        )
        self.assertFalse(EmergencyAccessGrant.objects.exists())


class ReviewQueueTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        cls.staff = factories.make_user(is_staff=True)
        cls.first, cls.second = factories.make_patient(cls.owner), factories.make_patient(cls.owner)
        cls.alice = factories.make_clinician(factories.make_doctor(cls.staff))
        cls.bob = factories.make_clinician(factories.make_doctor(cls.staff))
        cls.expired = factories.make_grant(cls.alice, cls.first, minutes=-10)
        cls.live = factories.make_grant(cls.alice, cls.second)
        cls.newest = factories.make_grant(cls.bob, cls.first)

    def setUp(self):
        super().setUp()
        self.client = factories.client_for(self.staff)

    def test_staff_review_every_grant_newest_first_with_filters(self):
        cases = {
            "": [self.newest.pk, self.live.pk, self.expired.pk],
            f"user={self.alice.pk}": [self.live.pk, self.expired.pk],
            f"patient={self.first.pk}": [self.newest.pk, self.expired.pk],
            "active=true": [self.newest.pk, self.live.pk],
            "active=false": [self.expired.pk],
        }
        for query, expected in cases.items():
            with self.subTest(query=query):
                response = self.client.get(f"{LIST_URL}?{query}")
                self.assertEqual(response.status_code, status.HTTP_200_OK)
                self.assertEqual(ids(response), expected)
        for query in ("active=maybe", "user=x", "patient=0"):
            with self.subTest(query=query):
                response = self.client.get(f"{LIST_URL}?{query}")
                self.assertEqual((response.status_code, list(response.json())), (400, [query.split("=")[0]]))

    def test_reading_the_queue_is_audited_with_the_patients_it_shows(self):
        response = self.client.get(LIST_URL)
        event = AuditEvent.objects.get(request_id=response["X-Request-ID"])
        self.assertEqual((event.action, event.resource_type), ("list", "emergency_access"))
        self.assertEqual(event.patient_ids, [self.first.pk, self.second.pk, self.first.pk])  # page order

    def test_it_is_for_staff_only(self):
        for user in (self.alice, self.owner, factories.make_front_desk()):
            with self.subTest(user=user.username):
                self.assertEqual(factories.client_for(user).get(LIST_URL).status_code, status.HTTP_403_FORBIDDEN)
