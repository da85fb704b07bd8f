"""Read replica (DATABASE_REPLICA_URL): which database each request reads, over Django's test mirror of "replica".

The mirror is a second connection to the test database, so the statements each alias runs are captured apart.
Transaction test cases: the mirror's connection sees only committed rows, as a real replica does.
"""

from django.db import connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework import status

from hospital.db_router import ReplicaRouter, pin_key, read_alias
from hospital.models import AuditEvent, Patient
from hospital.security_store import security_store
from hospital.tests import factories
from hospital.tests.base import PATIENT_BODY, ApiTransactionTestCase

PATIENTS_URL = reverse("patient-list")


def tables(queries) -> list[str]:
    """The first word of each statement and whether it touches the patient or the audit table."""
    return [
        query["sql"].split()[0]
        + "".join(f" {t}" for t in ("hospital_patient", "hospital_auditevent") if t in query["sql"])
        for query in queries
    ]


class RouterTests(ApiTransactionTestCase):
    def test_reads_go_to_the_primary_unless_a_view_marked_the_request(self):
        router = ReplicaRouter()
        self.assertIsNone(router.db_for_read(Patient))
        token = read_alias.set("replica")
        try:
            self.assertEqual(router.db_for_read(Patient), "replica")
            self.assertEqual(router.db_for_write(Patient), "default")
        finally:
            read_alias.reset(token)

    def test_migrations_run_on_the_primary_only(self):
        router = ReplicaRouter()
        self.assertTrue(router.allow_migrate("default", "hospital"))
        self.assertFalse(router.allow_migrate("replica", "hospital"))


@override_settings(READ_REPLICA="replica", REPLICA_PIN_SECONDS=5)
class ReplicaReadTests(ApiTransactionTestCase):
    databases = {"default", "replica"}

    def setUp(self):
        super().setUp()
        self.owner = factories.make_user()
        self.client = factories.client_for(self.owner)
        self.patient = factories.make_patient(self.owner)

    def send(self, method, url, body=None):
        """The response, and the statements the primary and the replica ran for it."""
        with (
            CaptureQueriesContext(connections["default"]) as primary,
            CaptureQueriesContext(connections["replica"]) as replica,
        ):
            response = getattr(self.client, method)(url, body, format="json") if body else self.client.get(url)
        return response, tables(primary), tables(replica)

    def test_a_list_is_read_from_the_replica_and_its_audit_row_written_on_the_primary(self):
        response, primary, replica = self.send("get", PATIENTS_URL)

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual([row["id"] for row in response.json()], [self.patient.pk])
        self.assertIn("SELECT hospital_patient", replica)
        self.assertNotIn("hospital_auditevent", " ".join(replica))
        self.assertEqual([q for q in primary if "hospital_patient" in q], [])
        self.assertIn("WITH hospital_auditevent", primary)  # the audit INSERT (hospital.audit.AUDIT_INSERT_ASYNC)
        event = AuditEvent.objects.get(action="list")
        self.assertEqual((event.resource_ids, event.patient_ids, event.outcome), ([self.patient.pk],) * 2 + (200,))

    def test_a_detail_is_read_from_the_replica_and_its_audit_row_written_on_the_primary(self):
        response, primary, replica = self.send("get", reverse("patient-detail", args=[self.patient.pk]))

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertIn("SELECT hospital_patient", replica)
        self.assertEqual([q for q in primary if "hospital_patient" in q], [])
        event = AuditEvent.objects.get(action="read")
        self.assertEqual((event.resource_ids, event.patient_ids, event.outcome), ([self.patient.pk],) * 2 + (200,))

    def test_a_missing_record_read_on_the_replica_leaves_a_404_audit_row(self):
        response, _primary, replica = self.send("get", reverse("patient-detail", args=[self.patient.pk + 1000]))

        self.assertEqual(response.status_code, status.HTTP_404_NOT_FOUND)
        self.assertIn("SELECT hospital_patient", replica)
        self.assertEqual(AuditEvent.objects.get(action="read").outcome, 404)

    def test_a_write_goes_to_the_primary_and_pins_the_writer_there_for_a_while(self):
        response, primary, replica = self.send("post", PATIENTS_URL, PATIENT_BODY)
        self.assertEqual(response.status_code, status.HTTP_201_CREATED)
        self.assertEqual(replica, [])
        self.assertIn("INSERT hospital_patient", primary)

        response, primary, replica = self.send("get", PATIENTS_URL)
        self.assertEqual(len(response.json()), 2)
        self.assertEqual(replica, [])  # pinned: the list and its audit row in one statement on the primary
        self.assertIn("WITH hospital_patient hospital_auditevent", primary)

        security_store().delete(pin_key(self.owner.pk))  # as after REPLICA_PIN_SECONDS
        _response, _primary, replica = self.send("get", PATIENTS_URL)
        self.assertIn("SELECT hospital_patient", replica)

    def test_the_pin_belongs_to_the_writer_only(self):
        self.send("post", PATIENTS_URL, PATIENT_BODY)

        other = factories.make_user()
        self.client = factories.client_for(other)
        _response, _primary, replica = self.send("get", PATIENTS_URL)
        self.assertIn("SELECT hospital_patient", replica)

    def test_a_failed_write_does_not_pin(self):
        response, _primary, _replica = self.send("post", PATIENTS_URL, {"firstname": ""})
        self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST)

        _response, _primary, replica = self.send("get", PATIENTS_URL)
        self.assertIn("SELECT hospital_patient", replica)


class WithoutReplicaTests(ApiTransactionTestCase):
    databases = {"default", "replica"}

    def test_without_a_replica_every_read_is_on_the_primary(self):
        owner = factories.make_user()
        factories.make_patient(owner)
        client = factories.client_for(owner)
        with CaptureQueriesContext(connections["replica"]) as replica:
            self.assertEqual(client.get(PATIENTS_URL).status_code, status.HTTP_200_OK)
        self.assertEqual(len(replica), 0)
