"""Structured request logs: one JSON line per request, with no patient data, tokens or query strings."""

import json
import logging

from django.test import Client, override_settings
from django.urls import reverse
from rest_framework import status
from rest_framework.test import APIClient

from hospital.models import User
from hospital.request_log import JsonFormatter
from hospital.tests import factories
from hospital.tests.base import ApiTestCase
from hospital.tests.urls_with_failure import FAILURE_MESSAGE

REQUEST_FIELDS = {
    "time",
    "level",
    "logger",
    "message",
    "request_id",
    "method",
    "route",
    "status",
    "duration_ms",
    "user_id",
}


class CapturedLogs(logging.Handler):
    """Every line any logger writes while active, formatted when emitted, exactly as the service's handler does."""

    def __enter__(self):
        self.lines = []
        self.setFormatter(JsonFormatter())
        root = logging.getLogger()
        self.saved = root.handlers, root.level
        root.handlers = [self]
        root.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc):
        root = logging.getLogger()
        root.handlers, level = self.saved
        root.setLevel(level)
        self.entries = [json.loads(line) for line in self.lines]
        return False

    def emit(self, record):
        self.lines.append(self.format(record))

    def requests(self):
        return [entry for entry in self.entries if entry["logger"] == "hospital.request"]


class RequestLogTests(ApiTestCase):
    def test_a_request_is_logged_once_with_its_route_pattern_status_user_and_request_id(self):
        owner = factories.make_user()
        patient = factories.make_patient(owner)
        client = factories.client_for(owner)

        with CapturedLogs() as logs:
            response = client.get(reverse("patient-detail", args=[patient.pk]) + "?x=1")

        [entry] = logs.requests()
        self.assertEqual(set(entry), REQUEST_FIELDS)
        self.assertEqual(entry["method"], "GET")
        self.assertEqual(entry["route"], "api/patients/<int:pk>/")
        self.assertEqual(entry["status"], 200)
        self.assertEqual(entry["user_id"], owner.pk)
        self.assertGreater(entry["duration_ms"], 0)
        self.assertNotIn("\n", logs.lines[-1])
        # The request id in the log is the one the response carries (and the audit trail records).
        self.assertRegex(response["X-Request-ID"], r"^[0-9a-f]{32}$")
        self.assertEqual(entry["request_id"], response["X-Request-ID"])

    def test_a_client_request_id_is_kept_only_as_a_correlation_value_beside_the_servers_own(self):
        client = factories.client_for(None)

        with CapturedLogs() as logs:
            kept = client.get(reverse("health"), HTTP_X_REQUEST_ID="checkout-42.retry:1")
            again = client.get(reverse("health"), HTTP_X_REQUEST_ID="checkout-42.retry:1")
            malformed = client.get(reverse("health"), HTTP_X_REQUEST_ID="has spaces and {braces}")
            too_long = client.get(reverse("health"), HTTP_X_REQUEST_ID="a" * 65)

        # The server's ids: fresh for every request, whatever the client sent.
        server_ids = [response["X-Request-ID"] for response in (kept, again, malformed, too_long)]
        for server_id in server_ids:
            self.assertRegex(server_id, r"^[0-9a-f]{32}$")
        self.assertEqual(len(set(server_ids)), 4)
        entries = logs.requests()
        self.assertEqual([entry["request_id"] for entry in entries], server_ids)
        self.assertEqual(
            [entry.get("client_request_id") for entry in entries],
            ["checkout-42.retry:1", "checkout-42.retry:1", None, None],
        )

    def test_an_anonymous_or_unrouted_request_is_logged_without_user_or_route(self):
        with CapturedLogs() as logs:
            response = APIClient().get("/api/no-such-thing/")

        self.assertEqual(response.status_code, status.HTTP_404_NOT_FOUND)
        [entry] = logs.requests()
        self.assertEqual((entry["route"], entry["user_id"], entry["status"]), (None, None, 404))

    @override_settings(ROOT_URLCONF="hospital.tests.urls_with_failure")
    def test_a_server_error_is_logged_with_the_request_id_and_the_stack_but_not_the_message(self):
        client = factories.client_for(None)
        client.raise_request_exception = False

        with CapturedLogs() as logs:
            response = client.get("/api/failing/", HTTP_X_REQUEST_ID="trace-me")
            logging.getLogger("hospital.test").warning("outside any request")

        self.assertEqual(response.status_code, status.HTTP_500_INTERNAL_SERVER_ERROR)
        [error] = [entry for entry in logs.entries if entry["logger"] == "django.request"]
        self.assertEqual(error["request_id"], response["X-Request-ID"])
        self.assertEqual(error["client_request_id"], "trace-me")
        self.assertEqual(error["exception"], "RuntimeError")
        self.assertTrue(any("urls_with_failure.py" in frame for frame in error["stack"]))
        self.assertNotIn(FAILURE_MESSAGE, "\n".join(logs.lines))
        self.assertNotIn("request_id", logs.entries[-1])


