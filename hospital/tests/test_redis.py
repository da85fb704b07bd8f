"""Shared state in Redis (REDIS_URL): throttles and revocation in Redis, and an API that keeps serving without it.

A private redis-server per test class (hospital.tests.redis_server), stopped and started again to make an outage.
"""

import logging
import time

import redis
from django.core.cache import caches
from django.test import override_settings
from django.urls import reverse
from rest_framework import status

from hospital.models import Patient, User
from hospital.redis_store import RETRY_AFTER_FAILURE_SECONDS
from hospital.tests import factories
from hospital.tests.base import PATIENT_BODY, ApiTransactionTestCase, clear_caches
from hospital.tests.redis_server import RedisServer
from hospital.tests.test_throttling import AUTH_LIMIT, FAST_HASHER, registration

LOGIN_URL = reverse("login")
REGISTER_URL = reverse("register")
REFRESH_URL = reverse("token-refresh")
PATIENTS_URL = reverse("patient-list")
ME_URL = reverse("me")


class RedisTestCase(ApiTransactionTestCase):
    """Each test with the count cache and the security store in a private Redis, emptied first."""

    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer()
        cls.redis.start()
        cls.addClassCleanup(cls.redis.stop)
        super().setUpClass()
        cls.enterClassContext(cls.redis.settings())  # after the base class's own CACHES

    def setUp(self):
        if self.redis.process is None:
            self.redis.start()
        super().setUp()
        clear_caches()

    def tearDown(self):
        if self.redis.process is None:
            self.restart_redis()
        super().tearDown()

    def restart_redis(self) -> None:
        """Start Redis again and let every process's circuit breaker try it again."""
        self.redis.start()
        time.sleep(RETRY_AFTER_FAILURE_SECONDS + 0.1)

    def login(self, username="alice"):
        return self.client.post(LOGIN_URL, {"username": username, "password": factories.PASSWORD}, format="json")


@override_settings(PASSWORD_HASHERS=FAST_HASHER)
class SharedStateTests(RedisTestCase):
    def test_login_throttle_counters_live_in_redis(self):
        factories.make_user("alice")
        for _ in range(AUTH_LIMIT):
            response = self.client.post(LOGIN_URL, {"username": "alice", "password": "guess"}, format="json")
            self.assertEqual(response.status_code, status.HTTP_401_UNAUTHORIZED)

        self.assertEqual(self.login().status_code, status.HTTP_429_TOO_MANY_REQUESTS)
        keys = redis.Redis.from_url(self.redis.url).keys("security:*throttle_login*")
        self.assertEqual(len(keys), 1)

    def test_another_instance_sharing_redis_sees_a_deactivation_on_the_next_request(self):
        user = factories.make_user()
        client = factories.client_for(user)
        self.assertEqual(client.get(ME_URL).status_code, status.HTTP_200_OK)  # the user is now cached here

        # Another instance saves the change: it shares Redis and the database, not this process's memory.
        user.is_active = False
        user.save()
        self.assertEqual(client.get(ME_URL).status_code, status.HTTP_401_UNAUTHORIZED)


@override_settings(PASSWORD_HASHERS=FAST_HASHER)
class RedisDownTests(RedisTestCase):
    def setUp(self):
        super().setUp()
        self.alice = factories.make_user("alice")
        self.client = factories.client_for(self.alice)
        self.assertEqual(self.client.get(ME_URL).status_code, status.HTTP_200_OK)

    def test_reads_and_writes_are_served(self):
        self.redis.stop()

        self.assertEqual(self.client.post(PATIENTS_URL, PATIENT_BODY, format="json").status_code, 201)
        response = self.client.get(PATIENTS_URL)
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(response["X-Total-Count"], "1")

    def test_logins_and_registrations_are_refused_with_503_and_retry_after(self):
        self.redis.stop()

        for response in (
            self.login(),
            self.client.post(REGISTER_URL, registration("newcomer"), format="json"),
        ):
            self.assertEqual(response.status_code, status.HTTP_503_SERVICE_UNAVAILABLE, response.content)
            self.assertEqual(response.json()["code"], "throttle_unavailable")
            self.assertGreater(int(response["Retry-After"]), 0)
        self.assertFalse(User.objects.filter(username="newcomer").exists())

    def test_anonymous_requests_elsewhere_still_get_their_401(self):
        self.redis.stop()

        self.assertEqual(self.client_class().get(PATIENTS_URL).status_code, status.HTTP_401_UNAUTHORIZED)

    def test_a_deactivation_during_the_outage_takes_effect_at_once_and_after_it(self):
        self.redis.stop()
        self.alice.is_active = False
        self.alice.save()

        self.assertEqual(self.client.get(ME_URL).status_code, status.HTTP_401_UNAUTHORIZED)
        self.restart_redis()
        self.assertEqual(self.client.get(ME_URL).status_code, status.HTTP_401_UNAUTHORIZED)
        # The stamp this process could not write during the outage was written when Redis came back.
        self.alice.is_active = True
        User.objects.filter(pk=self.alice.pk).update(is_active=True)  # unseen by the store: the copy is reloaded
        self.assertEqual(self.client.get(ME_URL).status_code, status.HTTP_200_OK)

    def test_a_logout_during_the_outage_ends_the_session_at_once_and_after_it(self):
        response = self.login()
        access, refresh = response.json()["access"], response.json()["refresh"]
        session = self.client_class()
        session.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
        self.assertEqual(session.get(ME_URL).status_code, status.HTTP_200_OK)
        self.redis.stop()

        self.assertEqual(session.post(reverse("logout"), {"refresh": refresh}, format="json").status_code, 204)
        self.assertEqual(session.get(ME_URL).status_code, status.HTTP_401_UNAUTHORIZED)
        self.restart_redis()
        self.assertEqual(session.get(ME_URL).status_code, status.HTTP_401_UNAUTHORIZED)

    def test_the_outage_is_logged_once_when_it_starts_and_once_when_it_ends(self):
        self.redis.stop()
        with self.assertLogs("hospital.redis_store", logging.INFO) as logs, self.assertNoLogs("django.request"):
            for _ in range(5):
                self.assertEqual(self.client.get(PATIENTS_URL).status_code, status.HTTP_200_OK)
                self.assertEqual(self.login().status_code, status.HTTP_503_SERVICE_UNAVAILABLE)
            self.restart_redis()
            self.assertEqual(self.login().status_code, status.HTTP_200_OK)
            self.assertEqual(self.client.get(PATIENTS_URL).status_code, status.HTTP_200_OK)

        self.assertEqual([record.levelname for record in logs.records], ["WARNING", "INFO"])

    def test_service_resumes_when_redis_is_back(self):
        self.redis.stop()
        self.assertEqual(self.login().status_code, status.HTTP_503_SERVICE_UNAVAILABLE)

        self.restart_redis()
        self.assertEqual(self.login().status_code, status.HTTP_200_OK)
        self.assertEqual(self.client.post(PATIENTS_URL, PATIENT_BODY, format="json").status_code, 201)
        self.assertEqual(Patient.objects.count(), 1)
        self.assertIsNotNone(caches["security"].get("anything", "default"))
