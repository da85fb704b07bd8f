"""Cross-cutting behaviour of the whole API: routes, JSON errors, headers, health, schema, admin, settings."""

import json
import re
from urllib.parse import urlencode

from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.urls import reverse
from rest_framework import status

from hospital.models import AuditEvent, Doctor, Patient, PatientDoctorMapping, User
from hospital.tests import factories
from hospital.tests.base import ApiTestCase, ApiTransactionTestCase
from hospital.tests.test_logging import CapturedLogs

PATIENTS_URL = reverse("patient-list")
HUGE_ID = "99999999999999999999999"
VALID_PATIENT = {"firstname": "Ada", "lastname": "Lovelace", "age": 36, "gender": "F"}


def is_json(response) -> bool:
    return response["Content-Type"].split(";")[0] == "application/json"


class TrailingSlashTests(ApiTestCase):
    """Every route answers with and without its final slash, directly: never a redirect."""

    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        cls.patient = factories.make_patient(cls.owner)
        cls.doctor = factories.make_doctor(cls.owner)
        cls.mapping = factories.make_mapping(cls.patient, cls.doctor)

    def setUp(self):
        super().setUp()
        self.client = factories.client_for(self.owner)

    def test_every_read_route_answers_200_with_and_without_its_final_slash(self):
        routes = [
            (reverse("patient-list"), "/api/patients"),
            (reverse("patient-detail", args=[self.patient.pk]), f"/api/patients/{self.patient.pk}"),
            (reverse("doctor-list"), "/api/doctors"),
            (reverse("doctor-detail", args=[self.doctor.pk]), f"/api/doctors/{self.doctor.pk}"),
            (reverse("mapping-list"), "/api/mappings"),
            (reverse("patient-doctors", kwargs={"patient_id": self.patient.pk}), f"/api/mappings/{self.patient.pk}"),
            (reverse("me"), "/api/auth/me"),
            (reverse("health"), "/api/health"),
            (reverse("schema"), "/api/schema"),
            (reverse("docs"), "/api/docs"),
        ]
        for slashed, unslashed in routes:
            self.assertEqual(slashed, unslashed + "/")
            for url in (slashed, unslashed):
                with self.subTest(url=url):
                    response = self.client.get(url)

                    self.assertEqual(response.status_code, status.HTTP_200_OK, response.content[:200])
                    self.assertNotIn("Location", response)

    def test_writes_work_without_the_final_slash(self):
        created = self.client.post("/api/patients", VALID_PATIENT, format="json")
        self.assertEqual(created.status_code, status.HTTP_201_CREATED, created.content)
        patient_id = created.json()["id"]

        changed = self.client.patch(f"/api/patients/{patient_id}", {"age": 37}, format="json")
        self.assertEqual(changed.status_code, status.HTTP_200_OK, changed.content)
        self.assertEqual(Patient.objects.get(pk=patient_id).age, 37)

        assigned = self.client.post("/api/mappings", {"patient": patient_id, "doctor": self.doctor.pk}, format="json")
        self.assertEqual(assigned.status_code, status.HTTP_201_CREATED, assigned.content)

        unassigned = self.client.delete(f"/api/mappings/{assigned.json()['id']}/delete")
        self.assertEqual(unassigned.status_code, status.HTTP_204_NO_CONTENT)

        deleted = self.client.delete(f"/api/patients/{patient_id}")
        self.assertEqual(deleted.status_code, status.HTTP_204_NO_CONTENT)
        self.assertIsNotNone(Patient.objects.get(pk=patient_id).deleted_at)

    def test_the_auth_flow_works_without_final_slashes(self):
        anonymous = factories.client_for(None)
        credentials = {"username": "no-slash", "password": factories.PASSWORD}

        registered = anonymous.post(
            "/api/auth/register", {**credentials, "email": "no-slash@example.com"}, format="json"
        )
        self.assertEqual(registered.status_code, status.HTTP_201_CREATED, registered.content)

        logged_in = anonymous.post("/api/auth/login", credentials, format="json")
        self.assertEqual(logged_in.status_code, status.HTTP_200_OK, logged_in.content)

        refreshed = anonymous.post("/api/auth/refresh", {"refresh": logged_in.json()["refresh"]}, format="json")
        self.assertEqual(refreshed.status_code, status.HTTP_200_OK, refreshed.content)
        tokens = refreshed.json()

        anonymous.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
        me = anonymous.get("/api/auth/me")
        self.assertEqual(me.status_code, status.HTTP_200_OK)
        self.assertEqual(me.json()["username"], "no-slash")

        logged_out = anonymous.post("/api/auth/logout", {"refresh": tokens["refresh"]}, format="json")
        self.assertEqual(logged_out.status_code, status.HTTP_204_NO_CONTENT, logged_out.content)


