"""Queries per request, as production runs them: no test transaction around the request (so no SAVEPOINTs),
the token's user cached after a first request, and the same statements for a few rows as for many."""

import re
from unittest import mock

from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework import status
from rest_framework.test import APIClient

from hospital.models import Gender, Patient
from hospital.tests import factories
from hospital.tests.base import ApiTransactionTestCase

TABLE = re.compile(r'(?:FROM|INTO|UPDATE)\s+"([^"]+)"')


def statements(queries) -> list[str]:
    """Each statement as its verb and table, e.g. 'SELECT COUNT hospital_patient'; BEGIN and COMMIT as such."""
    summary = []
    for query in queries:
        sql = query["sql"]
        verb = "SELECT COUNT" if sql.startswith("SELECT COUNT(*)") else sql.split()[0]
        if sql.startswith("WITH page AS"):  # a list's page and its audit row, one statement (hospital.audit)
            page_table = TABLE.search(sql[sql.index("FROM (") :])
            summary.append(f"SELECT {page_table[1]} + INSERT hospital_auditevent")
            continue
        if verb == "WITH" and "INSERT INTO" in sql:  # the audit row of a read (hospital.audit)
            verb = "INSERT"
        table = TABLE.search(sql)
        summary.append(f"{verb} {table[1]}" if table else verb)
    return summary


class QueryCountTests(ApiTransactionTestCase):
    """Writes run in one transaction (BEGIN ... COMMIT): the change, its version and its audit row."""

    def setUp(self):
        super().setUp()
        self.owner = factories.make_user()
        self.client = factories.client_for(self.owner)
        self.client.get(reverse("me"))  # the token's user is cached per worker from the first request on
        self.patient = factories.make_patient(self.owner)
        self.doctor = factories.make_doctor(self.owner)
        factories.make_mapping(self.patient, self.doctor)

    def add_rows(self, count: int) -> None:
        Patient.objects.bulk_create(
            Patient(firstname="Bulk", lastname=f"Row{n}", age=n % 100, gender=Gender.OTHER, created_by=self.owner)
            for n in range(count)
        )
        for _ in range(3):
            factories.make_mapping(factories.make_patient(self.owner), self.doctor)

    def assert_statements(self, method: str, url: str, expected: list[str], body=None, expected_status=200, **headers):
        with CaptureQueriesContext(connection) as queries:
            if body:
                response = getattr(self.client, method)(url, body, format="json", **headers)
            else:
                response = self.client.get(url, **headers)
        self.assertEqual(response.status_code, expected_status, response.content[:300])
        self.assertEqual(statements(queries), expected)
        return response

    def test_a_list_is_a_count_and_a_page_plus_the_audit_row_for_few_and_many_rows(self):
        cases = [
            (reverse("patient-list"), "hospital_patient"),
            (reverse("mapping-list"), "hospital_patientdoctormapping"),
            (reverse("doctor-list"), "hospital_doctor"),
        ]
        for rows in (0, 1000):
            self.add_rows(rows)
            for url, table in cases:
                with self.subTest(rows=rows, url=url):
                    self.assert_statements(
                        "get", url, [f"SELECT COUNT {table}", f"SELECT {table} + INSERT hospital_auditevent"]
                    )

    def test_a_detail_read_is_one_statement_with_its_audit_row(self):
        for url, table in [
            (reverse("patient-detail", args=[self.patient.pk]), "hospital_patient"),
            (reverse("doctor-detail", args=[self.doctor.pk]), "hospital_doctor"),
        ]:
            with self.subTest(url=url):
                self.assert_statements("get", url, [f"SELECT {table} + INSERT hospital_auditevent"])
                # With If-None-Match the outcome (200 or 304) is known only after the read: a row of its own.
                self.assert_statements(
                    "get", url, [f"SELECT {table}", "INSERT hospital_auditevent"], HTTP_IF_NONE_MATCH='"x"'
                )

    def test_a_patients_doctors_are_two_queries_plus_the_audit_row(self):
        url = reverse("patient-doctors", kwargs={"patient_id": self.patient.pk})
        self.assert_statements(
            "get", url, ["SELECT hospital_patient", "SELECT hospital_doctor", "INSERT hospital_auditevent"]
        )

    def test_a_create_is_the_row_and_its_first_version_plus_the_audit_row(self):
        body = {"firstname": "Ada", "lastname": "Lovelace", "age": 36, "gender": "F"}
        self.assert_statements(
            "post",
            reverse("patient-list"),
            [
                "BEGIN",
                "INSERT hospital_patient",
                "INSERT hospital_historicalpatient",
                "INSERT hospital_auditevent",
                "COMMIT",
            ],
            body=body,
            expected_status=status.HTTP_201_CREATED,
        )

    def test_an_update_locks_reads_and_writes_the_row_with_its_version_plus_the_audit_row(self):
        self.assert_statements(
            "patch",
            reverse("patient-detail", args=[self.patient.pk]),
            [
                "BEGIN",
                "SELECT hospital_patient",  # FOR UPDATE
                "UPDATE hospital_patient",
                "INSERT hospital_historicalpatient",
                "INSERT hospital_auditevent",
                "COMMIT",
            ],
            body={"age": 41},
        )

    def test_a_login_is_the_user_and_the_new_refresh_token_plus_the_audit_row(self):
        credentials = {"username": self.owner.username, "password": factories.PASSWORD}
        with CaptureQueriesContext(connection) as queries:
            response = APIClient().post(reverse("login"), credentials, format="json")
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(
            statements(queries),
            [
                "BEGIN",
                "SELECT hospital_user",
                "INSERT token_blacklist_outstandingtoken",
                "INSERT hospital_auditevent",
                "COMMIT",
            ],
        )


