"""Revocation takes effect on the next request: changes saved by another worker, logout, refresh token reuse.

Transaction test cases: revocations are published to the security store once their transaction commits.
"""

import os
import re
import subprocess
import sys
from urllib.parse import quote

from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework import status
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from hospital.models import User
from hospital.tests import factories
from hospital.tests.base import TEST_DATA_DIR, ApiTransactionTestCase

LOGIN_URL = reverse("login")
REFRESH_URL = reverse("token-refresh")
LOGOUT_URL = reverse("logout")
ME_URL = reverse("me")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def test_database_url() -> str:
    db = connection.settings_dict
    port = f":{db['PORT']}" if db["PORT"] else ""
    credentials = f"{quote(db['USER'] or '', safe='')}:{quote(db['PASSWORD'] or '', safe='')}"
    return f"postgres://{credentials}@{quote(db['HOST'] or '', safe='')}{port}/{quote(db['NAME'], safe='')}"


def in_another_process(statements: str) -> None:
    """Run `statements` in a new Python process with the app set up: to this process, another worker.

    It shares the database and the security store (the DATA_DIR the tests use), nothing in memory.
    """
    script = "import django\ndjango.setup()\nfrom hospital.models import User\n" + statements
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "healthcare.settings",
        "DATABASE_URL": test_database_url(),
        "SECRET_KEY": settings.SECRET_KEY,
        "DATA_DIR": str(TEST_DATA_DIR),
        "LOG_LEVEL": "WARNING",
    }
    subprocess.run(  # noqa: S603 (our own interpreter and script)
        [sys.executable, "-c", script], env=environment, cwd=settings.BASE_DIR, check=True, timeout=120
    )


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


class Session:
    """The tokens of one login, as a client holds them."""

    def __init__(self, username: str):
        response = APIClient().post(LOGIN_URL, {"username": username, "password": factories.PASSWORD}, format="json")
        assert response.status_code == status.HTTP_200_OK, response.content
        self.access, self.refresh = response.json()["access"], response.json()["refresh"]

    def me(self) -> int:
        return bearer(self.access).get(ME_URL).status_code

    def logout(self) -> int:
        return bearer(self.access).post(LOGOUT_URL, {"refresh": self.refresh}, format="json").status_code

    def rotate(self) -> "Session":
        """Refresh: the new pair, as a new Session object (this one keeps the old tokens)."""
        response = APIClient().post(REFRESH_URL, {"refresh": self.refresh}, format="json")
        assert response.status_code == status.HTTP_200_OK, response.content
        rotated = object.__new__(Session)
        rotated.access, rotated.refresh = response.json()["access"], response.json()["refresh"]
        return rotated

    def refresh_status(self) -> int:
        return APIClient().post(REFRESH_URL, {"refresh": self.refresh}, format="json").status_code


class ChangesSavedElsewhereTests(ApiTransactionTestCase):
    """This worker holds the user in memory; the change is saved by another process, through the ORM."""

    def setUp(self):
        super().setUp()
        self.user = factories.make_user()
        self.client = factories.client_for(self.user)
        self.assertEqual(self.client.get(ME_URL).status_code, status.HTTP_200_OK)  # the user is now cached here

    def test_a_deactivation_locks_the_user_out_on_the_very_next_request(self):
        in_another_process(f"user = User.objects.get(pk={self.user.pk})\nuser.is_active = False\nuser.save()")

        self.assertEqual(self.client.get(ME_URL).status_code, status.HTTP_401_UNAUTHORIZED)

    def test_a_password_change_revokes_the_old_tokens_on_the_very_next_request(self):
        in_another_process(
            f"user = User.objects.get(pk={self.user.pk})\nuser.set_password('another-long-passphrase')\nuser.save()"
        )

        self.assertEqual(self.client.get(ME_URL).status_code, status.HTTP_401_UNAUTHORIZED)

    def test_losing_the_users_stamp_makes_the_worker_load_the_user_again(self):
        # Deactivated without saving through the ORM (so no stamp was replaced), then the store was emptied,
        # as if the stamp had expired: the cached copy must not be taken as current.
        User.objects.filter(pk=self.user.pk).update(is_active=False)
        caches["security"].clear()

        self.assertEqual(self.client.get(ME_URL).status_code, status.HTTP_401_UNAUTHORIZED)

    def test_an_unrelated_change_costs_one_reload_and_nothing_else(self):
        in_another_process(f"User.objects.get(pk={self.user.pk}).save()")

        self.assertEqual(self.client.get(ME_URL).status_code, status.HTTP_200_OK)
        with self.assertNumQueries(1):  # the audit row: the user is cached again
            self.assertEqual(self.client.get(ME_URL).status_code, status.HTTP_200_OK)