class JsonErrorTests(ApiTestCase):
    """Everything under /api/ answers JSON, including errors raised before or outside DRF's views."""

    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        cls.patient = factories.make_patient(cls.owner)

    def setUp(self):
        super().setUp()
        self.client = factories.client_for(self.owner)

    def assert_json_error(self, response, status_code):
        self.assertEqual(response.status_code, status_code, response.content[:300])
        self.assertTrue(is_json(response), response["Content-Type"])
        self.assertIsInstance(response.json(), dict)

    def post_raw(self, body: bytes, content_type="application/json"):
        return self.client.generic("POST", PATIENTS_URL, body, content_type=content_type)

    def test_an_unknown_route_is_a_json_404(self):
        for client in (self.client, factories.client_for(None)):
            for url in ("/api/nope/", "/api/nope", "/api/patients/abc/", "/api/patients/-1/"):
                with self.subTest(url=url, authenticated=client is self.client):
                    response = client.get(url)

                    self.assert_json_error(response, status.HTTP_404_NOT_FOUND)
                    self.assertIn("detail", response.json())

    def test_huge_ids_in_urls_are_404_not_500(self):
        requests = [
            ("get", f"/api/patients/{HUGE_ID}/"),
            ("patch", f"/api/patients/{HUGE_ID}/"),
            ("delete", f"/api/patients/{HUGE_ID}/"),
            ("get", f"/api/doctors/{HUGE_ID}/"),
            ("get", f"/api/mappings/{HUGE_ID}/"),
            ("delete", f"/api/mappings/{HUGE_ID}/delete/"),
        ]
        for method, url in requests:
            with self.subTest(method=method, url=url):
                response = getattr(self.client, method)(url, {"age": 1}, format="json")

                self.assert_json_error(response, status.HTTP_404_NOT_FOUND)
                self.assertIn("detail", response.json())

    def test_a_wrong_method_is_a_json_405(self):
        requests = [
            ("put", PATIENTS_URL),
            ("delete", PATIENTS_URL),
            ("patch", reverse("doctor-list")),
            ("post", reverse("health")),
            ("get", reverse("login")),
        ]
        for method, url in requests:
            with self.subTest(method=method, url=url):
                response = getattr(self.client, method)(url, {}, format="json")

                self.assert_json_error(response, status.HTTP_405_METHOD_NOT_ALLOWED)
                self.assertIn("detail", response.json())
        self.assertEqual(Patient.objects.count(), 1)

    def test_a_body_over_1_mib_is_a_json_413(self):
        body = json.dumps({**VALID_PATIENT, "firstname": "x" * settings.MAX_REQUEST_BODY_BYTES}).encode()
        self.assertGreater(len(body), 1024 * 1024)

        response = self.post_raw(body)

        self.assert_json_error(response, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        self.assertIn("detail", response.json())
        self.assertEqual(Patient.objects.count(), 1)

    def test_a_body_just_under_1_mib_reaches_the_validation(self):
        body = json.dumps({**VALID_PATIENT, "firstname": "x" * (1000 * 1024)}).encode()
        self.assertLess(len(body), 1024 * 1024)

        response = self.post_raw(body)

        self.assert_json_error(response, status.HTTP_400_BAD_REQUEST)
        self.assertIn("firstname", response.json())

    def test_a_malformed_content_length_is_a_json_400(self):
        response = self.client.generic(
            "POST", PATIENTS_URL, json.dumps(VALID_PATIENT), content_type="application/json", CONTENT_LENGTH="12abc"
        )

        self.assert_json_error(response, status.HTTP_400_BAD_REQUEST)
        self.assertEqual(Patient.objects.count(), 1)

    def test_bodies_that_are_not_json_are_a_json_415(self):
        requests = [
            (json.dumps(VALID_PATIENT).encode(), "text/plain"),
            (urlencode(VALID_PATIENT).encode(), "application/x-www-form-urlencoded"),
        ]
        for body, content_type in requests:
            with self.subTest(content_type=content_type):
                response = self.post_raw(body, content_type)

                self.assert_json_error(response, status.HTTP_415_UNSUPPORTED_MEDIA_TYPE)
                self.assertIn("detail", response.json())

        multipart = self.client.post(PATIENTS_URL, VALID_PATIENT, format="multipart")
        self.assert_json_error(multipart, status.HTTP_415_UNSUPPORTED_MEDIA_TYPE)
        self.assertEqual(Patient.objects.count(), 1)

    def test_the_raw_body_template_is_accepted_when_well_formed(self):
        # The control for the test below: the same bytes with an ordinary name create a patient.
        response = self.post_raw(b'{"firstname": "Ada", "lastname": "Lovelace", "age": 36, "gender": "F"}')

        self.assertEqual(response.status_code, status.HTTP_201_CREATED, response.content)

    def test_malformed_json_is_a_json_400_and_creates_nothing(self):
        bodies = {
            "truncated": b'{"firstname": "Ada", "lastname": "Lovelace", "age": 36,',
            "array": json.dumps([VALID_PATIENT]).encode(),
            "string": b'"Ada Lovelace"',
            "number": b"36",
            "empty": b"",
            "NaN": b'{"firstname": "Ada", "lastname": "Lovelace", "age": NaN, "gender": "F"}',
            "Infinity": b'{"firstname": "Ada", "lastname": "Lovelace", "age": Infinity, "gender": "F"}',
            "raw NUL byte": b'{"firstname": "A\x00da", "lastname": "Lovelace", "age": 36, "gender": "F"}',
            "escaped NUL": b'{"firstname": "A\\u0000da", "lastname": "Lovelace", "age": 36, "gender": "F"}',
            "lone surrogate": b'{"firstname": "\\ud800", "lastname": "Lovelace", "age": 36, "gender": "F"}',
            "invalid UTF-8": b'{"firstname": "A\xff\xfeda", "lastname": "Lovelace", "age": 36, "gender": "F"}',
        }
        for name, body in bodies.items():
            with self.subTest(body=name):
                response = self.post_raw(body)

                self.assert_json_error(response, status.HTTP_400_BAD_REQUEST)
        self.assertEqual(Patient.objects.count(), 1)

    def test_malformed_json_in_an_update_changes_nothing(self):
        url = reverse("patient-detail", args=[self.patient.pk])
        for body in (b"[]", b'{"firstname": "\\u0000"}', b'{"firstname": "\\udfff"}', b'{"age": NaN}'):
            with self.subTest(body=body):
                response = self.client.generic("PATCH", url, body, content_type="application/json")

                self.assert_json_error(response, status.HTTP_400_BAD_REQUEST)
        unchanged = Patient.objects.get(pk=self.patient.pk)
        self.assertEqual((unchanged.firstname, unchanged.age), (self.patient.firstname, self.patient.age))


class OddJsonTests(ApiTestCase):
    """Well-formed JSON that broke the API with a 500: lone surrogates where no text validator looks, and bodies
    nested thousands of levels deep. Each is a 400 JSON, on every JSON route, and audited as what it was."""

    DEEP = "[" * 3000 + "]" * 3000

    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        cls.patient = factories.make_patient(cls.owner)
        cls.doctor = factories.make_doctor(cls.owner)

    def setUp(self):
        super().setUp()
        self.client = factories.client_for(self.owner)

    def send_raw(self, method: str, url: str, body: str):
        return self.client.generic(method, url, body.encode(), content_type="application/json")

    def test_a_lone_surrogate_in_a_choice_field_is_a_400_naming_the_field(self):
        doctor_url = reverse("doctor-detail", args=[self.doctor.pk])
        patient_url = reverse("patient-detail", args=[self.patient.pk])
        cases = [
            (
                "POST",
                reverse("doctor-list"),
                '{"firstname": "A", "lastname": "B", "gender": "M", "specialization": "\\ud800"}',
                "specialization",
            ),
            ("PATCH", doctor_url, '{"specialization": "\\udfff"}', "specialization"),
            ("POST", PATIENTS_URL, '{"firstname": "A", "lastname": "B", "age": 3, "gender": "\\ud800"}', "gender"),
            ("PATCH", patient_url, '{"gender": "\\ud800x"}', "gender"),
            ("PATCH", patient_url, '{"\\ud800": "M"}', "non_field_errors"),
        ]
        for method, url, body, field in cases:
            with self.subTest(method=method, url=url, body=body):
                before = AuditEvent.objects.count()
                response = self.send_raw(method, url, body)

                self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST, response.content)
                self.assertTrue(is_json(response))
                self.assertEqual(list(response.json()), [field])
                self.assertEqual(AuditEvent.objects.count(), before + 1)
                self.assertEqual(AuditEvent.objects.order_by("-id")[0].outcome, 400)
        self.assertEqual(Doctor.objects.count(), 1)
        self.assertEqual(Patient.objects.get().gender, self.patient.gender)

    def test_a_deeply_nested_body_is_a_400_on_every_json_route(self):
        routes = [
            ("POST", PATIENTS_URL),
            ("PUT", reverse("patient-detail", args=[self.patient.pk])),
            ("PATCH", reverse("patient-detail", args=[self.patient.pk])),
            ("POST", reverse("doctor-list")),
            ("PATCH", reverse("doctor-detail", args=[self.doctor.pk])),
            ("POST", reverse("mapping-list")),
            ("POST", reverse("login")),
            ("POST", reverse("register")),
            ("POST", reverse("token-refresh")),
            ("POST", reverse("logout")),
        ]
        for method, url in routes:
            for body in (f'{{"firstname": {self.DEEP}}}', self.DEEP, '{"a": ' + "[" * 40 + "]" * 40 + "}"):
                with self.subTest(method=method, url=url, length=len(body)):
                    response = self.send_raw(method, url, body)

                    self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST, response.content)
                    self.assertIn("nested deeper than 32 levels", response.json()["detail"])
        self.assertEqual(AuditEvent.objects.filter(outcome=400).count(), len(routes) * 3)
        self.assertEqual((Patient.objects.count(), Doctor.objects.count()), (1, 1))

    def test_a_moderately_nested_body_still_reaches_the_fields_rules(self):
        response = self.send_raw("POST", PATIENTS_URL, '{"firstname": [[[["Ada"]]]], "lastname": "B", "age": 3}')

        self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST)
        self.assertEqual(set(response.json()), {"firstname", "gender"})


class ResponseHeaderTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()

    def api_responses(self):
        client = factories.client_for(self.owner)
        oversized = json.dumps({"firstname": "x" * settings.MAX_REQUEST_BODY_BYTES})
        return {
            "list": client.get(PATIENTS_URL),
            "created": client.post(PATIENTS_URL, VALID_PATIENT, format="json"),
            "invalid": client.post(PATIENTS_URL, {}, format="json"),
            "anonymous": factories.client_for(None).get(PATIENTS_URL),
            "unknown route": client.get("/api/nope/"),
            "health": client.get(reverse("health")),
            "too large": client.generic("POST", PATIENTS_URL, oversized, content_type="application/json"),
            "bad length": client.generic(
                "POST", PATIENTS_URL, "{}", content_type="application/json", CONTENT_LENGTH="x"
            ),
        }

    def test_api_responses_may_not_be_cached(self):
        for name, response in self.api_responses().items():
            with self.subTest(response=name, status=response.status_code):
                self.assertEqual(response.get("Cache-Control"), "no-store")

    def test_api_responses_carry_the_security_headers(self):
        for name, response in self.api_responses().items():
            with self.subTest(response=name, status=response.status_code):
                self.assertEqual(response.get("X-Content-Type-Options"), "nosniff")
                self.assertEqual(response.get("X-Frame-Options"), "DENY")
                self.assertIn("Referrer-Policy", response)

    def test_admin_pages_carry_the_security_headers_too(self):
        response = self.client.get("/admin/login/")

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(response["X-Content-Type-Options"], "nosniff")
        self.assertEqual(response["X-Frame-Options"], "DENY")
        self.assertIn("Referrer-Policy", response)


