"""The audit trail: one append-only row per API request, /api/audit/ and /api/patients/<id>/access-log/."""

import json
from datetime import UTC, datetime

from django.conf import settings
from django.db import ProgrammingError, connection, transaction
from django.test import override_settings
from django.urls import reverse
from rest_framework import status
from rest_framework_simplejwt.tokens import RefreshToken

from hospital.models import AuditEvent, HistoricalPatient, Patient, PatientDoctorMapping, User
from hospital.tests import factories
from hospital.tests.base import ApiTestCase, ApiTransactionTestCase, ids, links

AUDIT_URL = reverse("audit-list")
PATIENTS_URL = reverse("patient-list")
DOCTORS_URL = reverse("doctor-list")
MAPPINGS_URL = reverse("mapping-list")
LOCALHOST = "127.0.0.1"  # the test client's REMOTE_ADDR
BEYOND_BIGINT = 2**63
FAST_HASHER = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ACCESS_LOG_FIELDS = {"id", "at", "actor", "action", "resource_type", "resource_ids", "outcome", "request_id"}
PATIENT_BODY = {"firstname": "Ada", "lastname": "Lovelace", "age": 36, "gender": "F"}
ACTIONS = {"GET": "read", "PUT": "update", "PATCH": "update", "DELETE": "delete"}


def url(name: str, *args) -> str:
    return reverse(name, args=args)


def send(client, method: str, target: str, body=None, **extra):
    if method in {"GET", "HEAD", "OPTIONS", "TRACE"}:
        return client.generic(method, target, **extra)
    return getattr(client, method.lower())(target, body, format="json", **extra)


def execute(sql: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql)


class AuditAssertions:
    def last_event_id(self) -> int:
        return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0

    def audited(self, client, method: str, target: str, body=None, ip=LOCALHOST, **extra):
        """Send a request; return it with the one audit row it wrote, checking its request id (and client ip)."""
        before = self.last_event_id()
        response = send(client, method, target, body, **extra)
        events = list(AuditEvent.objects.filter(id__gt=before))
        self.assertEqual(len(events), 1, f"{method} {target} wrote {len(events)} audit rows")
        self.assertEqual(events[0].request_id, response["X-Request-ID"])
        if ip is not None:
            self.assertEqual(events[0].client_ip, ip)
        return response, events[0]

    def assert_event(self, event, actor, action, resource_type, resource_ids, patient_ids, outcome):
        self.assertEqual(
            (event.actor, event.action, event.resource_type, event.resource_ids, event.patient_ids, event.outcome),
            (actor, action, resource_type, resource_ids, patient_ids, outcome),
        )


