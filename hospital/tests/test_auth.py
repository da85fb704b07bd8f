"""/api/auth/: registration, login, token refresh and logout, and how tokens are checked, through HTTP only."""

import time
from datetime import timedelta

import jwt
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework import status
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from hospital.models import User
from hospital.tests import factories
from hospital.tests.base import ApiTestCase, ApiTransactionTestCase, run_concurrently
from hospital.tokens import SessionRefreshToken

REGISTER_URL = reverse("register")
LOGIN_URL = reverse("login")
REFRESH_URL = reverse("token-refresh")
LOGOUT_URL = reverse("logout")
ME_URL = reverse("me")


def post(client: APIClient, url: str, body: dict, **extra):
    return client.post(url, body, format="json", **extra)


def registration(username: str, **fields) -> dict:
    return {"username": username, "email": f"{username}@example.com", "password": factories.PASSWORD, **fields}


def tokens_for(user: User) -> tuple[str, str]:
    """An (access, refresh) pair issued exactly as /login/ issues it."""
    refresh = SessionRefreshToken.for_user(user)
    return str(refresh.access_token), str(refresh)


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def concurrent_statuses(count: int, request) -> list[int]:
    """Status codes of `request(client)` run by `count` threads at once, each with its own client and connection."""
    clients = [APIClient() for _ in range(count)]
    for client in clients:
        client.raise_request_exception = False  # a crash must show up as a 500, not vanish in the thread
    return [response.status_code for response in run_concurrently(clients, request)]


class RegisterTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.alice = factories.make_user("alice")

    def test_it_creates_an_account_and_never_returns_the_password(self):
        response = post(self.client, REGISTER_URL, registration("bob"))

        self.assertEqual(response.status_code, status.HTTP_201_CREATED)
        bob = User.objects.get(username="bob")
        self.assertEqual(response.json(), {"id": bob.id, "username": "bob", "email": "bob@example.com"})
        self.assertNotIn(factories.PASSWORD, response.content.decode())
        self.assertTrue(bob.check_password(factories.PASSWORD))

    def test_it_lets_the_new_user_log_in(self):
        post(self.client, REGISTER_URL, registration("bob"))

        response = post(self.client, LOGIN_URL, {"username": "bob", "password": factories.PASSWORD})

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        me = bearer(response.json()["access"]).get(ME_URL)
        self.assertEqual(me.json()["username"], "bob")

    def test_it_rejects_a_taken_username_in_any_case(self):
        for username in ["alice", "Alice", "ALICE"]:
            with self.subTest(username=username):
                response = post(self.client, REGISTER_URL, registration(username))
                self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST)
                self.assertIn("username", response.json())
        self.assertEqual(User.objects.filter(username__iexact="alice").count(), 1)

    def test_it_rejects_a_missing_or_invalid_email(self):
        bodies = {
            "missing": {"username": "bob", "password": factories.PASSWORD},
            "blank": registration("bob", email=""),
            "invalid": registration("bob", email="not-an-email"),
        }
        for case, body in bodies.items():
            with self.subTest(case):
                response = post(self.client, REGISTER_URL, body)
                self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST)
                self.assertIn("email", response.json())
        self.assertFalse(User.objects.filter(username="bob").exists())

    def test_it_rejects_passwords_that_fail_djangos_validators(self):
        cases = {
            "Zq8#vN1": "This password is too short.",
            "qwertyuiop": "This password is too common.",
            "8302749165": "This password is entirely numeric.",
            "rosalindfranklin1": "The password is too similar to the username.",
        }
        for password, message in cases.items():
            with self.subTest(password=password):
                response = post(self.client, REGISTER_URL, registration("rosalindfranklin", password=password))
                self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST)
                self.assertIn("password", response.json())
                self.assertTrue(any(error.startswith(message) for error in response.json()["password"]))
        self.assertFalse(User.objects.filter(username="rosalindfranklin").exists())

    def test_it_rejects_a_username_or_password_that_is_not_a_json_string(self):
        for field, value in [("username", 12345), ("password", 48213.75), ("email", ["bob@example.com"])]:
            with self.subTest(field=field):
                response = post(self.client, REGISTER_URL, {**registration("bob"), field: value})
                self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST)
                self.assertIn(field, response.json())
        self.assertEqual(list(User.objects.values_list("username", flat=True)), ["alice"])

    def test_it_names_every_missing_field(self):
        response = post(self.client, REGISTER_URL, {})

        self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST)
        self.assertEqual(set(response.json()), {"username", "email", "password"})