class HealthTests(ApiTestCase):
    def test_it_reports_ok_without_authentication(self):
        response = factories.client_for(None).get(reverse("health"))

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(response.json(), {"status": "ok", "database": "ok"})

    def test_it_ignores_a_bad_token(self):
        client = factories.client_for(None)
        client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

        response = client.get(reverse("health"))

        self.assertEqual(response.status_code, status.HTTP_200_OK)


class DatabaseOutageTests(ApiTransactionTestCase):
    """A real outage: the connection is pointed at a closed port, then restored."""

    def setUp(self):
        super().setUp()
        self.owner = factories.make_user()
        self.patient = factories.make_patient(self.owner)
        self.client = factories.client_for(self.owner)

    def take_the_database_down(self):
        saved = {key: connection.settings_dict[key] for key in ("HOST", "PORT")}

        def restore():
            connection.close()
            connection.settings_dict.update(saved)
            connection.close()

        self.addCleanup(restore)
        connection.close()
        # Nothing listens on port 1: connecting is refused at once.
        connection.settings_dict.update(HOST="127.0.0.1", PORT="1")
        return restore

    def assert_unavailable(self, response):
        self.assertEqual(response.status_code, status.HTTP_503_SERVICE_UNAVAILABLE, response.content)
        self.assertTrue(is_json(response), response["Content-Type"])
        self.assertTrue(response["Retry-After"].isdigit())
        self.assertEqual(response.get("Cache-Control"), "no-store")
        self.assertEqual(response["X-Frame-Options"], "DENY")

    def test_an_outage_is_logged_in_json_with_the_request_id(self):
        self.take_the_database_down()

        with CapturedLogs() as logs:
            response = self.client.get(PATIENTS_URL, HTTP_X_REQUEST_ID="outage-1")

        self.assert_unavailable(response)
        self.assertEqual({entry["request_id"] for entry in logs.entries}, {response["X-Request-ID"]})
        self.assertEqual({entry["client_request_id"] for entry in logs.entries}, {"outage-1"})
        self.assertEqual([entry["status"] for entry in logs.requests()], [503])

    def test_requests_answer_503_while_the_database_is_unreachable_and_recover_after(self):
        restore = self.take_the_database_down()

        health = factories.client_for(None).get(reverse("health"))
        self.assert_unavailable(health)
        self.assertEqual(health.json()["status"], "unavailable")

        patients = self.client.get(PATIENTS_URL)
        self.assert_unavailable(patients)
        self.assertIn("detail", patients.json())

        created = self.client.post(PATIENTS_URL, VALID_PATIENT, format="json")
        self.assert_unavailable(created)

        restore()

        self.assertEqual(factories.client_for(None).get(reverse("health")).json(), {"status": "ok", "database": "ok"})
        patients = self.client.get(PATIENTS_URL)
        self.assertEqual(patients.status_code, status.HTTP_200_OK)
        self.assertEqual([patient["id"] for patient in patients.json()], [self.patient.pk])
        self.assertEqual(Patient.objects.count(), 1)