class RecordTests(AuditAssertions, ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        cls.intruder = factories.make_user()
        cls.staff = factories.make_user(is_staff=True)
        cls.patient = factories.make_patient(cls.owner)
        cls.second = factories.make_patient(cls.owner)
        cls.doctor = factories.make_doctor(cls.owner)
        cls.mapping = factories.make_mapping(cls.patient, cls.doctor)

    def setUp(self):
        super().setUp()
        self.client = factories.client_for(self.owner)
        self.pk = self.patient.pk

    def test_a_read_records_reader_patient_outcome_ip_and_the_responses_request_id(self):
        response, event = self.audited(self.client, "GET", url("patient-detail", self.pk))
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assert_event(event, self.owner.pk, "read", "patient", [self.pk], [self.pk], 200)
        self.assertEqual((event.request_id, event.client_request_id), (response["X-Request-ID"], ""))

    def test_a_client_request_id_is_recorded_beside_the_servers_own_never_instead_of_it(self):
        first, one = self.audited(self.client, "GET", PATIENTS_URL, HTTP_X_REQUEST_ID="t-1.a:b")
        second, other = self.audited(self.client, "GET", PATIENTS_URL, HTTP_X_REQUEST_ID="t-1.a:b")
        self.assertEqual((one.request_id, one.client_request_id), (first["X-Request-ID"], "t-1.a:b"))
        self.assertEqual((other.request_id, other.client_request_id), (second["X-Request-ID"], "t-1.a:b"))
        self.assertNotEqual(one.request_id, other.request_id)

    def test_a_list_records_the_ids_of_the_page_it_returned(self):
        response, event = self.audited(self.client, "GET", PATIENTS_URL)
        self.assertEqual(ids(response), [self.pk, self.second.pk])
        self.assert_event(event, self.owner.pk, "list", "patient", [self.pk, self.second.pk], ids(response), 200)
        response, event = self.audited(self.client, "GET", PATIENTS_URL + "?page=2&page_size=1")
        self.assert_event(event, self.owner.pk, "list", "patient", [self.second.pk], [self.second.pk], 200)

    def test_writes_record_the_created_or_named_patient(self):
        response, event = self.audited(self.client, "POST", PATIENTS_URL, PATIENT_BODY)
        new = response.json()["id"]
        self.assert_event(event, self.owner.pk, "create", "patient", [new], [new], 201)
        for method, body, outcome in [("PUT", PATIENT_BODY, 200), ("PATCH", {"age": 5}, 200), ("DELETE", None, 204)]:
            with self.subTest(method):
                _response, event = self.audited(self.client, method, url("patient-detail", self.pk), body)
                self.assert_event(event, self.owner.pk, ACTIONS[method], "patient", [self.pk], [self.pk], outcome)

    def test_failed_requests_are_recorded_too(self):
        _response, event = self.audited(self.client, "POST", PATIENTS_URL, {"age": "old"})
        self.assert_event(event, self.owner.pk, "create", "patient", [], [], 400)
        _response, event = self.audited(factories.client_for(None), "GET", url("patient-detail", self.pk))
        self.assert_event(event, None, "read", "patient", [self.pk], [self.pk], 401)
        _response, event = self.audited(self.client, "GET", PATIENTS_URL + "?deleted=true")
        self.assert_event(event, self.owner.pk, "list", "patient", [], [], 403)

    def test_id_guessing_records_the_guessed_id_with_its_404(self):
        intruder = factories.client_for(self.intruder)
        missing = self.second.pk + 1000
        for method, pk in [("GET", self.pk), ("PATCH", self.pk), ("DELETE", self.pk), ("GET", missing)]:
            with self.subTest(method=method, pk=pk):
                _response, event = self.audited(intruder, method, url("patient-detail", pk), {"age": 1})
                self.assert_event(event, self.intruder.pk, ACTIONS[method], "patient", [pk], [pk], 404)
        _response, event = self.audited(intruder, "GET", url("patient-detail", BEYOND_BIGINT))
        self.assert_event(event, self.intruder.pk, "read", "patient", [], [], 404)
        self.patient.refresh_from_db()
        self.assertIsNone(self.patient.deleted_at)

    def test_doctor_requests_name_the_doctors_and_no_patient(self):
        response, event = self.audited(self.client, "GET", DOCTORS_URL)
        self.assert_event(event, self.owner.pk, "list", "doctor", [self.doctor.pk], [], 200)
        _response, event = self.audited(self.client, "GET", url("doctor-detail", self.doctor.pk))
        self.assert_event(event, self.owner.pk, "read", "doctor", [self.doctor.pk], [], 200)
        body = {"firstname": "Doc", "lastname": "Tor", "specialization": "GEN", "gender": "M"}
        response, event = self.audited(self.client, "POST", DOCTORS_URL, body)
        self.assert_event(event, self.owner.pk, "create", "doctor", [response.json()["id"]], [], 201)
        _response, event = self.audited(self.client, "GET", url("doctor-history", self.doctor.pk))
        self.assert_event(event, self.owner.pk, "history", "doctor", [self.doctor.pk], [], 200)

    def test_mapping_requests_name_the_mappings_and_their_patients(self):
        _response, event = self.audited(self.client, "GET", MAPPINGS_URL)
        self.assert_event(event, self.owner.pk, "list", "mapping", [self.mapping.pk], [self.pk], 200)
        doctor = factories.make_doctor(self.owner)
        body = {"patient": self.second.pk, "doctor": doctor.pk}
        response, event = self.audited(self.client, "POST", MAPPINGS_URL, body)
        created = response.json()["id"]
        self.assert_event(event, self.owner.pk, "create", "mapping", [created], [self.second.pk], 201)
        _response, event = self.audited(self.client, "POST", MAPPINGS_URL, body)  # the same pair again
        self.assert_event(event, self.owner.pk, "create", "mapping", [], [], 400)
        _response, event = self.audited(self.client, "GET", url("patient-doctors", self.pk))
        self.assert_event(event, self.owner.pk, "list", "doctor", [self.doctor.pk], [self.pk], 200)
        _response, event = self.audited(factories.client_for(self.intruder), "GET", url("patient-doctors", self.pk))
        self.assert_event(event, self.intruder.pk, "list", "doctor", [], [self.pk], 404)
        _response, event = self.audited(self.client, "DELETE", url("mapping-delete", created))
        self.assert_event(event, self.owner.pk, "delete", "mapping", [created], [self.second.pk], 204)
        _response, event = self.audited(factories.client_for(self.intruder), "DELETE", url("mapping-delete", created))
        self.assertEqual((event.resource_ids, event.outcome), ([created], 404))

    def test_restore_history_and_access_log_reads_are_recorded(self):
        staff = factories.client_for(self.staff)
        self.client.delete(url("patient-detail", self.pk))
        _response, event = self.audited(staff, "POST", url("patient-restore", self.pk))
        self.assert_event(event, self.staff.pk, "restore", "patient", [self.pk], [self.pk], 200)
        _response, event = self.audited(self.client, "GET", url("patient-history", self.pk))
        self.assert_event(event, self.owner.pk, "history", "patient", [self.pk], [self.pk], 200)
        _response, event = self.audited(self.client, "GET", url("patient-access-log", self.pk))
        self.assert_event(event, self.owner.pk, "access_log", "patient", [self.pk], [], 200)

    def test_reading_the_audit_trail_is_recorded_and_so_is_a_refused_attempt(self):
        _response, event = self.audited(factories.client_for(self.staff), "GET", AUDIT_URL)
        self.assert_event(event, self.staff.pk, "list", "audit", [], [], 200)
        _response, event = self.audited(self.client, "GET", AUDIT_URL)
        self.assert_event(event, self.owner.pk, "list", "audit", [], [], 403)

    def test_health_schema_docs_and_options_are_not_recorded(self):
        before = self.last_event_id()
        for method, target in [("GET", url("health")), ("GET", url("schema")), ("GET", url("docs"))]:
            self.assertEqual(send(self.client, method, target).status_code, status.HTTP_200_OK)
        self.assertEqual(send(self.client, "OPTIONS", url("patient-detail", self.pk)).status_code, 200)
        self.assertEqual(self.last_event_id(), before)

    def test_the_client_ip_comes_from_x_forwarded_for_only_behind_trusted_proxies(self):
        forwarded = {"HTTP_X_FORWARDED_FOR": "198.51.100.7, 203.0.113.9"}
        self.audited(self.client, "GET", PATIENTS_URL, **forwarded)  # checks client_ip == REMOTE_ADDR
        with override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}):
            self.audited(self.client, "GET", PATIENTS_URL, ip="203.0.113.9", **forwarded)