class RegisterRaceTests(ApiTransactionTestCase):
    def test_it_creates_exactly_one_account_when_the_same_username_registers_concurrently(self):
        statuses = concurrent_statuses(4, lambda client: post(client, REGISTER_URL, registration("racer")))

        self.assertEqual(sorted(statuses), [201, 400, 400, 400])
        self.assertEqual(User.objects.filter(username__iexact="racer").count(), 1)


class LoginTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.alice = factories.make_user("alice")

    def test_it_returns_an_access_and_a_refresh_token(self):
        response = post(self.client, LOGIN_URL, {"username": "alice", "password": factories.PASSWORD})

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(set(response.json()), {"access", "refresh"})
        self.assertEqual(bearer(response.json()["access"]).get(ME_URL).json()["id"], self.alice.id)

    def test_it_accepts_the_username_in_any_case(self):
        response = post(self.client, LOGIN_URL, {"username": "ALICE", "password": factories.PASSWORD})

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(bearer(response.json()["access"]).get(ME_URL).json()["id"], self.alice.id)

    def test_it_answers_a_wrong_password_and_an_unknown_user_alike(self):
        wrong_password = post(self.client, LOGIN_URL, {"username": "alice", "password": "not-her-password"})
        unknown_user = post(self.client, LOGIN_URL, {"username": "nobody", "password": factories.PASSWORD})

        self.assertEqual(wrong_password.status_code, status.HTTP_401_UNAUTHORIZED)
        self.assertEqual(unknown_user.status_code, status.HTTP_401_UNAUTHORIZED)
        self.assertEqual(wrong_password.json(), unknown_user.json())
        self.assertIn("WWW-Authenticate", wrong_password.headers)


class RefreshTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.alice = factories.make_user("alice")

    def setUp(self):
        super().setUp()
        self.access, self.refresh = tokens_for(self.alice)

    def assert_rejected(self, response):
        self.assertEqual(response.status_code, status.HTTP_401_UNAUTHORIZED)
        self.assertIn("WWW-Authenticate", response.headers)

    def test_it_exchanges_a_refresh_token_for_a_new_working_pair(self):
        response = post(self.client, REFRESH_URL, {"refresh": self.refresh})

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(set(response.json()), {"access", "refresh"})
        self.assertNotEqual(response.json()["refresh"], self.refresh)
        self.assertEqual(bearer(response.json()["access"]).get(ME_URL).status_code, status.HTTP_200_OK)
        again = post(self.client, REFRESH_URL, {"refresh": response.json()["refresh"]})
        self.assertEqual(again.status_code, status.HTTP_200_OK)

    def test_it_rejects_a_refresh_token_used_twice(self):
        post(self.client, REFRESH_URL, {"refresh": self.refresh})

        self.assert_rejected(post(self.client, REFRESH_URL, {"refresh": self.refresh}))

    def test_it_rejects_an_access_token_or_garbage_as_refresh_token(self):
        for case, token in {"access token": self.access, "garbage": "not.a.token"}.items():
            with self.subTest(case):
                self.assert_rejected(post(self.client, REFRESH_URL, {"refresh": token}))

    def test_it_names_a_missing_refresh_field(self):
        response = post(self.client, REFRESH_URL, {})

        self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST)
        self.assertIn("refresh", response.json())

    def test_it_rejects_the_refresh_token_of_a_deactivated_user(self):
        User.objects.filter(pk=self.alice.pk).update(is_active=False)

        self.assert_rejected(post(self.client, REFRESH_URL, {"refresh": self.refresh}))

    def test_it_revokes_every_token_issued_before_a_password_change(self):
        self.alice.set_password("a-brand-new-passphrase")
        self.alice.save()

        self.assert_rejected(bearer(self.access).get(ME_URL))
        self.assert_rejected(post(self.client, REFRESH_URL, {"refresh": self.refresh}))