FRONT_END = "https://app.example.org"


@override_settings(CORS_ALLOWED_ORIGINS=[FRONT_END])
class CorsTests(ApiTestCase):
    """A browser front end on another origin can call the API: preflights need no token, headers are exposed."""

    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        cls.patient = factories.make_patient(cls.owner)

    def preflight(self, url, origin=FRONT_END, method="PATCH", headers="authorization, content-type, if-match"):
        return self.client.options(
            url,
            HTTP_ORIGIN=origin,
            HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
            HTTP_ACCESS_CONTROL_REQUEST_HEADERS=headers,
        )

    def test_a_preflight_from_an_allowed_origin_is_answered_without_authentication(self):
        headers = "authorization, content-type, idempotency-key, if-match, if-none-match, x-request-id"
        for url in (PATIENTS_URL, reverse("patient-detail", args=[self.patient.pk]), reverse("login")):
            with self.subTest(url=url):
                response = self.preflight(url, headers=headers)

                self.assertEqual(response.status_code, status.HTTP_200_OK)
                self.assertEqual(response["Access-Control-Allow-Origin"], FRONT_END)
                self.assertIn("PATCH", response["Access-Control-Allow-Methods"])
                allowed = {name.strip() for name in response["Access-Control-Allow-Headers"].split(",")}
                self.assertLessEqual(set(headers.split(", ")), allowed)
                self.assertNotIn("Access-Control-Allow-Credentials", response)

    def test_answers_to_an_allowed_origin_expose_the_headers_clients_need(self):
        client = factories.client_for(self.owner)
        response = client.get(PATIENTS_URL, HTTP_ORIGIN=FRONT_END)
        detail = client.get(reverse("patient-detail", args=[self.patient.pk]), HTTP_ORIGIN=FRONT_END)

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(response["Access-Control-Allow-Origin"], FRONT_END)
        exposed = {name.strip().lower() for name in response["Access-Control-Expose-Headers"].split(",")}
        self.assertLessEqual({"etag", "link", "x-total-count", "x-request-id"}, exposed)
        self.assertEqual(detail["Access-Control-Allow-Origin"], FRONT_END)
        self.assertIn("ETag", detail)

    def test_another_origin_gets_no_cors_headers(self):
        for origin in ("https://evil.example.net", "https://app.example.org.evil.net"):
            with self.subTest(origin=origin):
                preflight = self.preflight(PATIENTS_URL, origin=origin)
                answer = factories.client_for(self.owner).get(PATIENTS_URL, HTTP_ORIGIN=origin)

                self.assertNotIn("Access-Control-Allow-Origin", preflight)
                self.assertNotIn("Access-Control-Allow-Origin", answer)

    @override_settings(CORS_ALLOWED_ORIGINS=[])
    def test_by_default_no_origin_is_allowed(self):
        response = self.preflight(PATIENTS_URL)

        self.assertNotIn("Access-Control-Allow-Origin", response)