class UnusualRequestTests(AuditAssertions, ApiTransactionTestCase):
    """Requests that must still be answered, and audited, normally (no test transaction: a failure shows as such)."""

    def setUp(self):
        super().setUp()
        self.owner = factories.make_user()
        self.client = factories.client_for(self.owner)
        self.client.raise_request_exception = False

    def test_a_method_the_api_does_not_serve_is_a_recorded_405_not_a_500(self):
        before = self.last_event_id()
        response = send(self.client, "TRACE", PATIENTS_URL)

        self.assertEqual(response.status_code, status.HTTP_405_METHOD_NOT_ALLOWED)
        event = AuditEvent.objects.get(id__gt=before)
        self.assertEqual((event.actor, event.outcome, event.request_id), (self.owner.pk, 405, response["X-Request-ID"]))

    @override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "NUM_PROXIES": 1})
    def test_a_forwarded_address_that_is_not_an_ip_does_not_break_the_request(self):
        for forwarded in ["203.0.113.9:51234", "unknown"]:  # some load balancers add the port; some say "unknown"
            with self.subTest(forwarded):
                before = self.last_event_id()
                response = self.client.get(PATIENTS_URL, HTTP_X_FORWARDED_FOR=forwarded)

                self.assertEqual(response.status_code, status.HTTP_200_OK)
                event = AuditEvent.objects.get(id__gt=before)
                self.assertIn(event.client_ip, {None, LOCALHOST})


