"""Usernames are compared in one canonical form: look-alikes cannot register, and login never fails with a 500."""

import os
from io import StringIO
from unittest import mock

from django.core.management import CommandError, call_command
from django.test import override_settings
from django.urls import reverse
from rest_framework import status
from rest_framework.test import APIClient

from hospital.models import User
from hospital.tests import factories
from hospital.tests.base import ApiTestCase, ApiTransactionTestCase, run_concurrently

REGISTER_URL = reverse("register")
LOGIN_URL = reverse("login")
ME_URL = reverse("me")
FAST_HASHER = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def fullwidth(text: str) -> str:
    """The text in fullwidth Latin letters (U+FF41...), as East Asian keyboards type them."""
    return "".join(chr(ord(character) + 0xFEE0) for character in text)


SOPHOS = "\u03c3\u03bf\u03c6\u03bf\u03c2"  # Greek, ending in a final sigma

# Each existing name, and names a reader cannot tell from it (or that differ only in case).
LOOK_ALIKES = {
    "victim": ["v\u0131ctim", "v\u0131ct\u0131m", "VICTIM", fullwidth("victim")],  # dotless i, case, fullwidth
    SOPHOS: [SOPHOS[:-1] + "\u03c3", SOPHOS.upper()],  # medial sigma at the end, capitals
    "kate": ["\u212aate"],  # Kelvin sign
    "sam": ["\u017fam"],  # long s
    "strasse": ["Stra\u00dfe", "STRA\u1e9eE"],  # sharp s
    "fine": ["\ufb01ne"],  # ligature
}


def registration(username: str) -> dict:
    return {"username": username, "email": "someone@example.com", "password": factories.PASSWORD}


@override_settings(PASSWORD_HASHERS=FAST_HASHER)
class LookAlikeRegistrationTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        for username in LOOK_ALIKES:
            factories.make_user(username)

    def test_it_refuses_a_look_alike_of_an_existing_username(self):
        for existing, look_alikes in LOOK_ALIKES.items():
            for username in look_alikes:
                with self.subTest(existing=existing, username=username):
                    response = self.client.post(REGISTER_URL, registration(username), format="json")
                    self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST)
                    self.assertEqual(response.json(), {"username": ["A user with that username already exists."]})
        self.assertEqual(User.objects.count(), len(LOOK_ALIKES))

    def test_the_real_user_logs_in_by_any_look_alike_of_their_name_and_nobody_gets_a_500(self):
        for group, (existing, look_alikes) in enumerate(LOOK_ALIKES.items()):
            account = User.objects.get(username=existing)
            for n, username in enumerate([existing, *look_alikes]):
                with self.subTest(username=username):
                    client = APIClient(REMOTE_ADDR=f"10.0.{group}.{n}")  # the login throttle is per address
                    good = client.post(LOGIN_URL, {"username": username, "password": factories.PASSWORD}, format="json")
                    bad = client.post(LOGIN_URL, {"username": username, "password": "not-it"}, format="json")
                    self.assertEqual(good.status_code, status.HTTP_200_OK)
                    self.assertEqual(bad.status_code, status.HTTP_401_UNAUTHORIZED)
                    client.credentials(HTTP_AUTHORIZATION=f"Bearer {good.json()['access']}")
                    self.assertEqual(client.get(ME_URL).json()["id"], account.id)


class UsernameRulesTests(ApiTestCase):
    def assert_refused(self, username: str):
        response = self.client.post(REGISTER_URL, registration(username), format="json")
        self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST, response.content)
        self.assertEqual(set(response.json()), {"username"})

    def test_a_name_too_long_once_normalized_is_a_400_not_a_500(self):
        self.assert_refused("\ufdfa" * 9)  # 9 characters, 162 once normalized

        self.assertFalse(User.objects.exists())

    def test_a_name_that_gains_spaces_once_normalized_is_refused_not_stored_with_them(self):
        self.assert_refused("\ufdfa" * 2)

        self.assertFalse(User.objects.exists())

    def test_it_refuses_whitespace_invisible_and_control_characters(self):
        cases = {
            "zero-width joiner": "vic\u200dtim",
            "zero-width space": "victim\u200b",
            "soft hyphen": "vic\u00adtim",
            "right-to-left mark": "\u200fvictim",
            "leading space": " victim",
            "trailing space": "victim ",
            "inner space": "vic tim",
            "no-break space": "victim\u00a0",
            "ideographic space": "vic\u3000tim",
            "tab": "victim\t",
            "control": "victim\u0007",
            "combining mark alone": "\u0307victim",
        }
        for case, username in cases.items():
            with self.subTest(case):
                self.assert_refused(username)
        self.assertFalse(User.objects.exists())

    def test_a_name_is_stored_in_its_normalized_form(self):
        response = self.client.post(REGISTER_URL, registration(fullwidth("bob")), format="json")

        self.assertEqual(response.status_code, status.HTTP_201_CREATED)
        self.assertEqual(response.json()["username"], "bob")