class IndexTests(ApiTestCase):
    def test_the_api_root_links_to_the_docs_schema_health_auth_and_every_collection(self):
        for path in ("/api/", "/api"):
            with self.subTest(path=path):
                response = factories.client_for(None).get(path)

                self.assertEqual(response.status_code, status.HTTP_200_OK)
                self.assertTrue(is_json(response))
                body = response.json()
                self.assertEqual(set(body), {"name", "version", "docs", "schema", "health", "auth", "collections"})
                self.assertEqual(body["docs"], "http://testserver/api/docs/")
                self.assertEqual(body["collections"]["patients"], "http://testserver/api/patients/")
                self.assertEqual(set(body["auth"]), {"register", "login", "refresh", "logout", "me"})
                self.assertEqual(set(body["collections"]), {"patients", "doctors", "mappings", "audit"})
        for link in [body["docs"], body["schema"], body["health"], *body["collections"].values()]:
            with self.subTest(link=link):
                answer = factories.client_for(factories.make_user(is_staff=True)).get(link)
                self.assertEqual(answer.status_code, status.HTTP_200_OK)


class SchemaTests(ApiTestCase):
    def get_schema(self) -> dict:
        response = factories.client_for(None).get(reverse("schema"))
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertIn("json", response["Content-Type"])
        return json.loads(response.content)

    def test_it_serves_an_openapi_3_document_with_every_path(self):
        schema = self.get_schema()

        self.assertTrue(schema["openapi"].startswith("3."))
        expected = {
            "/api/auth/register/",
            "/api/auth/login/",
            "/api/auth/refresh/",
            "/api/auth/logout/",
            "/api/auth/me/",
            "/api/patients/",
            "/api/patients/{id}/",
            "/api/doctors/",
            "/api/doctors/{id}/",
            "/api/mappings/",
            "/api/mappings/{patient_id}/",
            "/api/mappings/{id}/delete/",
            "/api/health/",
        }
        self.assertLessEqual(expected, set(schema["paths"]))
        # Each route is documented once, in its slashed form.
        self.assertEqual([path for path in schema["paths"] if not path.endswith("/")], [])

    def test_it_declares_the_bearer_security_scheme(self):
        schema = self.get_schema()

        schemes = schema["components"]["securitySchemes"]
        bearer = [name for name, scheme in schemes.items() if scheme.get("scheme", "").lower() == "bearer"]
        self.assertEqual(len(bearer), 1, schemes)
        self.assertEqual(schemes[bearer[0]]["type"], "http")
        patient_list_security = schema["paths"]["/api/patients/"]["get"]["security"]
        self.assertIn({bearer[0]: []}, patient_list_security)

    def test_it_documents_error_responses(self):
        paths = self.get_schema()["paths"]

        self.assertLessEqual({"200", "401", "404"}, set(paths["/api/patients/{id}/"]["get"]["responses"]))
        self.assertLessEqual({"201", "400", "401"}, set(paths["/api/patients/"]["post"]["responses"]))
        self.assertLessEqual({"201", "400", "401"}, set(paths["/api/mappings/"]["post"]["responses"]))
        self.assertLessEqual({"204", "401", "404"}, set(paths["/api/mappings/{id}/delete/"]["delete"]["responses"]))
        self.assertIn("404", paths["/api/mappings/{patient_id}/"]["get"]["responses"])
        # Paginated lists answer 404 for a page that does not exist.
        for path in ("/api/patients/", "/api/doctors/", "/api/mappings/"):
            self.assertIn("404", paths[path]["get"]["responses"])

    def test_it_documents_that_list_parameters_may_be_sent_empty(self):
        parameters = self.get_schema()["paths"]["/api/patients/"]["get"]["parameters"]
        query = {parameter["name"]: parameter for parameter in parameters if parameter["in"] == "query"}

        self.assertLessEqual({"age_min", "gender", "search", "ordering", "page", "page_size"}, set(query))
        for name, parameter in query.items():
            with self.subTest(name=name):
                self.assertIs(parameter.get("allowEmptyValue"), True)

    def test_ordering_and_search_document_the_fields_each_list_accepts(self):
        paths = self.get_schema()["paths"]
        expected_ordering = {
            "/api/patients/": {"id", "firstname", "lastname", "age", "created_at", "updated_at"},
            "/api/doctors/": {"id", "firstname", "lastname", "specialization", "created_at", "updated_at"},
            "/api/mappings/": {"id", "assigned_at"},
            "/api/audit/": {"id", "at"},
        }
        for path, fields in expected_ordering.items():
            with self.subTest(path=path):
                query = {p["name"]: p for p in paths[path]["get"]["parameters"] if p["in"] == "query"}
                ordering = query["ordering"]
                self.assertEqual(set(ordering["schema"]["items"]["enum"]), fields | {f"-{field}" for field in fields})
                self.assertEqual((ordering["style"], ordering["explode"]), ("form", False))
        for path in ("/api/patients/", "/api/doctors/"):
            with self.subTest(path=path):
                [search] = [p for p in paths[path]["get"]["parameters"] if p["name"] == "search"]
                self.assertIn("firstname, lastname, email", search["description"])
                self.assertEqual(search["schema"]["maxLength"], 100)

    def test_the_docs_page_uses_local_static_files_not_a_cdn(self):
        response = factories.client_for(None).get(reverse("docs"))

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertIn("text/html", response["Content-Type"])
        page = response.content.decode()
        self.assertNotRegex(page, r"cdn\.jsdelivr|unpkg\.com|cdnjs")
        assets = re.findall(r"/static/drf_spectacular_sidecar/[^\"'\s]+", page)
        self.assertTrue(assets, page[:500])
        # The referenced files are really served (collectstatic has run; whitenoise serves them).
        for asset in assets:
            with self.subTest(asset=asset):
                self.assertEqual(self.client.get(asset).status_code, status.HTTP_200_OK)


class AdminTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.admin = User.objects.create_superuser("admin", "admin@example.com", factories.PASSWORD)
        cls.owner = factories.make_user()
        cls.patient = factories.make_patient(cls.owner, lastname="Lovelace")
        cls.doctor = factories.make_doctor(cls.owner, lastname="Hopper")
        cls.mapping = factories.make_mapping(cls.patient, cls.doctor)

    def models(self):
        return [
            ("patient", self.patient, "Lovelace"),
            ("doctor", self.doctor, "Hopper"),
            ("patientdoctormapping", self.mapping, "Lovelace"),
        ]

    def test_staff_can_load_the_changelist_search_add_and_change_pages(self):
        self.client.force_login(self.admin)
        for model, obj, search in self.models():
            urls = [
                reverse(f"admin:hospital_{model}_changelist"),
                reverse(f"admin:hospital_{model}_changelist") + f"?q={search}",
                reverse(f"admin:hospital_{model}_add"),
                reverse(f"admin:hospital_{model}_change", args=[obj.pk]),
            ]
            for url in urls:
                with self.subTest(url=url):
                    response = self.client.get(url)

                    self.assertEqual(response.status_code, status.HTTP_200_OK)

    def test_staff_can_see_each_records_history_in_the_admin(self):
        self.client.force_login(self.admin)
        for model, obj, _search in self.models():
            with self.subTest(model=model):
                response = self.client.get(reverse(f"admin:hospital_{model}_history", args=[obj.pk]))

                self.assertEqual(response.status_code, status.HTTP_200_OK)

    def test_the_admin_cannot_erase_a_patient_or_touch_the_audit_trail(self):
        self.client.force_login(self.admin)
        self.client.get(reverse("patient-list"))  # anything, for an audit row to exist
        factories.client_for(self.owner).get(reverse("patient-list"))
        event = AuditEvent.objects.latest("id")

        erase = self.client.post(reverse("admin:hospital_patient_delete", args=[self.patient.pk]), {"post": "yes"})
        audit_list = self.client.get(reverse("admin:hospital_auditevent_changelist"))
        audit_view = self.client.get(reverse("admin:hospital_auditevent_change", args=[event.pk]))
        audit_change = self.client.post(reverse("admin:hospital_auditevent_change", args=[event.pk]), {"outcome": 1})

        self.assertEqual(erase.status_code, status.HTTP_403_FORBIDDEN)
        self.assertTrue(Patient.objects.filter(pk=self.patient.pk).exists())
        self.assertEqual(audit_list.status_code, status.HTTP_200_OK)
        self.assertEqual(audit_view.status_code, status.HTTP_200_OK)
        self.assertEqual(audit_change.status_code, status.HTTP_403_FORBIDDEN)
        event.refresh_from_db()
        self.assertEqual(event.outcome, 200)

    def test_the_search_finds_the_record(self):
        self.client.force_login(self.admin)

        response = self.client.get(reverse("admin:hospital_patient_changelist"), {"q": "Lovelace"})
        missing = self.client.get(reverse("admin:hospital_patient_changelist"), {"q": "Nobody"})

        self.assertEqual(response.context["cl"].result_count, 1)
        self.assertEqual(missing.context["cl"].result_count, 0)

    def test_anonymous_visitors_are_sent_to_the_login_page(self):
        for model, _obj, _search in self.models():
            url = reverse(f"admin:hospital_{model}_changelist")
            with self.subTest(url=url):
                response = self.client.get(url)

                self.assertEqual(response.status_code, status.HTTP_302_FOUND)
                self.assertTrue(response["Location"].startswith(reverse("admin:login")))

    def test_the_admin_lists_the_app_models(self):
        self.client.force_login(self.admin)

        response = self.client.get(reverse("admin:index"))

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        for model in (Patient, Doctor, PatientDoctorMapping):
            self.assertContains(response, model._meta.verbose_name_plural.capitalize())


