"""The admin, through its own pages with a logged-in session: login lockout, audit rows, tokens, session
limits, and how it shows deleted patients and their history."""

import re
from datetime import UTC, datetime, timedelta
from unittest import mock

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ImproperlyConfigured
from django.db.models import F
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework import status
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from hospital.models import AuditEvent, Doctor, Patient, PatientDoctorMapping, User
from hospital.tests import factories
from hospital.tests.base import ApiTestCase, ApiTransactionTestCase, clinic_time_zone
from hospital.tests.test_audit import ALLOW_AUDIT_INSERTS, REJECT_AUDIT_INSERTS, execute
from hospital.tests.test_settings import load_settings

LOGIN_URL = reverse("admin:login")
INDEX_URL = reverse("admin:index")
FAST_HASHER = ["django.contrib.auth.hashers.MD5PasswordHasher"]
BEHIND_ONE_PROXY = {"REST_FRAMEWORK": {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}}


def admin_url(model: str, view: str, *args) -> str:
    return reverse(f"admin:hospital_{model}_{view}", args=args)


def form_data(response) -> dict:
    """The POST body a browser would send back from an admin change page, as the page filled it in."""
    data = {}
    forms = [response.context["adminform"].form]
    for inline in response.context.get("inline_admin_formsets", []):
        management = inline.formset.management_form
        data.update({management.add_prefix(name): value for name, value in management.initial.items()})
        forms += inline.formset.forms
    for form in forms:
        for name in form.fields:
            value = form[name].value()
            if value is True:
                data[form.add_prefix(name)] = "on"
            elif value not in (None, False):
                data[form.add_prefix(name)] = value
    return data