class LogoutTests(ApiTransactionTestCase):
    def setUp(self):
        super().setUp()
        self.user = factories.make_user()

    def test_logout_ends_the_access_token_that_came_with_it_at_once(self):
        session = Session(self.user.username)
        self.assertEqual(session.me(), status.HTTP_200_OK)

        self.assertEqual(session.logout(), status.HTTP_204_NO_CONTENT)

        self.assertEqual(session.me(), status.HTTP_401_UNAUTHORIZED)
        self.assertEqual(session.refresh_status(), status.HTTP_401_UNAUTHORIZED)

    def test_logout_ends_every_access_token_of_the_session(self):
        first = Session(self.user.username)
        latest = first.rotate()

        self.assertEqual(latest.logout(), status.HTTP_204_NO_CONTENT)

        self.assertEqual(first.me(), status.HTTP_401_UNAUTHORIZED)
        self.assertEqual(latest.me(), status.HTTP_401_UNAUTHORIZED)

    def test_logging_out_with_a_rotated_refresh_token_is_a_reuse_and_ends_the_session(self):
        first = Session(self.user.username)
        latest = first.rotate()

        self.assertEqual(first.logout(), status.HTTP_401_UNAUTHORIZED)

        self.assertEqual(latest.me(), status.HTTP_401_UNAUTHORIZED)
        self.assertEqual(latest.refresh_status(), status.HTTP_401_UNAUTHORIZED)

    def test_logout_leaves_the_users_other_sessions_working(self):
        phone, laptop = Session(self.user.username), Session(self.user.username)

        self.assertEqual(phone.logout(), status.HTTP_204_NO_CONTENT)

        self.assertEqual(laptop.me(), status.HTTP_200_OK)
        self.assertEqual(laptop.refresh_status(), status.HTTP_200_OK)


class RefreshTokenReuseTests(ApiTransactionTestCase):
    """A rotated refresh token presented again: someone else holds a copy, so the whole session ends."""

    def setUp(self):
        super().setUp()
        self.user = factories.make_user()

    def test_reusing_a_rotated_refresh_token_ends_its_session_newer_tokens_included(self):
        first = Session(self.user.username)
        latest = first.rotate()
        self.assertEqual(latest.me(), status.HTTP_200_OK)

        self.assertEqual(first.refresh_status(), status.HTTP_401_UNAUTHORIZED)

        self.assertEqual(latest.refresh_status(), status.HTTP_401_UNAUTHORIZED)
        self.assertEqual(latest.me(), status.HTTP_401_UNAUTHORIZED)
        self.assertEqual(first.me(), status.HTTP_401_UNAUTHORIZED)

    def test_the_database_keeps_refusing_the_session_if_the_store_is_lost(self):
        first = Session(self.user.username)
        latest = first.rotate()
        first.refresh_status()

        caches["security"].clear()

        self.assertEqual(latest.refresh_status(), status.HTTP_401_UNAUTHORIZED)

    def test_reuse_leaves_the_users_other_sessions_working(self):
        stolen, other = Session(self.user.username), Session(self.user.username)
        stolen.rotate()

        stolen.refresh_status()

        self.assertEqual(other.me(), status.HTTP_200_OK)
        self.assertEqual(other.refresh_status(), status.HTTP_200_OK)

    def test_a_refresh_token_issued_before_sessions_were_named_rotates_and_its_reuse_ends_the_new_session(self):
        old = object.__new__(Session)
        old.refresh = str(RefreshToken.for_user(self.user))  # simplejwt's own, without a session claim
        latest = old.rotate()
        self.assertEqual(latest.me(), status.HTTP_200_OK)

        self.assertEqual(old.refresh_status(), status.HTTP_401_UNAUTHORIZED)

        self.assertEqual(latest.refresh_status(), status.HTTP_401_UNAUTHORIZED)
        self.assertEqual(latest.me(), status.HTTP_401_UNAUTHORIZED)


class StoredTokenTests(ApiTransactionTestCase):
    """No table holds a usable token: the outstanding-token records keep a digest in its place."""

    def setUp(self):
        super().setUp()
        self.user = factories.make_user()

    def tables_containing(self, text: str) -> list[str]:
        """Every table of the database with a row whose text contains `text`."""
        with connection.cursor() as cursor:
            tables = connection.introspection.table_names(cursor)
            found = []
            for table in tables:
                quoted = connection.ops.quote_name(table)
                cursor.execute(f"SELECT 1 FROM {quoted} AS row WHERE strpos(row::text, %s) > 0 LIMIT 1", [text])  # noqa: S608
                if cursor.fetchone():
                    found.append(table)
        return found

    def test_login_refresh_and_logout_leave_no_token_in_the_database(self):
        first = Session(self.user.username)
        latest = first.rotate()
        self.assertEqual(latest.logout(), status.HTTP_204_NO_CONTENT)

        for token in [first.refresh, latest.refresh, first.access, latest.access]:
            signature = token.rsplit(".", 1)[1]
            self.assertEqual(self.tables_containing(signature), [])
        records = list(OutstandingToken.objects.values_list("token", flat=True))
        self.assertEqual(len(records), 2)  # both refresh tokens are recorded, so they can be blacklisted
        for record in records:
            self.assertRegex(record, DIGEST)

    def test_the_app_does_not_even_send_a_token_to_the_database(self):
        with CaptureQueriesContext(connection) as queries:
            first = Session(self.user.username)
            latest = first.rotate()
            latest.logout()

        statements = "\n".join(query["sql"] for query in queries)
        self.assertIn('INSERT INTO "token_blacklist_outstandingtoken"', statements)
        for token in [first.refresh, latest.refresh]:
            self.assertNotIn(token.rsplit(".", 1)[1], statements)

    def test_simplejwts_own_code_paths_store_a_digest_too(self):
        issued = RefreshToken.for_user(self.user)
        blacklisted = RefreshToken.for_user(self.user)
        OutstandingToken.objects.filter(jti=blacklisted["jti"]).delete()
        blacklisted.blacklist()

        for token in [issued, blacklisted]:
            self.assertRegex(OutstandingToken.objects.get(jti=token["jti"]).token, DIGEST)
            self.assertEqual(self.tables_containing(str(token).rsplit(".", 1)[1]), [])