@override_settings(ROOT_URLCONF="hospital.tests.urls_with_failure")
class ErrorHandlerTests(ApiTestCase):
    """Errors raised outside DRF's views: JSON under /api/, Django's HTML pages elsewhere, no details."""

    def setUp(self):
        super().setUp()
        self.client.raise_request_exception = False

    def test_a_server_bug_under_api_is_a_json_500_without_details(self):
        with self.assertLogs("django.request", "ERROR"):
            response = self.client.get("/api/failing/")

        self.assertEqual(response.status_code, status.HTTP_500_INTERNAL_SERVER_ERROR)
        self.assertTrue(is_json(response))
        self.assertEqual(response.json(), {"detail": "A server error occurred."})
        self.assertNotContains(response, "Lovelace", status_code=500)

    def test_a_server_bug_outside_api_is_django_s_html_page(self):
        with self.assertLogs("django.request", "ERROR"):
            response = self.client.get("/failing/")

        self.assertEqual(response.status_code, status.HTTP_500_INTERNAL_SERVER_ERROR)
        self.assertTrue(response["Content-Type"].startswith("text/html"))
        self.assertNotContains(response, "Lovelace", status_code=500)

    def test_an_unknown_host_is_a_json_400_under_api_and_html_elsewhere(self):
        with self.assertLogs("django.security.DisallowedHost", "ERROR"):
            api = self.client.get(reverse("health"), headers={"host": "evil.example"})
            admin = self.client.get("/admin/login/", headers={"host": "evil.example"})

        self.assertEqual(api.status_code, status.HTTP_400_BAD_REQUEST)
        self.assertEqual(api.json(), {"detail": "Bad request."})
        self.assertEqual(admin.status_code, status.HTTP_400_BAD_REQUEST)
        self.assertTrue(admin["Content-Type"].startswith("text/html"))

    def test_an_unknown_page_outside_api_is_django_s_html_404(self):
        response = self.client.get("/no-such-page/")

        self.assertEqual(response.status_code, status.HTTP_404_NOT_FOUND)
        self.assertTrue(response["Content-Type"].startswith("text/html"))


class AdminWriteTests(ApiTestCase):
    def test_a_patient_added_in_the_admin_belongs_to_the_staff_member(self):
        admin = User.objects.create_superuser("clerk", "clerk@example.com", factories.PASSWORD)
        self.client.force_login(admin)

        response = self.client.post(
            reverse("admin:hospital_patient_add"),
            {
                "firstname": "Grace",
                "lastname": "Hopper",
                "age": "85",
                "gender": "F",
                "email": "",
                "doctor_mappings-TOTAL_FORMS": "0",
                "doctor_mappings-INITIAL_FORMS": "0",
            },
        )

        self.assertEqual(response.status_code, status.HTTP_302_FOUND)
        self.assertEqual(Patient.objects.get(lastname="Hopper").created_by, admin)