@mock.patch("hospital.pagination.LARGE_COUNT", 5)
class CountCacheTests(ApiTransactionTestCase):
    """Large totals are counted once per COUNT_CACHE_SECONDS; small ones every time."""

    def setUp(self):
        super().setUp()
        self.owner = factories.make_user()
        self.client = factories.client_for(self.owner)
        self.client.get(reverse("me"))

    def list_patients(self):
        with CaptureQueriesContext(connection) as queries:
            response = self.client.get(reverse("patient-list"))
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        return int(response["X-Total-Count"]), statements(queries)

    def test_a_large_total_is_counted_once_then_reused(self):
        for _ in range(6):
            factories.make_patient(self.owner)

        first_total, first = self.list_patients()
        factories.make_patient(self.owner)
        second_total, second = self.list_patients()

        self.assertEqual(first[0], "SELECT COUNT hospital_patient")
        self.assertEqual(second, ["SELECT hospital_patient + INSERT hospital_auditevent"])
        # Up to COUNT_CACHE_SECONDS late, as documented; the page itself is always current.
        self.assertEqual((first_total, second_total), (6, 6))

    def test_a_small_total_is_counted_every_time(self):
        for expected in (3, 4):
            while Patient.objects.count() < expected:
                factories.make_patient(self.owner)
            total, queries = self.list_patients()
            self.assertEqual(total, expected)
            self.assertEqual(queries[0], "SELECT COUNT hospital_patient")

    def test_each_caller_and_filter_has_its_own_total(self):
        for _ in range(6):
            factories.make_patient(self.owner)
        other = factories.make_user()
        factories.make_patient(other)
        self.list_patients()

        others_list = factories.client_for(other).get(reverse("patient-list"))
        filtered = self.client.get(reverse("patient-list"), {"age_min": 41})

        self.assertEqual(others_list["X-Total-Count"], "1")
        self.assertEqual(filtered["X-Total-Count"], "0")

    @override_settings(COUNT_CACHE_SECONDS=0)
    def test_the_cache_can_be_switched_off(self):
        for _ in range(6):
            factories.make_patient(self.owner)
        self.list_patients()
        factories.make_patient(self.owner)

        total, queries = self.list_patients()

        self.assertEqual(total, 7)
        self.assertEqual(queries[0], "SELECT COUNT hospital_patient")


class AuditCommitTests(ApiTransactionTestCase):
    """A read's audit row is committed without waiting for the disk, unless AUDIT_SYNCHRONOUS_READS is set."""

    def audit_statement(self) -> str:
        owner = factories.make_user()
        client = factories.client_for(owner)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(reverse("patient-detail", args=[factories.make_patient(owner).pk]))
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        [audit] = [query["sql"] for query in queries if "hospital_auditevent" in query["sql"]]
        return audit

    def test_a_reads_row_is_committed_asynchronously_by_default(self):
        self.assertIn("set_config('synchronous_commit', 'off', true)", self.audit_statement())

    @override_settings(AUDIT_SYNCHRONOUS_READS=True)
    def test_a_reads_row_can_be_made_durable_like_a_writes(self):
        statement = self.audit_statement()
        self.assertIn("set_config('synchronous_commit', 'on', true)", statement)
        self.assertNotIn("'off'", statement)

    def test_the_asynchronous_commit_is_local_to_the_audit_rows_transaction(self):
        self.audit_statement()
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            self.assertEqual(cursor.fetchone()[0], "on")