class RefreshRaceTests(ApiTransactionTestCase):
    def test_it_accepts_a_refresh_token_only_once_when_it_is_used_concurrently(self):
        _access, refresh = tokens_for(factories.make_user("alice"))

        statuses = concurrent_statuses(8, lambda client: post(client, REFRESH_URL, {"refresh": refresh}))

        self.assertEqual(sorted(statuses), [200] + [401] * 7)


class LogoutTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.alice = factories.make_user("alice")
        cls.mallory = factories.make_user("mallory")

    def setUp(self):
        super().setUp()
        self.access, self.refresh = tokens_for(self.alice)

    def test_it_revokes_the_refresh_token(self):
        response = post(bearer(self.access), LOGOUT_URL, {"refresh": self.refresh})

        self.assertEqual(response.status_code, status.HTTP_204_NO_CONTENT)
        refresh = post(self.client, REFRESH_URL, {"refresh": self.refresh})
        self.assertEqual(refresh.status_code, status.HTTP_401_UNAUTHORIZED)

    def test_it_answers_401_to_anonymous_callers(self):
        response = post(self.client, LOGOUT_URL, {"refresh": self.refresh})

        self.assertEqual(response.status_code, status.HTTP_401_UNAUTHORIZED)
        self.assertIn("WWW-Authenticate", response.headers)
        self.assertEqual(post(self.client, REFRESH_URL, {"refresh": self.refresh}).status_code, status.HTTP_200_OK)

    def test_it_rejects_another_users_refresh_token_and_leaves_it_working(self):
        mallory_access, _mallory_refresh = tokens_for(self.mallory)

        response = post(bearer(mallory_access), LOGOUT_URL, {"refresh": self.refresh})

        self.assertEqual(response.status_code, status.HTTP_401_UNAUTHORIZED)
        self.assertEqual(post(self.client, REFRESH_URL, {"refresh": self.refresh}).status_code, status.HTTP_200_OK)


class MeTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.alice = factories.make_user("alice", is_staff=True)

    def test_it_describes_the_tokens_user(self):
        response = factories.client_for(self.alice).get(ME_URL)

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(
            response.json(),
            {
                "id": self.alice.id,
                "username": "alice",
                "email": "alice@example.com",
                "is_staff": True,
                "roles": [],
                "doctor": None,
            },
        )

    def test_it_answers_401_to_anonymous_callers(self):
        response = self.client.get(ME_URL)

        self.assertEqual(response.status_code, status.HTTP_401_UNAUTHORIZED)
        self.assertIn("WWW-Authenticate", response.headers)


class AccessTokenTests(ApiTestCase):
    """Every way an Authorization header can be wrong is a 401 with a challenge, never a 403 or 500."""

    @classmethod
    def setUpTestData(cls):
        cls.alice = factories.make_user("alice")

    def assert_rejected(self, authorization: str):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=authorization)
        response = client.get(ME_URL)
        self.assertEqual(response.status_code, status.HTTP_401_UNAUTHORIZED)
        self.assertIn("WWW-Authenticate", response.headers)

    def test_it_rejects_a_refresh_token(self):
        self.assert_rejected(f"Bearer {RefreshToken.for_user(self.alice)}")

    def test_it_rejects_an_unsigned_token(self):
        payload = AccessToken.for_user(self.alice).payload
        self.assert_rejected(f"Bearer {jwt.encode(payload, key=None, algorithm='none')}")

    def test_it_rejects_a_token_signed_with_another_key(self):
        payload = AccessToken.for_user(self.alice).payload
        self.assert_rejected(f"Bearer {jwt.encode(payload, key='x' * 64, algorithm='HS256')}")

    def test_it_rejects_a_signed_token_that_names_no_user(self):
        token = AccessToken.for_user(self.alice)
        del token["user_id"]
        self.assert_rejected(f"Bearer {token}")

    def test_it_rejects_an_expired_token(self):
        token = AccessToken.for_user(self.alice)
        token.set_exp(lifetime=-timedelta(seconds=1))
        self.assert_rejected(f"Bearer {token}")

    def test_it_rejects_malformed_headers(self):
        token = AccessToken.for_user(self.alice)
        for header in ["Bearer", f"Token {token}", f"Bearer {token} extra"]:
            with self.subTest(header=header):
                self.assert_rejected(header)