class AdminTestCase(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.staff = User.objects.create_superuser("head.nurse", "head.nurse@example.com", factories.PASSWORD)
        cls.owner = factories.make_user()
        cls.patient = factories.make_patient(cls.owner, lastname="Lovelace")
        cls.other = factories.make_patient(cls.owner, lastname="Babbage")
        cls.doctor = factories.make_doctor(cls.owner, lastname="Hopper")
        cls.mapping = factories.make_mapping(cls.patient, cls.doctor)

    def last_event_id(self) -> int:
        return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0

    def events_of(self, send) -> tuple:
        """Call `send()`; return its response and the audit rows it wrote, oldest first."""
        before = self.last_event_id()
        response = send()
        return response, list(AuditEvent.objects.filter(id__gt=before).order_by("id"))

    def one_event(self, send):
        response, events = self.events_of(send)
        self.assertEqual(len(events), 1, [(event.action, event.resource_type) for event in events])
        self.assertEqual(events[0].request_id, response["X-Request-ID"])
        return response, events[0]

    def assert_event(self, event, actor, action, resource_type, resource_ids, patient_ids, outcome):
        self.assertEqual(
            (event.actor, event.action, event.resource_type, event.resource_ids, event.patient_ids, event.outcome),
            (actor, action, resource_type, resource_ids, patient_ids, outcome),
        )

    def admin_login(self, username, password=factories.PASSWORD, **extra):
        return self.client.post(LOGIN_URL, {"username": username, "password": password, "next": INDEX_URL}, **extra)

    def assert_logged_in(self, logged_in=True):
        response = self.client.get(INDEX_URL)
        self.assertEqual(response.status_code, 200 if logged_in else 302)


@override_settings(PASSWORD_HASHERS=FAST_HASHER)
class LoginLockoutTests(AdminTestCase):
    """django-axes: 5 failures lock an account, and separately a client address, out of the admin for 15 minutes."""

    def test_an_account_is_locked_after_five_failures_even_from_many_addresses_and_with_the_right_password(self):
        with override_settings(**BEHIND_ONE_PROXY):
            answers = [
                self.admin_login("head.nurse", f"wrong-{n}", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code
                for n in range(5)
            ]
            right = self.admin_login("head.nurse", HTTP_X_FORWARDED_FOR="203.0.113.99")

        self.assertEqual(answers, [200, 200, 200, 200, 429])
        self.assertEqual(right.status_code, status.HTTP_429_TOO_MANY_REQUESTS)
        self.assertEqual(right["Retry-After"], "900")
        self.assertContains(right, "Too many failed logins", status_code=429)
        self.assertContains(right, "healthcare-backend administration", status_code=429)
        self.assert_logged_in(False)

    def test_the_account_counts_regardless_of_the_usernames_case(self):
        with override_settings(**BEHIND_ONE_PROXY):
            for n, spelling in enumerate(["Head.Nurse", "HEAD.NURSE", "head.nurse", "hEaD.nUrSe", "Head.nurse"]):
                self.admin_login(spelling, "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
            right = self.admin_login("head.nurse", HTTP_X_FORWARDED_FOR="203.0.113.99")

        self.assertEqual(right.status_code, status.HTTP_429_TOO_MANY_REQUESTS)

    def test_a_client_address_is_locked_after_five_failures_across_accounts(self):
        for n in range(5):
            self.admin_login(f"guess{n}", "wrong")

        right = self.admin_login("head.nurse")

        self.assertEqual(right.status_code, status.HTTP_429_TOO_MANY_REQUESTS)
        self.assert_logged_in(False)

    def test_a_spoofed_x_forwarded_for_does_not_escape_the_address_lockout(self):
        for n in range(5):
            self.admin_login(f"guess{n}", "wrong", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")

        right = self.admin_login("head.nurse", HTTP_X_FORWARDED_FOR="198.51.100.200")

        self.assertEqual(right.status_code, status.HTTP_429_TOO_MANY_REQUESTS)
        self.assertEqual(set(AccessAttempt.objects.values_list("ip_address", flat=True)), {"127.0.0.1"})

    def test_behind_a_trusted_proxy_the_forwarded_address_is_the_one_locked_out(self):
        with override_settings(**BEHIND_ONE_PROXY):
            for n in range(5):
                self.admin_login(f"guess{n}", "wrong", HTTP_X_FORWARDED_FOR="203.0.113.7")
            locked = self.admin_login("head.nurse", HTTP_X_FORWARDED_FOR="203.0.113.7")
            elsewhere = self.admin_login("head.nurse", HTTP_X_FORWARDED_FOR="203.0.113.8")

        self.assertEqual(locked.status_code, status.HTTP_429_TOO_MANY_REQUESTS)
        self.assertRedirects(elsewhere, INDEX_URL)

    def test_the_lockout_ends_after_the_cool_off(self):
        for n in range(5):
            self.admin_login("head.nurse", f"wrong-{n}")
        self.assertEqual(self.admin_login("head.nurse").status_code, status.HTTP_429_TOO_MANY_REQUESTS)

        AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=16))
        response = self.admin_login("head.nurse")

        self.assertRedirects(response, INDEX_URL)
        self.assert_logged_in()

    def test_another_administrator_lifts_a_lockout_by_deleting_its_attempts_in_the_admin(self):
        for n in range(5):
            self.admin_login("head.nurse", f"wrong-{n}")
        colleague = Client()
        colleague.force_login(User.objects.create_superuser("ward.manager", "ward.manager@example.com", "x"))

        attempts = colleague.get(reverse("admin:axes_accessattempt_changelist"))
        [attempt] = attempts.context["cl"].result_list
        colleague.post(reverse("admin:axes_accessattempt_delete", args=[attempt.pk]), {"post": "yes"})

        self.assertEqual(attempt.username, "head.nurse")
        self.assertNotIn("wrong-", attempt.post_data)  # attempted passwords are not kept
        self.assertRedirects(self.admin_login("head.nurse"), INDEX_URL)

    def test_fewer_failures_than_the_limit_do_not_lock_and_a_success_clears_them(self):
        for n in range(4):
            self.admin_login("head.nurse", f"wrong-{n}")
        self.assertRedirects(self.admin_login("head.nurse"), INDEX_URL)
        self.client.post(reverse("admin:logout"))

        for n in range(4):
            self.admin_login("head.nurse", f"wrong-{n}")

        self.assertRedirects(self.admin_login("head.nurse"), INDEX_URL)

    def test_api_logins_neither_count_towards_nor_are_refused_by_the_admin_lockout(self):
        api = factories.client_for(None)
        failures = [
            api.post(reverse("login"), {"username": "head.nurse", "password": "wrong"}, format="json").status_code
            for _ in range(6)
        ]
        self.assertEqual(failures, [401] * 6)
        self.assertFalse(AccessAttempt.objects.exists())
        self.assertRedirects(self.admin_login("head.nurse"), INDEX_URL)
        self.client.post(reverse("admin:logout"))

        for n in range(5):
            self.admin_login("head.nurse", f"wrong-{n}")
        self.assertEqual(self.admin_login("head.nurse").status_code, status.HTTP_429_TOO_MANY_REQUESTS)
        api_login = api.post(
            reverse("login"), {"username": "head.nurse", "password": factories.PASSWORD}, format="json"
        )

        self.assertEqual(api_login.status_code, status.HTTP_200_OK)
        self.assertIn("access", api_login.json())

    def test_the_api_login_keeps_its_own_throttle(self):
        api = factories.client_for(None)
        answers = [
            api.post(reverse("login"), {"username": "head.nurse", "password": "wrong"}, format="json").status_code
            for _ in range(21)
        ]

        self.assertEqual(answers[-1], status.HTTP_429_TOO_MANY_REQUESTS)
        self.assertFalse(AccessAttempt.objects.exists())


@override_settings(PASSWORD_HASHERS=FAST_HASHER)
class LoginAuditTests(AdminTestCase):
    """Admin logins and logouts write `login` / `logout` rows, like the API's."""

    def test_a_success_names_the_account_and_a_failure_nobody(self):
        _response, failed = self.one_event(lambda: self.admin_login("head.nurse", "wrong"))
        _response, unknown = self.one_event(lambda: self.admin_login("nobody.here", "wrong"))
        _response, succeeded = self.one_event(lambda: self.admin_login("head.nurse"))

        self.assert_event(failed, None, "login", "user", [], [], 401)
        self.assert_event(unknown, None, "login", "user", [], [], 401)
        self.assert_event(succeeded, self.staff.pk, "login", "user", [self.staff.pk], [], 200)
        self.assertEqual(succeeded.client_ip, "127.0.0.1")

    def test_a_right_password_of_an_account_without_staff_access_is_a_failure(self):
        response, event = self.one_event(lambda: self.admin_login(self.owner.username))

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assert_event(event, None, "login", "user", [], [], 401)

    def test_a_locked_out_attempt_is_recorded_as_429(self):
        events = [self.one_event(lambda n=n: self.admin_login("head.nurse", f"wrong-{n}"))[1] for n in range(5)]
        _response, locked = self.one_event(lambda: self.admin_login("head.nurse"))

        self.assertEqual([event.outcome for event in events], [401, 401, 401, 401, 429])
        self.assert_event(locked, None, "login", "user", [], [], 429)

    def test_a_logout_names_the_account(self):
        self.admin_login("head.nurse")

        response, event = self.one_event(lambda: self.client.post(reverse("admin:logout")))

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assert_event(event, self.staff.pk, "logout", "user", [self.staff.pk], [], 204)
        self.assert_logged_in(False)

    def test_the_login_page_itself_is_not_recorded(self):
        response, events = self.events_of(lambda: self.client.get(LOGIN_URL))

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(events, [])


class RecordAuditTests(AdminTestCase):
    """What staff see and change in the admin writes the API's audit rows."""

    def setUp(self):
        super().setUp()
        self.client.force_login(self.staff)
        self.staff_id = self.staff.pk

    def test_the_patient_changelist_records_the_ids_the_page_shows(self):
        deleted = factories.make_patient(self.owner, deleted_at=timezone.now(), deleted_by=self.owner)

        response, event = self.one_event(lambda: self.client.get(admin_url("patient", "changelist")))
        _response, search = self.one_event(lambda: self.client.get(admin_url("patient", "changelist"), {"q": "Love"}))
        _response, all_patients = self.one_event(
            lambda: self.client.get(admin_url("patient", "changelist"), {"status": "all"})
        )

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        live = [self.patient.pk, self.other.pk]
        self.assert_event(event, self.staff_id, "list", "patient", live, live, 200)
        self.assert_event(search, self.staff_id, "list", "patient", [self.patient.pk], [self.patient.pk], 200)
        self.assertEqual(all_patients.resource_ids, [*live, deleted.pk])

    def test_opening_a_patients_change_page_is_a_read_of_that_patient(self):
        pk = self.patient.pk

        response, event = self.one_event(lambda: self.client.get(admin_url("patient", "change", pk)))

        self.assertContains(response, "Lovelace")
        self.assert_event(event, self.staff_id, "read", "patient", [pk], [pk], 200)

    def test_a_missing_patient_is_a_recorded_404(self):
        response, event = self.one_event(lambda: self.client.get(admin_url("patient", "change", 987654)))

        self.assertEqual(response.status_code, status.HTTP_302_FOUND)
        self.assert_event(event, self.staff_id, "read", "patient", [987654], [987654], 404)

    def test_saving_a_patient_is_an_update_and_a_rejected_save_a_400(self):
        pk = self.patient.pk
        data = form_data(self.client.get(admin_url("patient", "change", pk)))

        response, event = self.one_event(
            lambda: self.client.post(admin_url("patient", "change", pk), {**data, "age": "41"})
        )
        _response, rejected = self.one_event(
            lambda: self.client.post(admin_url("patient", "change", pk), {**data, "age": "200"})
        )

        self.assertEqual(response.status_code, status.HTTP_302_FOUND)
        self.patient.refresh_from_db()
        self.assertEqual(self.patient.age, 41)
        self.assert_event(event, self.staff_id, "update", "patient", [pk], [pk], 200)
        self.assert_event(rejected, self.staff_id, "update", "patient", [pk], [pk], 400)

    def test_adding_a_patient_is_a_create_of_the_new_id(self):
        body = {
            "firstname": "Grace",
            "lastname": "Hopper",
            "age": "85",
            "gender": "F",
            "email": "",
            "doctor_mappings-TOTAL_FORMS": "0",
            "doctor_mappings-INITIAL_FORMS": "0",
        }

        response, event = self.one_event(lambda: self.client.post(admin_url("patient", "add"), body))

        self.assertEqual(response.status_code, status.HTTP_302_FOUND)
        created = Patient.objects.get(lastname="Hopper")
        self.assertEqual(created.created_by, self.staff)
        self.assert_event(event, self.staff_id, "create", "patient", [created.pk], [created.pk], 201)

    def test_the_empty_add_form_shows_no_record_and_writes_no_row(self):
        response, events = self.events_of(lambda: self.client.get(admin_url("patient", "add")))

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(events, [])

    def test_a_patients_history_page_is_a_history_read(self):
        pk = self.patient.pk

        response, event = self.one_event(lambda: self.client.get(admin_url("patient", "history", pk)))
        _response, version = self.one_event(
            lambda: self.client.get(
                admin_url("patient", "simple_history", pk, self.patient.history.earliest().history_id)
            )
        )

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assert_event(event, self.staff_id, "history", "patient", [pk], [pk], 200)
        self.assert_event(version, self.staff_id, "history", "patient", [pk], [pk], 200)

    def test_deleting_a_doctor_names_every_patient_whose_assignment_went(self):
        factories.make_mapping(self.other, self.doctor)
        url = admin_url("doctor", "delete", self.doctor.pk)
        patients = sorted([self.patient.pk, self.other.pk])

        page, confirm = self.one_event(lambda: self.client.get(url))
        response, event = self.one_event(lambda: self.client.post(url, {"post": "yes"}))

        self.assertEqual(page.status_code, status.HTTP_200_OK)
        self.assert_event(confirm, self.staff_id, "read", "doctor", [self.doctor.pk], patients, 200)
        self.assertEqual(response.status_code, status.HTTP_302_FOUND)
        self.assertFalse(Doctor.objects.filter(pk=self.doctor.pk).exists())
        self.assert_event(event, self.staff_id, "delete", "doctor", [self.doctor.pk], patients, 204)

    def test_deleting_a_mapping_names_its_patient(self):
        url = admin_url("patientdoctormapping", "delete", self.mapping.pk)

        _response, event = self.one_event(lambda: self.client.post(url, {"post": "yes"}))

        self.assertFalse(PatientDoctorMapping.objects.exists())
        self.assert_event(event, self.staff_id, "delete", "mapping", [self.mapping.pk], [self.patient.pk], 204)

    def test_delete_selected_records_one_deletion_of_every_selected_row(self):
        second = factories.make_mapping(self.other, self.doctor)
        selected = [self.mapping.pk, second.pk]
        body = {"action": "delete_selected", ACTION_CHECKBOX_NAME: selected}
        url = admin_url("patientdoctormapping", "changelist")
        patients = sorted([self.patient.pk, self.other.pk])

        _page, confirm = self.one_event(lambda: self.client.post(url, body))
        response, event = self.one_event(lambda: self.client.post(url, {**body, "post": "yes"}))

        self.assert_event(confirm, self.staff_id, "read", "mapping", selected, patients, 200)
        self.assertEqual(response.status_code, status.HTTP_302_FOUND)
        self.assertFalse(PatientDoctorMapping.objects.exists())
        self.assert_event(event, self.staff_id, "delete", "mapping", selected, patients, 204)

    def test_bulk_deleting_doctors_names_their_patients(self):
        lonely = factories.make_doctor(self.owner)
        body = {"action": "delete_selected", ACTION_CHECKBOX_NAME: [self.doctor.pk, lonely.pk], "post": "yes"}

        _response, event = self.one_event(lambda: self.client.post(admin_url("doctor", "changelist"), body))

        self.assert_event(event, self.staff_id, "delete", "doctor", [self.doctor.pk, lonely.pk], [self.patient.pk], 204)

    def test_doctor_and_mapping_pages_and_saves_are_recorded(self):
        doctor, mapping = self.doctor.pk, self.mapping.pk
        patient = [self.patient.pk]

        _r, doctor_list = self.one_event(lambda: self.client.get(admin_url("doctor", "changelist")))
        page, doctor_read = self.one_event(lambda: self.client.get(admin_url("doctor", "change", doctor)))
        _r, doctor_save = self.one_event(
            lambda: self.client.post(admin_url("doctor", "change", doctor), {**form_data(page), "lastname": "Grace"})
        )
        _r, mapping_list = self.one_event(lambda: self.client.get(admin_url("patientdoctormapping", "changelist")))
        page, mapping_read = self.one_event(
            lambda: self.client.get(admin_url("patientdoctormapping", "change", mapping))
        )
        _r, mapping_save = self.one_event(
            lambda: self.client.post(admin_url("patientdoctormapping", "change", mapping), form_data(page))
        )
        _r, mapping_history = self.one_event(
            lambda: self.client.get(admin_url("patientdoctormapping", "history", mapping))
        )

        self.assert_event(doctor_list, self.staff_id, "list", "doctor", [doctor], [], 200)
        self.assert_event(doctor_read, self.staff_id, "read", "doctor", [doctor], [], 200)
        self.assert_event(doctor_save, self.staff_id, "update", "doctor", [doctor], [], 200)
        self.assertEqual(Doctor.objects.get(pk=doctor).lastname, "Grace")
        self.assert_event(mapping_list, self.staff_id, "list", "mapping", [mapping], patient, 200)
        self.assert_event(mapping_read, self.staff_id, "read", "mapping", [mapping], patient, 200)
        self.assert_event(mapping_save, self.staff_id, "update", "mapping", [mapping], patient, 200)
        self.assert_event(mapping_history, self.staff_id, "history", "mapping", [mapping], patient, 200)

    def test_moving_a_mapping_to_another_patient_names_both_patients(self):
        url = admin_url("patientdoctormapping", "change", self.mapping.pk)
        data = form_data(self.client.get(url))

        _response, event = self.one_event(lambda: self.client.post(url, {**data, "patient": self.other.pk}))

        self.assertEqual(event.patient_ids, sorted([self.patient.pk, self.other.pk]))

    def test_the_patient_search_of_a_mappings_form_is_a_recorded_list(self):
        url = reverse("admin:autocomplete")
        params = {"app_label": "hospital", "model_name": "patientdoctormapping", "field_name": "patient"}

        response, event = self.one_event(lambda: self.client.get(url, {**params, "term": "Lovel"}))

        self.assertEqual([row["text"] for row in response.json()["results"]], [str(self.patient)])
        self.assert_event(event, self.staff_id, "list", "patient", [self.patient.pk], [self.patient.pk], 200)

    def test_reading_the_audit_trail_in_the_admin_is_recorded(self):
        self.client.get(admin_url("patient", "changelist"))
        shown = self.last_event_id()

        _response, listed = self.one_event(lambda: self.client.get(admin_url("auditevent", "changelist")))
        _response, read = self.one_event(lambda: self.client.get(admin_url("auditevent", "change", shown)))

        self.assertEqual(listed.resource_ids[0], shown)
        self.assert_event(listed, self.staff_id, "list", "audit", listed.resource_ids, [], 200)
        self.assert_event(read, self.staff_id, "read", "audit", [shown], [], 200)

    def test_account_pages_and_password_changes_are_recorded(self):
        pk = self.owner.pk
        _response, read = self.one_event(lambda: self.client.get(reverse("admin:hospital_user_change", args=[pk])))
        password_url = reverse("admin:auth_user_password_change", args=[pk])
        new_password = "another-long-passphrase-42"
        _response, changed = self.one_event(
            lambda: self.client.post(password_url, {"password1": new_password, "password2": new_password})
        )

        self.assert_event(read, self.staff_id, "read", "user", [pk], [], 200)
        self.assert_event(changed, self.staff_id, "update", "user", [pk], [], 200)

    def test_a_refused_page_or_save_is_recorded_as_403(self):
        clerk = factories.make_user(is_staff=True)  # staff, without any model permission
        self.client.force_login(clerk)
        url = admin_url("patient", "change", self.patient.pk)

        response, event = self.one_event(lambda: self.client.get(url))
        save, refused = self.one_event(lambda: self.client.post(url, {"firstname": "Changed"}))
        _response, listing = self.one_event(lambda: self.client.get(admin_url("patient", "changelist")))

        self.assertEqual((response.status_code, save.status_code), (403, 403))
        self.assert_event(event, clerk.pk, "read", "patient", [self.patient.pk], [], 403)
        self.assert_event(refused, clerk.pk, "update", "patient", [self.patient.pk], [], 403)
        self.assert_event(listing, clerk.pk, "list", "patient", [], [], 403)

    def test_a_changelist_refusing_its_parameters_is_a_recorded_400(self):
        response, event = self.one_event(lambda: self.client.get(admin_url("patient", "changelist"), {"age__gt": "x"}))

        self.assertEqual(response.status_code, status.HTTP_302_FOUND)
        self.assert_event(event, self.staff_id, "list", "patient", [], [], 400)

    def test_reverting_a_patient_to_an_earlier_version_is_an_update(self):
        pk = self.patient.pk
        first = self.patient.history.earliest()
        self.client.post(
            admin_url("patient", "change", pk),
            {**form_data(self.client.get(admin_url("patient", "change", pk))), "age": "77"},
        )
        url = admin_url("patient", "simple_history", pk, first.history_id)
        version = form_data(self.client.get(url))

        response, event = self.one_event(lambda: self.client.post(url, version))

        self.assertEqual(response.status_code, status.HTTP_302_FOUND)
        self.patient.refresh_from_db()
        self.assertEqual(self.patient.age, first.age)
        self.assert_event(event, self.staff_id, "update", "patient", [pk], [pk], 200)

    def test_a_deletion_that_the_data_prevents_is_a_recorded_409(self):
        url = reverse("admin:hospital_user_delete", args=[self.owner.pk])  # the owner's patients are protected

        response, event = self.one_event(lambda: self.client.post(url, {"post": "yes"}))

        self.assertContains(response, "Cannot delete")
        self.assertTrue(User.objects.filter(pk=self.owner.pk).exists())
        self.assert_event(event, self.staff_id, "delete", "user", [self.owner.pk], [], 409)

    def test_the_patients_access_log_in_the_api_shows_what_staff_did_in_the_admin(self):
        pk = self.patient.pk
        data = form_data(self.client.get(admin_url("patient", "change", pk)))
        self.client.post(admin_url("patient", "change", pk), {**data, "age": "52"})
        self.client.get(admin_url("patient", "history", pk))
        self.client.post(admin_url("doctor", "delete", self.doctor.pk), {"post": "yes"})

        response = factories.client_for(self.owner).get(reverse("patient-access-log", args=[pk]))

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        entries = [(row["actor"], row["action"], row["resource_type"]) for row in response.json()]
        self.assertEqual(
            entries[:4],
            [
                (self.staff_id, "delete", "doctor"),
                (self.staff_id, "history", "patient"),
                (self.staff_id, "update", "patient"),
                (self.staff_id, "read", "patient"),
            ],
        )


class RecordAuditAtomicityTests(ApiTransactionTestCase):
    """As in production (no test transaction around the request): an admin write commits with its row or not
    at all, and a page whose row cannot be written shows nothing."""

    def setUp(self):
        super().setUp()
        self.staff = User.objects.create_superuser("night.nurse", "night.nurse@example.com", factories.PASSWORD)
        owner = factories.make_user()
        self.patient = factories.make_patient(owner, firstname="Unchanged")
        self.doctor = factories.make_doctor(owner)
        factories.make_mapping(self.patient, self.doctor)
        self.client.force_login(self.staff)
        self.client.raise_request_exception = False
        self.data = form_data(self.client.get(admin_url("patient", "change", self.patient.pk)))
        self.addCleanup(execute, ALLOW_AUDIT_INSERTS)
        execute(REJECT_AUDIT_INSERTS)
        self.enterContext(self.assertLogs("django.request", "ERROR"))

    def test_a_save_or_deletion_whose_audit_row_fails_changes_nothing(self):
        save = self.client.post(admin_url("patient", "change", self.patient.pk), {**self.data, "firstname": "Changed"})
        delete = self.client.post(admin_url("doctor", "delete", self.doctor.pk), {"post": "yes"})

        self.assertEqual((save.status_code, delete.status_code), (500, 500))
        self.patient.refresh_from_db()
        self.assertEqual(self.patient.firstname, "Unchanged")
        self.assertTrue(PatientDoctorMapping.objects.filter(doctor=self.doctor).exists())

    def test_a_page_whose_audit_row_fails_shows_no_patient_data(self):
        change = self.client.get(admin_url("patient", "change", self.patient.pk))
        changelist = self.client.get(admin_url("patient", "changelist"))

        self.assertEqual((change.status_code, changelist.status_code), (500, 500))
        self.assertNotIn(b"Unchanged", change.content + changelist.content)


class DeletedPatientTests(AdminTestCase):
    """Soft-deleted patients are marked, hidden from the changelist by default, and their history says so."""

    def setUp(self):
        super().setUp()
        self.client.force_login(self.staff)

    def soft_delete_and_restore(self, patient):
        api = factories.client_for(self.staff)
        api.delete(reverse("patient-detail", args=[patient.pk]))
        api.post(reverse("patient-restore", args=[patient.pk]))
        api.delete(reverse("patient-detail", args=[patient.pk]))

    def test_the_changelist_shows_live_patients_unless_asked_for_deleted_ones(self):
        factories.client_for(self.staff).delete(reverse("patient-detail", args=[self.other.pk]))
        url = admin_url("patient", "changelist")

        live = self.client.get(url)
        deleted = self.client.get(url, {"status": "deleted"})
        everyone = self.client.get(url, {"status": "all"})

        def shown(response):
            return [patient.pk for patient in response.context["cl"].result_list]

        self.assertEqual(shown(live), [self.patient.pk])
        self.assertEqual(shown(deleted), [self.other.pk])
        self.assertEqual(shown(everyone), [self.patient.pk, self.other.pk])
        self.assertContains(live, "?status=deleted")
        self.assertNotContains(live, "deleted-record")
        self.assertContains(everyone, "deleted-record", count=1)

    def test_a_deleted_patients_change_page_says_it_is_deleted(self):
        factories.client_for(self.staff).delete(reverse("patient-detail", args=[self.other.pk]))

        deleted = self.client.get(admin_url("patient", "change", self.other.pk))
        live = self.client.get(admin_url("patient", "change", self.patient.pk))

        self.assertContains(deleted, "This patient is deleted")
        self.assertContains(deleted, "deleted-record")
        self.assertNotContains(live, "This patient is deleted")

    def test_history_names_soft_deletes_and_restores_and_who_made_them(self):
        self.soft_delete_and_restore(self.other)

        response = self.client.get(admin_url("patient", "history", self.other.pk))

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        page = response.content.decode()
        changes = re.findall(r'<td class="history-change">([^<]*)</td>', page)
        self.assertEqual(changes, ["Deleted", "Restored", "Deleted", "Created"])
        users = [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r'<td class="history-user">(.*?)</td>', page, re.S)
        ]
        self.assertEqual(users[:3], ["head.nurse"] * 3)
        self.assertNotIn("pk=None", page)

    def test_the_history_of_a_long_record_labels_the_oldest_version_on_a_page_against_the_one_before(self):
        self.soft_delete_and_restore(self.other)

        with mock.patch("simple_history.admin.SimpleHistoryAdmin.history_list_per_page", 2):
            second_page = self.client.get(admin_url("patient", "history", self.other.pk), {"p": 2})

        changes = re.findall(r'<td class="history-change">([^<]*)</td>', second_page.content.decode())
        self.assertEqual(changes, ["Deleted", "Created"])


class SiteTests(AdminTestCase):
    def setUp(self):
        super().setUp()
        self.client.force_login(self.staff)

    def test_the_admin_is_named_for_the_product(self):
        response = self.client.get(INDEX_URL)

        self.assertContains(response, "healthcare-backend administration")
        self.assertNotContains(response, "Django administration")
        self.assertContains(response, "<title>Records and accounts | healthcare-backend admin</title>", html=True)

    def test_view_site_opens_the_api_docs(self):
        response = self.client.get(INDEX_URL)

        self.assertContains(response, '<a href="/api/docs/">View site</a>', html=True)
        self.assertEqual(self.client.get("/api/docs/").status_code, status.HTTP_200_OK)


@override_settings(PASSWORD_HASHERS=FAST_HASHER)
class TokenAdminTests(AdminTestCase):
    """Refresh tokens are never shown, and a revocation cannot be undone from the admin."""

    def setUp(self):
        super().setUp()
        api = factories.client_for(None)
        credentials = {"username": self.owner.username, "password": factories.PASSWORD}
        self.refresh = api.post(reverse("login"), credentials, format="json").json()["refresh"]
        self.live_refresh = api.post(reverse("token-refresh"), {"refresh": self.refresh}, format="json").json()[
            "refresh"
        ]
        self.client.force_login(self.staff)

    def test_no_page_shows_a_refresh_token(self):
        outstanding = OutstandingToken.objects.order_by("id")
        revoked = BlacklistedToken.objects.get()
        pages = [
            reverse("admin:token_blacklist_outstandingtoken_changelist"),
            reverse("admin:token_blacklist_outstandingtoken_changelist") + "?q=" + self.live_refresh[-20:],
            *[reverse("admin:token_blacklist_outstandingtoken_change", args=[token.pk]) for token in outstanding],
            reverse("admin:token_blacklist_blacklistedtoken_changelist"),
            reverse("admin:token_blacklist_blacklistedtoken_change", args=[revoked.pk]),
        ]
        for url in pages:
            with self.subTest(url=url):
                response = self.client.get(url)

                self.assertEqual(response.status_code, status.HTTP_200_OK)
                for token in (self.refresh, self.live_refresh):
                    self.assertFalse(token.rsplit(".", 1)[1] in response.content.decode(), "a token is shown")
        search = self.client.get(pages[1])
        self.assertEqual(search.context["cl"].result_count, 0)

    def test_a_revocation_cannot_be_deleted_so_the_old_token_stays_refused(self):
        revoked = BlacklistedToken.objects.get()
        delete = self.client.post(
            reverse("admin:token_blacklist_blacklistedtoken_delete", args=[revoked.pk]), {"post": "yes"}
        )
        bulk = self.client.post(
            reverse("admin:token_blacklist_blacklistedtoken_changelist"),
            {"action": "delete_selected", ACTION_CHECKBOX_NAME: [revoked.pk], "post": "yes"},
        )
        change = self.client.post(reverse("admin:token_blacklist_blacklistedtoken_change", args=[revoked.pk]), {})

        self.assertEqual(delete.status_code, status.HTTP_403_FORBIDDEN)
        self.assertEqual(change.status_code, status.HTTP_403_FORBIDDEN)
        self.assertIn(bulk.status_code, {status.HTTP_200_OK, status.HTTP_302_FOUND})
        self.assertTrue(BlacklistedToken.objects.filter(pk=revoked.pk).exists())
        reuse = factories.client_for(None).post(reverse("token-refresh"), {"refresh": self.refresh}, format="json")
        self.assertEqual(reuse.status_code, status.HTTP_401_UNAUTHORIZED)

    def test_issued_tokens_cannot_be_added_changed_or_deleted(self):
        token = OutstandingToken.objects.first()

        add = self.client.get(reverse("admin:token_blacklist_outstandingtoken_add"))
        change = self.client.post(reverse("admin:token_blacklist_outstandingtoken_change", args=[token.pk]), {})
        delete = self.client.post(
            reverse("admin:token_blacklist_outstandingtoken_delete", args=[token.pk]), {"post": "yes"}
        )

        self.assertEqual((add.status_code, change.status_code, delete.status_code), (403, 403, 403))
        self.assertTrue(OutstandingToken.objects.filter(pk=token.pk).exists())


class SessionLimitTests(AdminTestCase):
    """Admin sessions end after 30 minutes without an admin request and 12 hours after login (HIPAA
    164.312(a)(2)(iii) automatic logoff). The clock is Django's (`timezone.now`), moved by the test."""

    def setUp(self):
        super().setUp()
        self.client.force_login(self.staff)
        self.start = timezone.now()

    def index_at(self, offset: timedelta) -> int:
        with mock.patch("django.utils.timezone.now", return_value=self.start + offset):
            return self.client.get(INDEX_URL).status_code

    def test_a_session_ends_after_thirty_idle_minutes_and_activity_keeps_it_alive(self):
        answers = [self.index_at(timedelta(minutes=minutes)) for minutes in (0, 29, 58, 87)]
        idle = self.index_at(timedelta(minutes=87 + 31))
        again = self.index_at(timedelta(minutes=87 + 32))

        self.assertEqual(answers, [200, 200, 200, 200])
        self.assertEqual((idle, again), (302, 302))

    def test_a_session_ends_twelve_hours_after_login_however_active(self):
        steps = range(0, 12 * 60 + 1, 20)  # a request every 20 minutes, up to 12 hours
        answers = {self.index_at(timedelta(minutes=minutes)) for minutes in steps}
        over = self.index_at(timedelta(hours=12, minutes=10))

        self.assertEqual(answers, {200})
        self.assertEqual(over, 302)
        self.assertEqual(self.index_at(timedelta(hours=12, minutes=11)), 302)

    def test_logging_in_again_restarts_the_twelve_hours(self):
        self.client.logout()
        with mock.patch("django.utils.timezone.now", return_value=self.start):
            self.assertRedirects(self.admin_login("head.nurse"), INDEX_URL)
        for minutes in range(20, 11 * 60 + 50, 20):
            self.index_at(timedelta(minutes=minutes))
        with mock.patch("django.utils.timezone.now", return_value=self.start + timedelta(hours=11, minutes=55)):
            self.assertRedirects(self.admin_login("head.nurse"), INDEX_URL)

        self.assertEqual(self.index_at(timedelta(hours=12, minutes=10)), 200)

    def test_the_api_does_not_keep_an_admin_session_alive(self):
        self.index_at(timedelta(0))
        api = factories.client_for(self.staff)
        api.cookies = self.client.cookies
        with mock.patch("django.utils.timezone.now", return_value=self.start + timedelta(minutes=20)):
            self.assertEqual(api.get(reverse("patient-list")).status_code, status.HTTP_200_OK)

        self.assertEqual(self.index_at(timedelta(minutes=31)), 302)

    def test_the_session_cookie_ends_with_the_browser(self):
        response = self.client.get(INDEX_URL)

        cookie = response.cookies[settings.SESSION_COOKIE_NAME]
        self.assertEqual(cookie["max-age"], "")
        self.assertEqual(cookie["expires"], "")
        self.assertTrue(cookie["httponly"])


class SettingsTests(ApiTestCase):
    STRONG = {"SECRET_KEY": "k" * 20 + "abcdefghij" * 4, "DATABASE_URL": "postgres://postgres@127.0.0.1/unused"}

    def test_the_lockout_and_session_limits_come_from_the_environment(self):
        defaults = load_settings(**self.STRONG)
        custom = load_settings(
            **self.STRONG,
            ADMIN_LOGIN_FAILURE_LIMIT="3",
            ADMIN_LOGIN_COOLOFF_MINUTES="60",
            ADMIN_SESSION_IDLE_MINUTES="10",
            ADMIN_SESSION_MAX_HOURS="8",
        )

        self.assertEqual(
            (defaults["AXES_FAILURE_LIMIT"], defaults["AXES_COOLOFF_TIME"], defaults["SESSION_COOKIE_AGE"]),
            (5, timedelta(minutes=15), 30 * 60),
        )
        self.assertEqual(defaults["ADMIN_SESSION_MAX_AGE"], timedelta(hours=12))
        self.assertEqual(
            (custom["AXES_FAILURE_LIMIT"], custom["AXES_COOLOFF_TIME"], custom["SESSION_COOKIE_AGE"]),
            (3, timedelta(minutes=60), 10 * 60),
        )
        self.assertEqual(custom["ADMIN_SESSION_MAX_AGE"], timedelta(hours=8))
        self.assertTrue(load_settings(**self.STRONG, HTTPS="true")["SESSION_COOKIE_SECURE"])

    def test_limits_beyond_hipaa_s_or_malformed_ones_stop_the_start_up(self):
        for name, value in [
            ("ADMIN_SESSION_IDLE_MINUTES", "31"),
            ("ADMIN_SESSION_MAX_HOURS", "13"),
            ("ADMIN_LOGIN_FAILURE_LIMIT", "0"),
            ("ADMIN_LOGIN_COOLOFF_MINUTES", "soon"),
        ]:
            with self.subTest(name=name), self.assertRaisesMessage(ImproperlyConfigured, name):
                load_settings(**self.STRONG, **{name: value})


class AppointmentAdminTests(AdminTestCase):
    """Appointments in the admin: read-only, audited, filtered by the clinic's own days."""

    def setUp(self):
        super().setUp()
        self.client.force_login(self.staff)
        self.enterContext(clinic_time_zone("Europe/Berlin"))
        # 23:30 in Berlin on June 1st (21:30Z), and 00:30 on June 2nd (22:30Z).
        self.late = factories.make_appointment(self.patient, self.doctor, datetime(2030, 6, 1, 21, 30, tzinfo=UTC))
        self.early = factories.make_appointment(self.other, self.doctor, datetime(2030, 6, 1, 22, 30, tzinfo=UTC))

    def listed_ids(self, response) -> list[int]:
        return [appointment.pk for appointment in response.context["cl"].result_list]

    def test_the_day_filter_takes_days_in_the_clinics_zone(self):
        june_1 = self.client.get(admin_url("appointment", "changelist"), {"day": "2030-06-01"})
        june_2 = self.client.get(admin_url("appointment", "changelist"), {"day": "2030-06-02"})

        self.assertEqual((self.listed_ids(june_1), self.listed_ids(june_2)), ([self.late.pk], [self.early.pk]))
        by_status = self.client.get(admin_url("appointment", "changelist"), {"status__exact": "cancelled"})
        self.assertEqual(self.listed_ids(by_status), [])

    def test_it_is_read_only_and_every_page_is_audited(self):
        response, event = self.one_event(lambda: self.client.get(admin_url("appointment", "change", self.late.pk)))

        self.assertEqual(response.status_code, 200)
        self.assert_event(event, self.staff.pk, "read", "appointment", [self.late.pk], [self.patient.pk], 200)
        self.assertEqual(self.client.get(admin_url("appointment", "add")).status_code, 403)
        self.assertEqual(self.client.get(admin_url("appointment", "delete", self.late.pk)).status_code, 403)
        _response, event = self.one_event(lambda: self.client.get(admin_url("appointment", "changelist")))
        self.assertEqual((event.action, event.patient_ids), ("list", sorted([self.patient.pk, self.other.pk])))