class LookAlikeRaceTests(ApiTransactionTestCase):
    def test_two_look_alikes_registering_at_once_get_one_account(self):
        responses = run_concurrently(
            ["victor", "v\u0131ctor"],
            lambda username: APIClient().post(REGISTER_URL, registration(username), format="json"),
        )

        self.assertEqual(sorted(response.status_code for response in responses), [201, 400])
        self.assertEqual(User.objects.count(), 1)


class AdminAndCommandTests(ApiTestCase):
    """The admin's user forms and createsuperuser apply the same rules."""

    @classmethod
    def setUpTestData(cls):
        cls.admin = User.objects.create_superuser("admin", "admin@example.com", factories.PASSWORD)
        cls.victim = factories.make_user("victim")

    def setUp(self):
        super().setUp()
        self.client.force_login(self.admin)

    def test_the_admin_refuses_to_add_a_look_alike(self):
        response = self.client.post(
            reverse("admin:hospital_user_add"),
            {"username": "v\u0131ctim", "password1": factories.PASSWORD, "password2": factories.PASSWORD},
        )

        self.assertEqual(response.status_code, status.HTTP_200_OK)  # the form again, with its errors
        self.assertIn("username", response.context["adminform"].form.errors)
        self.assertEqual(User.objects.count(), 2)

    def test_the_admin_refuses_to_rename_an_account_to_a_look_alike(self):
        other = factories.make_user("other")
        change_url = reverse("admin:hospital_user_change", args=[other.pk])
        form = self.client.get(change_url).context["adminform"].form
        data = {name: value for name, value in form.initial.items() if value is not None and name != "password"}
        data.update({"username": "VICTIM", "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00"})
        data.pop("date_joined", None)
        data.pop("last_login", None)
        data["groups"] = []
        data["user_permissions"] = []

        response = self.client.post(change_url, data)

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(set(response.context["adminform"].form.errors), {"username"})
        other.refresh_from_db()
        self.assertEqual(other.username, "other")

    def test_the_admin_refuses_a_missing_name_or_one_too_long_once_normalized(self):
        for username in ["", "\ufdfa" * 9]:
            with self.subTest(username=username):
                response = self.client.post(
                    reverse("admin:hospital_user_add"),
                    {"username": username, "password1": factories.PASSWORD, "password2": factories.PASSWORD},
                )
                self.assertEqual(response.status_code, status.HTTP_200_OK)
                self.assertEqual(set(response.context["adminform"].form.errors), {"username"})
        self.assertEqual(User.objects.count(), 2)

    def test_a_rename_saved_field_by_field_keeps_the_canonical_form_in_step(self):
        self.victim.username = "Victoria"
        self.victim.save(update_fields=["username"])

        response = self.client.post(LOGIN_URL, {"username": "VICTORIA", "password": factories.PASSWORD}, format="json")

        self.assertEqual(response.status_code, status.HTTP_200_OK)

    def test_createsuperuser_refuses_a_look_alike(self):
        with mock.patch.dict(os.environ, {"DJANGO_SUPERUSER_PASSWORD": factories.PASSWORD}):
            with self.assertRaisesMessage(CommandError, "That username is already taken."):
                call_command("createsuperuser", interactive=False, username="V\u0131CTIM", email="x@example.com")
            call_command(
                "createsuperuser",
                interactive=False,
                username=fullwidth("root"),
                email="r@example.com",
                stdout=StringIO(),
            )

        self.assertEqual(User.objects.get(username="root").username_key, "root")
