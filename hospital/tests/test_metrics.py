"""/metrics: what is counted (by route pattern, never the path), and who may read it."""

from django.conf import settings
from django.test import override_settings
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families
from rest_framework import status

from hospital.tests import factories
from hospital.tests.base import ApiTestCase
from hospital.tests.test_appointments import AppointmentTestCase, at
from hospital.tests.test_audit import REJECT_AUDIT_INSERTS, execute
from hospital.tests.test_throttling import AUTH_LIMIT, FAST_HASHER

METRICS_URL = "/metrics"
TOKEN = "a-metrics-token-for-the-tests"


class MetricsReader:
    def scrape(self, client=None, **headers) -> dict[tuple, float]:
        """Every sample as {(name, sorted labels): value}."""
        response = (client or self.client_class()).get(METRICS_URL, **headers)
        self.assertEqual(response.status_code, status.HTTP_200_OK, response.content)
        self.assertTrue(response["Content-Type"].startswith("text/plain"))
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.content.decode())
            for sample in family.samples
        }

    def value(self, samples, name, **labels) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)


class CountedTests(MetricsReader, ApiTestCase):
    def setUp(self):
        super().setUp()
        self.owner = factories.make_user()
        self.client = factories.client_for(self.owner)
        self.patient = factories.make_patient(self.owner)

    def test_requests_are_counted_by_route_pattern_method_and_status(self):
        route = {"route": "api/patients/<int:pk>/", "method": "GET", "status": "200"}
        before = self.scrape()

        self.assertEqual(self.client.get(reverse("patient-detail", args=[self.patient.pk])).status_code, 200)
        self.assertEqual(self.client.generic("BREW", reverse("patient-list")).status_code, 405)
        after = self.scrape()

        self.assertEqual(
            self.value(after, "healthcare_http_requests_total", **route)
            - self.value(before, "healthcare_http_requests_total", **route),
            1,
        )
        brewed = {"route": "api/patients/", "method": "other", "status": "405"}
        self.assertGreaterEqual(self.value(after, "healthcare_http_requests_total", **brewed), 1)
        duration = {"route": "api/patients/<int:pk>/", "method": "GET"}
        self.assertEqual(
            self.value(after, "healthcare_http_request_duration_seconds_count", **duration)
            - self.value(before, "healthcare_http_request_duration_seconds_count", **duration),
            1,
        )
        # No path, id or user in any label: only these labels (and the client library's own, about Python).
        label_names = {name for _sample, labels in after for name, _value in labels}
        allowed = {"route", "method", "status", "le", "scope", "code"}
        self.assertEqual(
            label_names - allowed, {"generation", "implementation", "major", "minor", "patchlevel", "version"}
        )
        self.assertNotIn(f"/{self.patient.pk}/", " ".join(str(labels) for _sample, labels in after))

    def test_queries_per_request_are_observed(self):
        before = self.scrape()
        self.client.get(reverse("patient-list"))
        after = self.scrape()

        # Two requests observed between the scrapes: the first scrape itself (no query) and the list.
        count = "healthcare_db_queries_per_request_count"
        total = "healthcare_db_queries_per_request_sum"
        self.assertEqual(self.value(after, count) - self.value(before, count), 2)
        self.assertGreaterEqual(self.value(after, total) - self.value(before, total), 2)

    def test_audit_write_failures_are_counted(self):
        before = self.scrape()
        execute(REJECT_AUDIT_INSERTS)  # undone with the test's transaction
        self.client.raise_request_exception = False
        with self.assertLogs("django.request", "ERROR"), self.assertLogs("hospital.audit", "WARNING"):
            self.client.post(reverse("patient-list"), {"firstname": "A", "lastname": "B", "age": 3}, format="json")
        after = self.scrape()

        name = "healthcare_audit_write_failures_total"
        self.assertGreaterEqual(self.value(after, name) - self.value(before, name), 1)

    @override_settings(PASSWORD_HASHERS=FAST_HASHER)
    def test_throttle_refusals_are_counted_by_scope(self):
        before = self.scrape()
        for _ in range(AUTH_LIMIT + 1):
            self.client_class().post(reverse("login"), {"username": "x", "password": "y"}, format="json")
        after = self.scrape()

        name = "healthcare_throttle_refusals_total"
        self.assertEqual(self.value(after, name, scope="login") - self.value(before, name, scope="login"), 1)


class BookingConflictMetricsTests(MetricsReader, AppointmentTestCase):
    def test_booking_conflicts_are_counted_by_code(self):
        factories.make_appointment(self.second_patient, self.doctor, at(9), 30)
        before = self.scrape()

        self.assertEqual(self.book(start=at(9)).json()["code"], "overlap")
        for hour in (11, 12):
            factories.make_appointment(factories.make_patient(self.owner), self.doctor, at(hour))
        self.assertEqual(self.book(start=at(14)).json()["code"], "fully_booked")
        after = self.scrape()

        name = "healthcare_booking_conflicts_total"
        for code in ("overlap", "fully_booked"):
            self.assertEqual(self.value(after, name, code=code) - self.value(before, name, code=code), 1)


class AccessTests(ApiTestCase):
    def test_it_answers_loopback_clients_only(self):
        self.assertEqual(self.client.get(METRICS_URL).status_code, status.HTTP_200_OK)
        self.assertEqual(self.client.get(METRICS_URL, REMOTE_ADDR="::1").status_code, status.HTTP_200_OK)

        response = self.client.get(METRICS_URL, REMOTE_ADDR="203.0.113.5")
        self.assertEqual(response.status_code, status.HTTP_403_FORBIDDEN)
        self.assertEqual(set(response.json()), {"detail"})

    @override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "NUM_PROXIES": 1})
    def test_behind_nginx_the_forwarded_client_is_the_one_checked(self):
        response = self.client.get(METRICS_URL, HTTP_X_FORWARDED_FOR="203.0.113.5")
        self.assertEqual(response.status_code, status.HTTP_403_FORBIDDEN)
        self.assertEqual(self.client.get(METRICS_URL, HTTP_X_FORWARDED_FOR="127.0.0.1").status_code, 200)

    @override_settings(METRICS_TOKEN=TOKEN)
    def test_with_a_token_it_answers_whoever_sends_it_and_nobody_else(self):
        anywhere = {"REMOTE_ADDR": "203.0.113.5"}
        self.assertEqual(
            self.client.get(METRICS_URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **anywhere).status_code, 200
        )
        for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": TOKEN + "x"}):
            with self.subTest(headers=headers):
                self.assertEqual(self.client.get(METRICS_URL, **headers).status_code, status.HTTP_403_FORBIDDEN)

    def test_other_methods_get_a_json_405(self):
        response = self.client.post(METRICS_URL)
        self.assertEqual(response.status_code, status.HTTP_405_METHOD_NOT_ALLOWED)
        self.assertEqual(set(response.json()), {"detail"})