@override_settings(PASSWORD_HASHERS=FAST_HASHER)
class AccountRecordTests(AuditAssertions, ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.alice = factories.make_user("alice")

    def login(self, username, password=factories.PASSWORD):
        return self.audited(self.client, "POST", reverse("login"), {"username": username, "password": password})

    def test_a_login_names_the_user_and_a_failed_one_nobody(self):
        response, event = self.login("alice")
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assert_event(event, self.alice.pk, "login", "user", [self.alice.pk], [], 200)
        for username, password in [("alice", "wrong-passphrase"), ("nobody", factories.PASSWORD)]:
            with self.subTest(username):
                _response, event = self.login(username, password)
                self.assert_event(event, None, "login", "user", [], [], 401)

    def test_refresh_and_logout_name_the_tokens_user(self):
        refresh = str(RefreshToken.for_user(self.alice))
        response, event = self.audited(self.client, "POST", reverse("token-refresh"), {"refresh": refresh})
        self.assert_event(event, self.alice.pk, "refresh", "user", [self.alice.pk], [], 200)
        client = factories.client_for(self.alice)
        _response, event = self.audited(client, "POST", reverse("logout"), {"refresh": response.json()["refresh"]})
        self.assert_event(event, self.alice.pk, "logout", "user", [self.alice.pk], [], 204)
        _response, event = self.audited(self.client, "POST", reverse("token-refresh"), {"refresh": refresh})
        self.assert_event(event, None, "refresh", "user", [], [], 401)

    def test_a_registration_names_the_new_account(self):
        body = {"username": "newcomer", "email": "newcomer@example.com", "password": factories.PASSWORD}
        response, event = self.audited(self.client, "POST", reverse("register"), body)
        self.assert_event(event, None, "create", "user", [response.json()["id"]], [], 201)
        _response, event = self.audited(self.client, "POST", reverse("register"), {**body, "username": "NEWCOMER"})
        self.assert_event(event, None, "create", "user", [], [], 400)

    def test_no_name_email_password_or_search_term_reaches_the_trail(self):
        secrets = ["Quixotina", "Wolfhausen", "quixotina@example.org", "zyggurat", "zyggurat@example.net"]
        secrets += ["Hieronymus", "wrong-zyx-passphrase", factories.PASSWORD]
        register = {"username": "zyggurat", "email": "zyggurat@example.net", "password": factories.PASSWORD}
        self.client.post(reverse("register"), register, format="json")
        self.login("zyggurat", "wrong-zyx-passphrase")
        self.login("zyggurat")
        client = factories.client_for(self.alice)
        patient = {**PATIENT_BODY, "firstname": "Quixotina", "lastname": "Wolfhausen", "email": secrets[2]}
        pk = client.post(PATIENTS_URL, patient, format="json").json()["id"]
        client.patch(url("patient-detail", pk), {"firstname": "Quixotina"}, format="json")
        client.get(PATIENTS_URL + "?search=Quixotina")
        client.post(DOCTORS_URL, {"firstname": "Hieronymus", "lastname": "B", "specialization": "GEN"}, format="json")
        self.assertEqual(AuditEvent.objects.count(), 7)  # one row per request
        trail = json.dumps(list(AuditEvent.objects.values()), default=str).lower()
        for secret in secrets:
            self.assertNotIn(secret.lower(), trail)


class AppendOnlyTests(AuditAssertions, ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.user = factories.make_user()

    def setUp(self):
        super().setUp()
        _response, event = self.audited(factories.client_for(self.user), "GET", PATIENTS_URL)
        self.row = AuditEvent.objects.filter(pk=event.pk)
        self.stored = self.row.values().get()

    def assert_refused(self, change):
        with self.assertRaisesMessage(ProgrammingError, "append-only"), transaction.atomic():
            change()

    def test_the_database_refuses_to_update_or_delete_a_row_through_the_orm(self):
        event = self.row.get()
        event.outcome = 500
        for name, change in {
            "queryset update": lambda: self.row.update(actor=None),
            "instance save": event.save,
            "queryset delete": self.row.delete,
            "instance delete": event.delete,
        }.items():
            with self.subTest(name):
                self.assert_refused(change)
        self.assertEqual(self.row.values().get(), self.stored)

    def test_the_database_refuses_to_update_or_delete_a_row_through_sql(self):
        for sql in ["UPDATE hospital_auditevent SET outcome = 500, actor = NULL", "DELETE FROM hospital_auditevent"]:
            with self.subTest(sql):
                self.assert_refused(lambda sql=sql: execute(sql))
        self.assertEqual(self.row.values().get(), self.stored)
        self.assertEqual((self.stored["actor"], self.stored["outcome"]), (self.user.pk, 200))


REJECT_AUDIT_INSERTS = """
CREATE FUNCTION test_reject_audit_insert() RETURNS trigger LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'audit insert rejected by the test'; END; $$;
CREATE TRIGGER test_reject_audit_insert BEFORE INSERT ON hospital_auditevent
    FOR EACH ROW EXECUTE FUNCTION test_reject_audit_insert();
"""
ALLOW_AUDIT_INSERTS = """
DROP TRIGGER IF EXISTS test_reject_audit_insert ON hospital_auditevent;
DROP FUNCTION IF EXISTS test_reject_audit_insert();
"""


class AtomicityTests(ApiTransactionTestCase):
    """Without a wrapping test transaction, as in production: a write commits with its audit row or not at all."""

    def setUp(self):
        super().setUp()
        self.owner = factories.make_user()
        self.patient = factories.make_patient(self.owner, firstname="Unchanged")
        self.doctor = factories.make_doctor(self.owner)
        self.client = factories.client_for(self.owner)
        self.client.raise_request_exception = False
        self.addCleanup(execute, ALLOW_AUDIT_INSERTS)
        execute(REJECT_AUDIT_INSERTS)
        self.enterContext(self.assertLogs("django.request", "ERROR"))  # the 500s are logged (and kept off the console)
        # So is the failed attempt to record each 500 once its transaction was rolled back.
        self.enterContext(self.assertLogs("hospital.audit", "WARNING"))

    def test_a_create_whose_audit_row_fails_leaves_no_patient_and_no_version(self):
        response = self.client.post(PATIENTS_URL, PATIENT_BODY, format="json")

        self.assertEqual(response.status_code, status.HTTP_500_INTERNAL_SERVER_ERROR)
        self.assertEqual((Patient.objects.count(), HistoricalPatient.objects.count()), (1, 1))
        execute(ALLOW_AUDIT_INSERTS)
        retry = self.client.post(PATIENTS_URL, PATIENT_BODY, format="json")
        self.assertEqual(retry.status_code, status.HTTP_201_CREATED)
        self.assertEqual((Patient.objects.count(), AuditEvent.objects.count()), (2, 1))

    def test_an_update_or_delete_whose_audit_row_fails_changes_nothing(self):
        for method, body in [("PATCH", {"firstname": "Changed"}), ("PUT", PATIENT_BODY), ("DELETE", None)]:
            with self.subTest(method):
                response = send(self.client, method, url("patient-detail", self.patient.pk), body)
                self.assertEqual(response.status_code, status.HTTP_500_INTERNAL_SERVER_ERROR)
        self.patient.refresh_from_db()
        self.assertEqual((self.patient.firstname, self.patient.deleted_at), ("Unchanged", None))

    def test_a_mapping_or_an_account_whose_audit_row_fails_is_not_created(self):
        mapping = self.client.post(MAPPINGS_URL, {"patient": self.patient.pk, "doctor": self.doctor.pk}, format="json")
        body = {"username": "ghost", "email": "ghost@example.com", "password": factories.PASSWORD}
        register = self.client.post(reverse("register"), body, format="json")

        self.assertEqual((mapping.status_code, register.status_code), (500, 500))
        self.assertFalse(PatientDoctorMapping.objects.exists())
        self.assertFalse(User.objects.filter(username="ghost").exists())

    def test_a_read_whose_audit_row_fails_returns_no_data(self):
        response = self.client.get(url("patient-detail", self.patient.pk))

        self.assertEqual(response.status_code, status.HTTP_500_INTERNAL_SERVER_ERROR)
        self.assertNotIn(b"Unchanged", response.content)


REJECT_PATIENT_WRITES = """
CREATE FUNCTION test_reject_patient_write() RETURNS trigger LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'patient write rejected by the test'; END; $$;
CREATE TRIGGER test_reject_patient_write BEFORE INSERT OR UPDATE ON hospital_patient
    FOR EACH ROW EXECUTE FUNCTION test_reject_patient_write();
"""
ALLOW_PATIENT_WRITES = """
DROP TRIGGER IF EXISTS test_reject_patient_write ON hospital_patient;
DROP FUNCTION IF EXISTS test_reject_patient_write();
"""


class ServerErrorTests(AuditAssertions, ApiTransactionTestCase):
    """An unhandled error is a 500 for the client and still a row in the trail, committed after the rollback."""

    def setUp(self):
        super().setUp()
        self.owner = factories.make_user()
        self.patient = factories.make_patient(self.owner, firstname="Unchanged")
        self.client = factories.client_for(self.owner)
        self.client.raise_request_exception = False
        self.addCleanup(execute, ALLOW_PATIENT_WRITES)
        execute(REJECT_PATIENT_WRITES)
        self.enterContext(self.assertLogs("django.request", "ERROR"))

    def test_a_create_that_fails_with_a_500_leaves_an_audit_row_and_no_patient(self):
        response, event = self.audited(self.client, "POST", PATIENTS_URL, PATIENT_BODY)

        self.assertEqual(response.status_code, status.HTTP_500_INTERNAL_SERVER_ERROR)
        self.assert_event(event, self.owner.pk, "create", "patient", [], [], 500)
        self.assertEqual(Patient.objects.count(), 1)

    def test_an_update_that_fails_with_a_500_leaves_an_audit_row_naming_the_patient(self):
        target = url("patient-detail", self.patient.pk)
        response, event = self.audited(self.client, "PATCH", target, {"firstname": "Changed"})

        self.assertEqual(response.status_code, status.HTTP_500_INTERNAL_SERVER_ERROR)
        self.assert_event(event, self.owner.pk, "update", "patient", [self.patient.pk], [self.patient.pk], 500)
        self.assertEqual(Patient.objects.get().firstname, "Unchanged")
        execute(ALLOW_PATIENT_WRITES)
        log = self.client.get(url("patient-access-log", self.patient.pk)).json()
        self.assertEqual([(row["action"], row["outcome"]) for row in log], [("update", 500)])


class QueryCountTests(ApiTransactionTestCase):
    def test_the_audit_row_costs_exactly_one_insert(self):
        owner = factories.make_user()
        patient = factories.make_patient(owner)
        client = factories.client_for(owner)

        # 1. SELECT the JWT's user, 2. SELECT the patient with the INSERT of its audit event (hospital.audit.ReadAudit)
        with self.assertNumQueries(2) as queries:
            response = client.get(url("patient-detail", patient.pk))

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        audit = [query["sql"] for query in queries.captured_queries if "hospital_auditevent" in query["sql"]]
        self.assertEqual(len(audit), 1)
        self.assertIn('INSERT INTO "hospital_auditevent"', audit[0])


BAD_AUDIT_QUERIES = f"""
actor=abc actor=0 actor=1.5 actor={BEYOND_BIGINT} resource=nurse resource_id=x resource_id=-3 action=peek
since=yesterday until=2020-13-01T00:00:00Z ordering=outcome page_size=0 page_size=x
since=2020-01-01T00:00:00 until=2020-01-01 since=0001-01-01T00:00:00%2B01:00 until=9999-12-31T23:59:59-10:00
"""


def day(number: int) -> datetime:
    return datetime(2020, 1, number, tzinfo=UTC)


class AuditListTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.staff = factories.make_user(is_staff=True)
        cls.alice = factories.make_user()
        cls.bob = factories.make_user()
        # (actor, action, resource_type, resource_ids, patient_ids, outcome, day of January 2020): the last row
        # is the newest by id but the oldest by time.
        rows = [
            (cls.alice.pk, "read", "patient", [10], [10], 200, 2),
            (cls.bob.pk, "list", "doctor", [10, 11], [], 200, 3),
            (cls.alice.pk, "delete", "mapping", [12], [10], 404, 4),
            (None, "login", "user", [], [], 401, 1),
        ]
        fields = ["actor", "action", "resource_type", "resource_ids", "patient_ids", "outcome"]
        cls.events = [
            AuditEvent.objects.create(
                **dict(zip(fields, row, strict=False)), at=day(row[-1]), client_ip="192.0.2.1", request_id=f"fixture{n}"
            )
            for n, row in enumerate(rows)
        ]

    def setUp(self):
        super().setUp()
        self.client = factories.client_for(self.staff)

    def fixture_ids(self, *indexes: int) -> list[int]:
        return [self.events[index].pk for index in indexes]

    def test_only_staff_may_read_the_trail(self):
        self.assertEqual(factories.client_for(None).get(AUDIT_URL).status_code, status.HTTP_401_UNAUTHORIZED)
        self.assertEqual(factories.client_for(self.alice).get(AUDIT_URL).status_code, status.HTTP_403_FORBIDDEN)
        self.assertEqual(self.client.get(AUDIT_URL).status_code, status.HTTP_200_OK)

    def test_it_lists_rows_newest_first_in_pages_with_link_and_total_count(self):
        response = self.client.get(AUDIT_URL, {"page_size": 2})

        self.assertEqual(ids(response), self.fixture_ids(3, 2))
        self.assertEqual(response["X-Total-Count"], "4")
        self.assertEqual(links(response)["next"]["page"], ["2"])
        expected = {"actor": self.alice.pk, "action": "delete", "resource_type": "mapping", "resource_ids": [12]}
        expected |= {"id": self.events[2].pk, "at": "2020-01-04T00:00:00Z", "patient_ids": [10], "outcome": 404}
        self.assertEqual(
            response.json()[1], expected | {"client_ip": "192.0.2.1", "request_id": "fixture2", "client_request_id": ""}
        )
        # The first request's own row is now the newest; the fixture rows keep their order behind it.
        newest = self.client.get(AUDIT_URL, {"page_size": 2, "page": 2})
        self.assertEqual(ids(newest), self.fixture_ids(2, 1))
        self.assertEqual(newest["X-Total-Count"], "5")

    def test_each_filter_narrows_the_trail(self):
        alice = self.alice.pk
        cases = {
            f"actor={alice}": (2, 0),
            "resource=doctor": (1,),
            "resource_id=10": (1, 0),  # resource ids only: fixture 2 has 10 among its patient ids
            "resource_id=11": (1,),
            "action=login": (3,),
            "since=2020-01-02T00:00:00Z&until=2020-01-04T00:00:00Z": (1, 0),  # since inclusive, until exclusive
            # The same instants with offsets PostgreSQL itself would refuse (beyond +-15:59).
            "since=2020-01-01T08:00:00-16:00&until=2020-01-04T16:00:00%2B16:00": (1, 0),
            f"actor={alice}&action=read": (0,),
            "until=2021-01-01T00:00:00Z": (3, 2, 1, 0),
            "until=2021-01-01T00:00:00Z&ordering=id": (0, 1, 2, 3),
            "until=2021-01-01T00:00:00Z&ordering=at": (3, 0, 1, 2),
            "until=2021-01-01T00:00:00Z&ordering=-at": (2, 1, 0, 3),
        }
        for query, expected in cases.items():
            with self.subTest(query):
                response = self.client.get(f"{AUDIT_URL}?{query}")
                self.assertEqual(response.status_code, status.HTTP_200_OK)
                self.assertEqual(ids(response), self.fixture_ids(*expected))
        audit_reads = self.client.get(AUDIT_URL, {"resource": "audit"})
        self.assertEqual(len(ids(audit_reads)), len(cases))
        self.assertEqual({row["actor"] for row in audit_reads.json()}, {self.staff.pk})

    def test_a_malformed_filter_is_a_400_naming_the_parameter(self):
        for query in BAD_AUDIT_QUERIES.split():
            with self.subTest(query):
                response = self.client.get(f"{AUDIT_URL}?{query}")
                self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST)
                self.assertIn(query.split("=")[0], response.json())


class AccessLogTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        cls.other = factories.make_user()
        cls.staff = factories.make_user(is_staff=True)
        cls.patient = factories.make_patient(cls.owner)
        cls.unrelated = factories.make_patient(cls.owner)
        cls.doctor = factories.make_doctor(cls.owner)

    def setUp(self):
        super().setUp()
        self.client = factories.client_for(self.owner)
        self.log_url = url("patient-access-log", self.patient.pk)

    def test_it_lists_every_request_that_touched_the_patient_newest_first_without_the_ip(self):
        own_read = self.client.get(url("patient-detail", self.patient.pk))
        staff_update = factories.client_for(self.staff).patch(
            url("patient-detail", self.patient.pk), {"age": 9}, format="json"
        )
        guess = factories.client_for(self.other).get(url("patient-detail", self.patient.pk))
        self.client.get(url("patient-detail", self.unrelated.pk))
        assign = self.client.post(MAPPINGS_URL, {"patient": self.patient.pk, "doctor": self.doctor.pk}, format="json")

        response = self.client.get(self.log_url)

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        rows = response.json()
        self.assertEqual(
            [(row["request_id"], row["actor"], row["action"], row["resource_type"], row["outcome"]) for row in rows],
            [
                (assign["X-Request-ID"], self.owner.pk, "create", "mapping", 201),
                (guess["X-Request-ID"], self.other.pk, "read", "patient", 404),
                (staff_update["X-Request-ID"], self.staff.pk, "update", "patient", 200),
                (own_read["X-Request-ID"], self.owner.pk, "read", "patient", 200),
            ],
        )
        self.assertEqual(set(rows[0]), ACCESS_LOG_FIELDS)
        self.assertEqual(rows[0]["resource_ids"], [assign.json()["id"]])
        self.assertEqual(ids(response), sorted(ids(response), reverse=True))
        self.assertEqual(ids(self.client.get(self.log_url)), ids(response))  # reading the log is not listed in it

    def test_each_event_shows_only_this_patients_id_never_the_other_records_the_request_touched(self):
        others_patient = factories.make_patient(self.other)
        others_mapping = factories.make_mapping(others_patient, self.doctor)
        own_mapping = factories.make_mapping(self.patient, self.doctor)
        staff = factories.client_for(self.staff)
        staff.get(PATIENTS_URL)  # lists everyone's patients: this one, the unrelated one, the other owner's
        staff.get(MAPPINGS_URL)  # both assignments of the doctor
        self.client.get(url("patient-doctors", self.patient.pk))  # doctors: a shared directory, ids shown

        rows = self.client.get(self.log_url).json()

        self.assertEqual(
            [(row["action"], row["resource_type"], row["resource_ids"]) for row in rows],
            [("list", "doctor", [self.doctor.pk]), ("list", "mapping", []), ("list", "patient", [self.patient.pk])],
        )
        staff_rows = staff.get(AUDIT_URL, {"action": "list", "resource": "mapping"}).json()
        self.assertEqual(staff_rows[0]["resource_ids"], [others_mapping.pk, own_mapping.pk])

    def test_the_creator_and_staff_may_read_it_others_get_the_404_of_a_missing_patient(self):
        missing = url("patient-access-log", self.unrelated.pk + 1000)
        self.assertEqual(self.client.get(self.log_url).status_code, status.HTTP_200_OK)
        self.assertEqual(factories.client_for(self.staff).get(self.log_url).status_code, status.HTTP_200_OK)
        other = factories.client_for(self.other)
        refused, absent = other.get(self.log_url), other.get(missing)
        self.assertEqual((refused.status_code, refused.json()), (absent.status_code, absent.json()))
        self.assertEqual(refused.status_code, status.HTTP_404_NOT_FOUND)
        self.assertEqual(factories.client_for(None).get(self.log_url).status_code, status.HTTP_401_UNAUTHORIZED)

    def test_a_deleted_patients_log_is_for_staff_only_and_shows_the_deletion(self):
        deletion = self.client.delete(url("patient-detail", self.patient.pk))

        self.assertEqual(self.client.get(self.log_url).status_code, status.HTTP_404_NOT_FOUND)
        response = factories.client_for(self.staff).get(self.log_url)
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        newest = response.json()[0]
        self.assertEqual((newest["request_id"], newest["action"]), (deletion["X-Request-ID"], "delete"))

    def test_it_is_paginated_like_other_lists(self):
        for _ in range(3):
            self.client.get(url("patient-detail", self.patient.pk))

        response = self.client.get(self.log_url, {"page_size": 2})

        self.assertEqual(len(response.json()), 2)
        self.assertEqual(response["X-Total-Count"], "3")
        self.assertEqual(links(response)["next"]["page"], ["2"])