class WalkthroughLogPrivacyTests(ApiTestCase):
    """A whole session, from registration to logout: no name, email, password, token or search term is logged."""

    def test_the_logs_of_a_full_walkthrough_hold_no_personal_data_or_secrets(self):
        client = APIClient()
        secrets = {"password": "Correct-Horse-Battery-Staple-77"}
        personal = {
            "username": "walkthrough.receptionist",
            "account_email": "receptionist.walkthrough@clinic.example",
            "firstname": "Philippa",
            "lastname": "Quarrington",
            "patient_email": "philippa.quarrington@mail.example",
            "doctor": "Zebulon",
        }

        with CapturedLogs() as logs:
            registered = client.post(
                reverse("register"),
                {
                    "username": personal["username"],
                    "email": personal["account_email"],
                    "password": secrets["password"],
                },
                format="json",
            )
            self.assertEqual(registered.status_code, status.HTTP_201_CREATED)
            failed = client.post(
                reverse("login"), {"username": personal["username"], "password": "wrong-Password-1"}, format="json"
            )
            self.assertEqual(failed.status_code, status.HTTP_401_UNAUTHORIZED)
            tokens = client.post(
                reverse("login"), {"username": personal["username"], "password": secrets["password"]}, format="json"
            ).json()
            secrets.update(access=tokens["access"], refresh=tokens["refresh"])
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")

            patient = client.post(
                reverse("patient-list"),
                {
                    "firstname": personal["firstname"],
                    "lastname": personal["lastname"],
                    "age": 61,
                    "gender": "F",
                    "email": personal["patient_email"],
                },
                format="json",
                HTTP_IDEMPOTENCY_KEY="walkthrough-key-1",
            ).json()
            invalid = client.post(reverse("patient-list"), {"firstname": personal["firstname"]}, format="json")
            self.assertEqual(invalid.status_code, status.HTTP_400_BAD_REQUEST)
            doctor = client.post(
                reverse("doctor-list"),
                {"firstname": personal["doctor"], "lastname": "Okafor", "specialization": "CARD", "gender": "M"},
                format="json",
            ).json()
            found = client.get(reverse("patient-list"), {"search": personal["lastname"]})
            self.assertEqual([row["id"] for row in found.json()], [patient["id"]])
            detail = client.get(reverse("patient-detail", args=[patient["id"]]))
            client.patch(
                reverse("patient-detail", args=[patient["id"]]),
                {"email": "new." + personal["patient_email"]},
                format="json",
                HTTP_IF_MATCH=detail["ETag"],
            )
            client.post(reverse("mapping-list"), {"patient": patient["id"], "doctor": doctor["id"]}, format="json")
            client.get(reverse("mapping-list"))
            client.get(reverse("patient-doctors", kwargs={"patient_id": patient["id"]}))
            client.get(reverse("patient-history", args=[patient["id"]]))
            client.get(reverse("patient-access-log", args=[patient["id"]]))
            client.delete(reverse("patient-detail", args=[patient["id"]]))
            refreshed = client.post(reverse("token-refresh"), {"refresh": tokens["refresh"]}, format="json").json()
            secrets["new_refresh"] = refreshed["refresh"]
            logged_out = client.post(reverse("logout"), {"refresh": refreshed["refresh"]}, format="json")
            self.assertEqual(logged_out.status_code, status.HTTP_204_NO_CONTENT)

        self.assertEqual(len(logs.requests()), 17)
        everything = "\n".join(logs.lines)
        for kind, value in {**personal, **secrets}.items():
            with self.subTest(kind=kind):
                self.assertNotIn(value.lower(), everything.lower())
        # The token's signature alone (the part after the last dot) is not logged either.
        self.assertNotIn(secrets["access"].rsplit(".", 1)[1], everything)
        self.assertNotIn("search=", everything)
        routes = {entry["route"] for entry in logs.requests()}
        self.assertIn("api/patients/<int:pk>/", routes)
        self.assertTrue(all("?" not in route for route in routes))

    @override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
    def test_the_logs_of_an_admin_session_and_a_lockout_hold_no_username_address_password_or_patient_data(self):
        password = "Correct-Horse-Battery-Staple-88"
        staff = User.objects.create_superuser("walkthrough.administrator", "administrator@clinic.example", password)
        patient = factories.make_patient(
            staff, firstname="Philippa", lastname="Quarrington", email="philippa.quarrington@mail.example"
        )
        secrets = [password, "wrong-Password-2", "guess-Password-3", "walkthrough.intruder", "127.0.0.1"]
        secrets += [staff.username, staff.email, patient.firstname, patient.lastname, patient.email]
        client = Client()
        login = reverse("admin:login")

        with CapturedLogs() as logs:
            client.post(login, {"username": staff.username, "password": "wrong-Password-2"})
            self.assertEqual(client.post(login, {"username": staff.username, "password": password}).status_code, 302)
            client.get(reverse("admin:hospital_patient_changelist"), {"q": patient.lastname})
            client.get(reverse("admin:hospital_patient_change", args=[patient.pk]))
            client.get(reverse("admin:hospital_patient_history", args=[patient.pk]))
            client.post(reverse("admin:logout"))
            answers = [
                client.post(login, {"username": "walkthrough.intruder", "password": "guess-Password-3"}).status_code
                for _ in range(6)
            ]

        self.assertEqual(answers[-1], status.HTTP_429_TOO_MANY_REQUESTS)
        self.assertEqual(len(logs.requests()), 12)
        everything = "\n".join(logs.lines).lower()
        for secret in secrets:
            with self.subTest(secret=secret):
                self.assertNotIn(secret.lower(), everything)
        self.assertNotIn("q=", everything)