class CachedTokenUserTests(ApiTransactionTestCase):
    """The token's user is looked up once per worker, yet lockouts still take effect (transactions commit, as
    changes are published to the other workers once committed)."""

    def setUp(self):
        super().setUp()
        self.user = factories.make_user()
        self.client = factories.client_for(self.user)

    def test_the_second_request_does_not_look_the_user_up_again(self):
        self.client.get(reverse("me"))

        with CaptureQueriesContext(connection) as queries:
            response = self.client.get(reverse("me"))

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertFalse([query for query in queries if 'FROM "hospital_user"' in query["sql"]])

    def test_a_deactivation_saved_in_this_process_locks_the_user_out_at_once(self):
        self.client.get(reverse("me"))
        self.user.is_active = False
        self.user.save()

        self.assertEqual(self.client.get(reverse("me")).status_code, status.HTTP_401_UNAUTHORIZED)

    def test_a_password_changed_in_this_process_revokes_the_tokens_at_once(self):
        self.client.get(reverse("me"))
        self.user.set_password("another-long-passphrase")
        self.user.save()

        self.assertEqual(self.client.get(reverse("me")).status_code, status.HTTP_401_UNAUTHORIZED)

    @override_settings(USER_CACHE_SECONDS=1)
    def test_a_deactivation_made_elsewhere_locks_the_user_out_once_the_cached_copy_expires(self):
        self.client.get(reverse("me"))
        # As another worker or host would: no signal reaches this process's cache.
        User.objects.filter(pk=self.user.pk).update(is_active=False)

        still_cached = self.client.get(reverse("me"))
        time.sleep(1.1)
        expired = self.client.get(reverse("me"))

        self.assertEqual(still_cached.status_code, status.HTTP_200_OK)
        self.assertEqual(expired.status_code, status.HTTP_401_UNAUTHORIZED)

    @override_settings(USER_CACHE_SECONDS=0)
    def test_the_cache_can_be_switched_off(self):
        self.client.get(reverse("me"))
        User.objects.filter(pk=self.user.pk).update(is_active=False)

        self.assertEqual(self.client.get(reverse("me")).status_code, status.HTTP_401_UNAUTHORIZED)

    def test_a_cached_user_with_a_token_from_before_a_password_change_is_refused(self):
        old_client = factories.client_for(self.user)
        self.user.set_password("another-long-passphrase")
        self.user.save()
        new_client = factories.client_for(self.user)
        new_client.get(reverse("me"))  # caches the user with the new password

        self.assertEqual(old_client.get(reverse("me")).status_code, status.HTTP_401_UNAUTHORIZED)
        self.assertEqual(new_client.get(reverse("me")).status_code, status.HTTP_200_OK)

    def test_a_token_issued_after_a_password_change_made_elsewhere_works_at_once(self):
        self.client.get(reverse("me"))  # caches the user with the old password
        # Changed by another worker or host: this process's cached copy still holds the old password.
        self.user.set_password("another-long-passphrase")
        User.objects.filter(pk=self.user.pk).update(password=self.user.password)
        fresh_token_client = factories.client_for(User.objects.get(pk=self.user.pk))

        self.assertEqual(fresh_token_client.get(reverse("me")).status_code, status.HTTP_200_OK)
        self.assertEqual(self.client.get(reverse("me")).status_code, status.HTTP_401_UNAUTHORIZED)
