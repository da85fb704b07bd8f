"""/api/users/ (staff): roles, the doctor an account acts as, deactivation; and what they change at once."""

from django.contrib.auth.models import Group
from django.urls import reverse
from rest_framework import status

from hospital.models import AuditEvent, User
from hospital.tests import factories
from hospital.tests.base import ApiTestCase, ApiTransactionTestCase, ids, run_concurrently

LIST_URL = reverse("user-list")
USER_FIELDS = {"id", "username", "email", "is_staff", "is_active", "roles", "doctor", "date_joined"}


def detail_url(user) -> str:
    return reverse("user-detail", args=[user.pk])


class UserListTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.staff = factories.make_user("boss", is_staff=True)
        cls.doctor = factories.make_doctor(cls.staff)
        cls.front = factories.make_front_desk("frontdesk")
        cls.clinician = factories.make_clinician(cls.doctor, "drwho")
        cls.plain = factories.make_user("plain")

    def setUp(self):
        super().setUp()
        self.client = factories.client_for(self.staff)

    def test_staff_list_every_account_with_roles_and_linked_doctor(self):
        response = self.client.get(LIST_URL)

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(ids(response), [self.staff.pk, self.front.pk, self.clinician.pk, self.plain.pk])
        rows = {row["username"]: row for row in response.json()}
        self.assertEqual(set(rows["drwho"]), USER_FIELDS)
        self.assertEqual((rows["drwho"]["roles"], rows["drwho"]["doctor"]), (["clinician"], self.doctor.pk))
        self.assertEqual((rows["frontdesk"]["roles"], rows["plain"]["roles"]), (["front_desk"], []))
        self.assertEqual(response["X-Total-Count"], "4")

    def test_it_filters_by_role_and_searches_username_and_email(self):
        cases = {
            "role=clinician": [self.clinician.pk],
            "role=front_desk": [self.front.pk],
            "search=DRWHO": [self.clinician.pk],
            "search=plain@example": [self.plain.pk],
            "role=clinician&search=plain": [],
        }
        for query, expected in cases.items():
            with self.subTest(query=query):
                self.assertEqual(ids(self.client.get(f"{LIST_URL}?{query}")), expected)
        bad = self.client.get(LIST_URL, {"role": "surgeon"})
        self.assertEqual((bad.status_code, list(bad.json())), (400, ["role"]))

    def test_only_staff_manage_accounts(self):
        for user in (self.front, self.clinician, self.plain):
            client = factories.client_for(user)
            for response in (
                client.get(LIST_URL),
                client.get(detail_url(self.plain)),
                client.patch(detail_url(self.plain), {"roles": ["front_desk"]}, format="json"),
            ):
                with self.subTest(user=user.username, url=response.request["PATH_INFO"]):
                    self.assertEqual(response.status_code, status.HTTP_403_FORBIDDEN)
        self.assertEqual(factories.client_for(None).get(LIST_URL).status_code, status.HTTP_401_UNAUTHORIZED)
        self.assertEqual(User.objects.get(pk=self.plain.pk).groups.count(), 0)


class UserChangeTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.staff = factories.make_user("boss", is_staff=True)
        cls.doctor = factories.make_doctor(cls.staff)
        cls.other_doctor = factories.make_doctor(cls.staff)
        cls.user = factories.make_user("nurse")

    def setUp(self):
        super().setUp()
        self.client = factories.client_for(self.staff)

    def patch(self, body, user=None):
        return self.client.patch(detail_url(user or self.user), body, format="json")

    def test_staff_grant_roles_and_link_a_doctor_and_it_is_audited(self):
        response = self.patch({"roles": ["clinician", "front_desk"], "doctor": self.doctor.pk})

        self.assertEqual(response.status_code, status.HTTP_200_OK, response.content)
        self.assertEqual(
            (response.json()["roles"], response.json()["doctor"]), (["clinician", "front_desk"], self.doctor.pk)
        )
        self.assertEqual(
            set(Group.objects.filter(user=self.user).values_list("name", flat=True)), {"clinician", "front_desk"}
        )
        event = AuditEvent.objects.get(request_id=response["X-Request-ID"])
        self.assertEqual(
            (event.actor, event.action, event.resource_type, event.resource_ids),
            (self.staff.pk, "update", "user", [self.user.pk]),
        )
        self.assertEqual(self.client.get(detail_url(self.user)).json(), response.json())

    def test_roles_are_replaced_whole_and_a_doctor_unlinked_with_null(self):
        self.patch({"roles": ["front_desk"], "doctor": self.doctor.pk})
        response = self.patch({"roles": [], "doctor": None})
        self.assertEqual((response.json()["roles"], response.json()["doctor"]), ([], None))

    def test_each_invalid_change_is_a_400_naming_the_field_and_changes_nothing(self):
        taken = factories.make_clinician(self.other_doctor)
        cases = [
            ({"roles": ["surgeon"]}, "roles"),
            ({"roles": "clinician"}, "roles"),
            ({"roles": ["clinician"]}, "doctor"),  # a clinician must act as a doctor
            ({"doctor": self.other_doctor.pk}, "doctor"),  # linked to another account already
            ({"doctor": 10**9}, "doctor"),
            ({"doctor": "1"}, "doctor"),
            ({"is_active": "no"}, "is_active"),
        ]
        for body, field in cases:
            with self.subTest(body=body):
                response = self.patch(body)
                self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST, response.content)
                self.assertEqual(list(response.json()), [field])
        self.user.refresh_from_db()
        self.assertEqual((self.user.doctor_id, self.user.groups.count()), (None, 0))
        self.assertEqual(User.objects.get(pk=taken.pk).doctor_id, self.other_doctor.pk)

    def test_a_clinician_cannot_lose_its_doctor_while_a_clinician(self):
        clinician = factories.make_clinician(self.doctor)
        response = self.patch({"doctor": None}, user=clinician)
        self.assertEqual((response.status_code, list(response.json())), (400, ["doctor"]))
        self.assertEqual(self.patch({"roles": [], "doctor": None}, user=clinician).status_code, 200)

    def test_staff_cannot_deactivate_themselves(self):
        response = self.patch({"is_active": False}, user=self.staff)
        self.assertEqual((response.status_code, list(response.json())), (400, ["is_active"]))

    def test_only_patch_is_allowed(self):
        for method in ("put", "delete", "post"):
            with self.subTest(method=method):
                response = getattr(self.client, method)(detail_url(self.user), {}, format="json")
                self.assertEqual(response.status_code, status.HTTP_405_METHOD_NOT_ALLOWED)


class ImmediateEffectTests(ApiTransactionTestCase):
    """Changes reach the account on its very next request, its worker's cached copy notwithstanding."""

    def setUp(self):
        super().setUp()
        self.staff = factories.make_user("boss", is_staff=True)
        self.staff_client = factories.client_for(self.staff)
        self.doctor = factories.make_doctor(self.staff)
        self.patient = factories.make_patient(self.staff)
        factories.make_mapping(self.patient, self.doctor)
        self.nurse = factories.make_user("nurse")
        self.client = factories.client_for(self.nurse)
        self.detail = reverse("patient-detail", args=[self.patient.pk])

    def test_a_granted_role_and_its_withdrawal_take_effect_on_the_next_request(self):
        self.assertEqual(self.client.get(self.detail).status_code, 404)  # the copy is now cached
        self.staff_client.patch(
            detail_url(self.nurse), {"roles": ["clinician"], "doctor": self.doctor.pk}, format="json"
        )
        self.assertEqual(self.client.get(self.detail).status_code, 200)
        self.assertEqual(self.client.get(reverse("me")).json()["roles"], ["clinician"])
        self.staff_client.patch(detail_url(self.nurse), {"roles": [], "doctor": None}, format="json")
        self.assertEqual(self.client.get(self.detail).status_code, 404)

    def test_a_role_granted_in_the_admin_takes_effect_too(self):
        self.assertEqual(self.client.get(self.detail).status_code, 404)
        front_desk, _created = Group.objects.get_or_create(name="front_desk")
        self.nurse.groups.add(front_desk)
        self.assertEqual(self.client.get(self.detail).status_code, 200)
        front_desk.user_set.clear()
        self.assertEqual(self.client.get(self.detail).status_code, 404)

    def test_a_deactivation_refuses_the_next_request(self):
        self.assertEqual(self.client.get(reverse("me")).status_code, 200)
        response = self.staff_client.patch(detail_url(self.nurse), {"is_active": False}, format="json")
        self.assertEqual((response.status_code, response.json()["is_active"]), (200, False))
        self.assertEqual(self.client.get(reverse("me")).status_code, status.HTTP_401_UNAUTHORIZED)

    def test_two_links_of_one_doctor_at_once_give_exactly_one_success(self):
        accounts = [factories.make_user() for _ in range(6)]
        clients = [factories.client_for(self.staff) for _ in accounts]

        responses = run_concurrently(
            list(zip(clients, accounts, strict=True)),
            lambda pair: pair[0].patch(detail_url(pair[1]), {"doctor": self.doctor.pk}, format="json"),
        )

        self.assertEqual(sorted(r.status_code for r in responses), [200] + [400] * 5)
        for response in responses:
            if response.status_code == 400:
                self.assertEqual(response.json(), {"doctor": ["This doctor is already linked to another account."]})
        self.assertEqual(User.objects.filter(doctor=self.doctor).count(), 1)
