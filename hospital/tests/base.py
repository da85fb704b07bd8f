"""Base test cases (every test starts with empty, process-local caches) and small HTTP helpers."""

import atexit
import re
import shutil
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.test import override_settings
from rest_framework.test import APITestCase, APITransactionTestCase

# The security store as production configures it (the backend that never evicts a live entry), under a
# DATA_DIR of this test run's own, where another process started with that DATA_DIR finds it too.
TEST_DATA_DIR = Path(tempfile.mkdtemp(prefix="hospital-tests-"))
atexit.register(shutil.rmtree, TEST_DATA_DIR, ignore_errors=True)
LOCAL_CACHE = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "users": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "users"},
    "security": {
        **settings.CACHES["security"],
        "LOCATION": str(TEST_DATA_DIR / Path(settings.CACHES["security"]["LOCATION"]).relative_to(settings.DATA_DIR)),
    },
}


def clear_caches():
    for alias in LOCAL_CACHE:
        caches[alias].clear()


@override_settings(CACHES=LOCAL_CACHE)
class ApiTestCase(APITestCase):
    def setUp(self):
        super().setUp()
        clear_caches()


@override_settings(CACHES=LOCAL_CACHE)
class ApiTransactionTestCase(APITransactionTestCase):
    def setUp(self):
        super().setUp()
        clear_caches()


# The fields of the API's representations, written out here as the contract rather than read from the code.
PATIENT_FIELDS = {
    "id",
    "firstname",
    "lastname",
    "age",
    "gender",
    "email",
    "created_by",
    "created_at",
    "updated_at",
    "deleted_at",
    "deleted_by",
}
DOCTOR_FIELDS = {
    "id",
    "firstname",
    "lastname",
    "specialization",
    "max_appointments_per_day",
    "gender",
    "email",
    "created_by",
    "created_at",
    "updated_at",
}

# Valid request bodies, for tests about something other than validation.
PATIENT_BODY = {"firstname": "Ada", "lastname": "Lovelace", "age": 36, "gender": "F", "email": "ada@example.com"}
DOCTOR_BODY = {
    "firstname": "Gregory",
    "lastname": "House",
    "specialization": "NEUR",
    "max_appointments_per_day": 12,
    "gender": "M",
    "email": "house@example.com",
}

LINK_PATTERN = re.compile(r'<([^>]*)>;\s*rel="([^"]+)"')


def call(client, method: str, url: str, body: dict | None = None):
    """Send `method` to `url`, with `body` as JSON for the methods that carry one."""
    if method == "GET":
        return client.get(url)
    return getattr(client, method.lower())(url, body, format="json")


def links(response) -> dict[str, dict[str, list[str]]]:
    """The RFC 8288 `Link` header as {rel: query parameters of its target}."""
    return {rel: parse_qs(urlsplit(target).query) for target, rel in LINK_PATTERN.findall(response["Link"])}


def ids(response) -> list[int]:
    return [row["id"] for row in response.json()]


def run_concurrently(items, send) -> list:
    """`send(item)` for every item (a client, say) at the same moment, each in its own thread and connection.

    Returns the responses in the order of `items`; an exception in a thread is raised here. Issue tokens
    before calling: that writes to the database too.
    """
    barrier = threading.Barrier(len(items))
    responses = [None] * len(items)
    errors = []

    def run(index, item):
        try:
            barrier.wait(timeout=10)
            responses[index] = send(item)
        except Exception as error:  # reported by the calling thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(items)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    if errors:
        raise errors[0]
    return responses


@contextmanager
def clinic_time_zone(name: str):
    """CLINIC_TIME_ZONE for the test, in Python and in this connection's PostgreSQL setting (the daily-limit
    trigger reads it; settings put it into every new connection's options)."""

    def declare(zone: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('hospital.clinic_time_zone', %s, false)", [zone])

    original = settings.CLINIC_TIME_ZONE.key
    with override_settings(CLINIC_TIME_ZONE=ZoneInfo(name)):
        declare(name)
        try:
            yield
        finally:
            declare(original)
