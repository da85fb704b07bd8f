"""Throttles: login, registration and anonymous requests, per client address, in a store traffic cannot evict."""

import itertools
import os
from unittest import mock

from django.conf import settings
from django.core.cache import caches
from django.test import override_settings
from django.urls import reverse
from rest_framework import status

from hospital.models import AuditEvent, User
from hospital.security_store import NonEvictingFileBasedCache
from hospital.tests import factories
from hospital.tests.base import LOCAL_CACHE, ApiTestCase

REGISTER_URL = reverse("register")
LOGIN_URL = reverse("login")
REFRESH_URL = reverse("token-refresh")
PATIENTS_URL = reverse("patient-list")
# The defaults: AUTH_THROTTLE_RATE 20/min for login and for registration, ANON_THROTTLE_RATE 60/min.
AUTH_LIMIT = 20
ANONYMOUS_LIMIT = 60
# Hashing with the production hasher takes ~0.4 s; the throttling tests only need many requests.
FAST_HASHER = ["django.contrib.auth.hashers.MD5PasswordHasher"]
PATIENT_ORDERING_FIELDS = ["id", "firstname", "lastname", "age", "created_at", "updated_at"]


def registration(username: str) -> dict:
    return {"username": username, "email": f"{username}@example.com", "password": factories.PASSWORD}


def distinct_orderings(count: int) -> list[str]:
    """`count` different ?ordering= values of the patient list (three fields, each either way)."""
    orderings = (
        ",".join(sign + field for sign, field in zip(signs, fields, strict=True))
        for fields in itertools.permutations(PATIENT_ORDERING_FIELDS, 3)
        for signs in itertools.product(["", "-"], repeat=3)
    )
    return list(itertools.islice(orderings, count))


class ThrottleAssertions:
    def assert_throttled(self, response):
        self.assertEqual(response.status_code, status.HTTP_429_TOO_MANY_REQUESTS, response.content)
        self.assertGreater(int(response["Retry-After"]), 0)
        self.assertEqual(set(response.json()), {"detail"})

    def exhaust_login_throttle(self, **extra):
        """Use up the client address's login attempts with wrong passwords."""
        for _ in range(AUTH_LIMIT):
            response = self.client.post(LOGIN_URL, {"username": "alice", "password": "guess"}, format="json", **extra)
            self.assertEqual(response.status_code, status.HTTP_401_UNAUTHORIZED)

    def exhaust_anonymous_throttle(self, **extra):
        for _ in range(ANONYMOUS_LIMIT):
            self.assertEqual(self.client.get(PATIENTS_URL, **extra).status_code, status.HTTP_401_UNAUTHORIZED)


