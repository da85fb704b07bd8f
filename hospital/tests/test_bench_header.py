"""`make bench` reads queries per request from an X-Query-Count header that only BENCHMARK_QUERY_COUNT enables."""

from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework import status

from hospital.tests import factories
from hospital.tests.base import ApiTestCase
from hospital.tests.test_settings import DATABASE_URL, STRONG_KEY, load_settings

LIST_URL = reverse("patient-list")


def middleware(**env: str) -> list[str]:
    return load_settings(SECRET_KEY=STRONG_KEY, DATABASE_URL=DATABASE_URL, **env)["MIDDLEWARE"]


BENCHMARK_MIDDLEWARE = middleware(BENCHMARK_QUERY_COUNT="true")


class QueryCountHeaderTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        for _ in range(3):
            factories.make_patient(cls.owner)

    def setUp(self):
        super().setUp()
        self.client = factories.client_for(self.owner)

    def test_the_setting_puts_the_counter_outermost_and_only_then(self):
        self.assertEqual(BENCHMARK_MIDDLEWARE[0], "hospital.query_count.QueryCountMiddleware")
        self.assertNotIn("hospital.query_count.QueryCountMiddleware", middleware())

    @override_settings(MIDDLEWARE=BENCHMARK_MIDDLEWARE)
    def test_it_counts_every_query_of_a_request(self):
        with CaptureQueriesContext(connection) as queries:
            response = self.client.get(LIST_URL)
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        # The token's user, the count, the page with its audit row.
        self.assertEqual(response["X-Query-Count"], "3")
        self.assertEqual(int(response["X-Query-Count"]), len(queries))

    @override_settings(MIDDLEWARE=BENCHMARK_MIDDLEWARE)
    def test_it_counts_the_audit_row_of_a_refused_request(self):
        response = factories.client_for(None).get(LIST_URL)
        self.assertEqual(response.status_code, status.HTTP_401_UNAUTHORIZED)
        self.assertEqual(response["X-Query-Count"], "1")

    def test_there_is_no_header_by_default(self):
        response = self.client.get(LIST_URL)
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertNotIn("X-Query-Count", response)
