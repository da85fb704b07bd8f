"""Base test cases: every test starts with an empty, process-local cache (throttling counters)."""

from django.core.cache import cache
from django.test import override_settings
from rest_framework.test import APITestCase, APITransactionTestCase

LOCAL_CACHE = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@override_settings(CACHES=LOCAL_CACHE)
class ApiTestCase(APITestCase):
    def setUp(self):
        super().setUp()
        cache.clear()


@override_settings(CACHES=LOCAL_CACHE)
class ApiTransactionTestCase(APITransactionTestCase):
    def setUp(self):
        super().setUp()
        cache.clear()