@override_settings(PASSWORD_HASHERS=FAST_HASHER)
class LoginAndRegistrationThrottleTests(ThrottleAssertions, ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.alice = factories.make_user("alice")

    def test_it_throttles_login_even_with_the_right_password(self):
        self.exhaust_login_throttle()

        self.assert_throttled(
            self.client.post(LOGIN_URL, {"username": "alice", "password": factories.PASSWORD}, format="json")
        )

    def test_it_throttles_registration(self):
        for n in range(AUTH_LIMIT):
            response = self.client.post(REGISTER_URL, registration(f"newcomer{n}"), format="json")
            self.assertEqual(response.status_code, status.HTTP_201_CREATED)

        self.assert_throttled(self.client.post(REGISTER_URL, registration("onetoomany"), format="json"))
        self.assertFalse(User.objects.filter(username="onetoomany").exists())

    def test_it_throttles_each_client_ip_separately(self):
        self.exhaust_login_throttle()

        body = {"username": "alice", "password": factories.PASSWORD}
        response = self.client.post(LOGIN_URL, body, format="json", REMOTE_ADDR="10.0.0.2")

        self.assertEqual(response.status_code, status.HTTP_200_OK)

    def test_it_ignores_a_spoofed_x_forwarded_for_header(self):
        self.exhaust_login_throttle()

        body = {"username": "alice", "password": factories.PASSWORD}
        self.assert_throttled(self.client.post(LOGIN_URL, body, format="json", HTTP_X_FORWARDED_FOR="10.0.0.3"))


@override_settings(PASSWORD_HASHERS=FAST_HASHER)
class CacheChurnTests(ThrottleAssertions, ApiTestCase):
    """Throttle counters live in the security store, apart from the count cache, and are never evicted."""

    @classmethod
    def setUpTestData(cls):
        cls.alice = factories.make_user("alice")
        factories.make_patient(cls.alice)

    @mock.patch("hospital.pagination.LARGE_COUNT", 1)  # every list's count is cached, as over 10,000 rows
    def test_450_list_orderings_filling_the_count_cache_do_not_reset_the_login_throttle(self):
        self.exhaust_login_throttle()
        user = factories.client_for(self.alice)
        for ordering in distinct_orderings(450):
            self.assertEqual(user.get(PATIENTS_URL, {"ordering": ordering}).status_code, status.HTTP_200_OK)

        self.assert_throttled(
            self.client.post(LOGIN_URL, {"username": "alice", "password": factories.PASSWORD}, format="json")
        )

    @override_settings(CACHES={**LOCAL_CACHE, "security": {**LOCAL_CACHE["security"], "OPTIONS": {"MAX_ENTRIES": 50}}})
    def test_counters_of_many_other_addresses_do_not_evict_a_live_one(self):
        self.exhaust_login_throttle()
        for n in range(300):
            response = self.client.get(PATIENTS_URL, REMOTE_ADDR=f"10.1.{n // 250}.{n % 250}")
            self.assertEqual(response.status_code, status.HTTP_401_UNAUTHORIZED)

        self.assert_throttled(
            self.client.post(LOGIN_URL, {"username": "alice", "password": factories.PASSWORD}, format="json")
        )

    @override_settings(CACHES={**LOCAL_CACHE, "security": {**LOCAL_CACHE["security"], "OPTIONS": {"MAX_ENTRIES": 10}}})
    @mock.patch.object(NonEvictingFileBasedCache, "SWEEP_INTERVAL", 0)
    def test_expired_entries_are_swept_and_live_ones_kept_past_max_entries(self):
        store = caches["security"]
        for n in range(20):
            store.set(f"expired-{n}", n, timeout=0)  # written already expired
            store.set(f"live-{n}", n, timeout=60)

        self.assertEqual(store.get_many([f"live-{n}" for n in range(20)]), {f"live-{n}": n for n in range(20)})
        self.assertEqual(len(os.listdir(store._dir)), 20)  # past MAX_ENTRIES, and only the live ones


class AnonymousThrottleTests(ThrottleAssertions, ApiTestCase):
    """Requests without a valid token: ANON_THROTTLE_RATE per client address, on every route but health."""

    def test_past_the_limit_anonymous_requests_get_429_and_leave_no_audit_row(self):
        self.exhaust_anonymous_throttle()
        rows = AuditEvent.objects.count()

        for _ in range(10):
            self.assert_throttled(self.client.get(PATIENTS_URL))

        self.assertEqual(rows, ANONYMOUS_LIMIT)
        self.assertEqual(AuditEvent.objects.count(), rows)

    def test_the_limit_covers_every_route_but_health(self):
        self.exhaust_anonymous_throttle()

        for method, name in [
            ("get", "patient-list"),
            ("post", "doctor-list"),
            ("get", "me"),
            ("post", "login"),
            ("post", "register"),
            ("post", "token-refresh"),
            ("get", "audit-list"),
            ("get", "schema"),
        ]:
            with self.subTest(name):
                self.assert_throttled(getattr(self.client, method)(reverse(name), {}, format="json"))
        self.assertEqual(self.client.get(reverse("health")).status_code, status.HTTP_200_OK)

    def test_a_request_with_an_invalid_token_counts_as_anonymous(self):
        self.client.credentials(HTTP_AUTHORIZATION="Bearer not.a.token")
        self.exhaust_anonymous_throttle()

        self.assert_throttled(self.client.get(PATIENTS_URL))

    def test_signed_in_users_are_not_held_back_by_anonymous_traffic_from_their_address(self):
        self.exhaust_anonymous_throttle()

        signed_in = factories.client_for(factories.make_user())

        self.assertEqual(signed_in.get(PATIENTS_URL).status_code, status.HTTP_200_OK)

    def test_each_address_has_its_own_limit(self):
        self.exhaust_anonymous_throttle()

        self.assertEqual(self.client.get(PATIENTS_URL, REMOTE_ADDR="10.0.0.2").status_code, 401)

    def test_clients_without_a_usable_address_share_one_limit(self):
        self.exhaust_anonymous_throttle(REMOTE_ADDR="")

        self.assert_throttled(self.client.get(PATIENTS_URL, REMOTE_ADDR="unknown"))

    def test_an_ipv6_client_is_counted_by_its_64_network(self):
        self.exhaust_anonymous_throttle(REMOTE_ADDR="2001:db8:1:2::1")

        self.assert_throttled(self.client.get(PATIENTS_URL, REMOTE_ADDR="2001:db8:1:2:ffff:ffff:ffff:ffff"))
        self.assertEqual(self.client.get(PATIENTS_URL, REMOTE_ADDR="2001:db8:1:3::1").status_code, 401)

    def test_an_ipv4_client_on_a_dual_stack_socket_is_counted_by_its_ipv4_address(self):
        self.exhaust_anonymous_throttle(REMOTE_ADDR="::ffff:192.0.2.5")

        self.assert_throttled(self.client.get(PATIENTS_URL, REMOTE_ADDR="192.0.2.5"))
        self.assertEqual(self.client.get(PATIENTS_URL, REMOTE_ADDR="::ffff:192.0.2.6").status_code, 401)

    @override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "NUM_PROXIES": 1})
    def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(self):
        self.exhaust_anonymous_throttle(HTTP_X_FORWARDED_FOR="203.0.113.7")

        self.assert_throttled(self.client.get(PATIENTS_URL, HTTP_X_FORWARDED_FOR="203.0.113.7"))
        self.assertEqual(self.client.get(PATIENTS_URL, HTTP_X_FORWARDED_FOR="203.0.113.8").status_code, 401)
