"""Who may do what to one patient and everything hanging off it, as one table driven through HTTP.

The patient was created by `creator` and is assigned to doctor D. The accounts around it:
- creator, other (plain accounts), front_desk, staff, anonymous;
- care: a clinician linked to D; outside: a clinician linked to another doctor;
- emergency: a clinician (of another doctor) with a live emergency grant for the patient; expired: one whose
  grant has run out.
Each case runs in a transaction rolled back afterwards, so a DELETE in one cell leaves the next cell its data.
"""

from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework import status

from hospital.models import Gender, Patient
from hospital.tests import factories
from hospital.tests.base import ApiTestCase, ApiTransactionTestCase, ids

ACTORS = ["anonymous", "creator", "other", "front_desk", "staff", "care", "outside", "emergency", "expired"]
SEES = {"creator", "front_desk", "staff", "care", "emergency"}
NOT_SIGNED_IN = {"anonymous": status.HTTP_401_UNAUTHORIZED}


def when_seen(seen: int, unseen: int = status.HTTP_404_NOT_FOUND, **overrides) -> dict:
    """Statuses by actor: `seen` for those who see the patient, `unseen` for the others, 401 for anonymous."""
    row = {actor: (seen if actor in SEES else unseen) for actor in ACTORS}
    return {**row, **NOT_SIGNED_IN, **overrides}


SLOT = datetime(2030, 6, 3, 9, tzinfo=UTC)

# (method, route, body name) -> expected status per actor. Bodies: CareTeamTestCase.BODIES, and body().
MATRIX = {
    ("GET", "patient-detail", None): when_seen(200),
    ("PATCH", "patient-detail", "age"): when_seen(200),
    ("PUT", "patient-detail", "full"): when_seen(200),
    # Deleting: only the creator, the front desk and staff; clinicians who see it get 403.
    ("DELETE", "patient-detail", None): when_seen(204, care=403, emergency=403),
    ("GET", "patient-history", None): when_seen(200),
    ("GET", "patient-access-log", None): when_seen(200),
    ("POST", "patient-restore", None): {**{actor: 403 for actor in ACTORS}, **NOT_SIGNED_IN, "staff": 409},
    ("GET", "patient-doctors", None): when_seen(200),
    ("POST", "mapping-list", "assign"): when_seen(201, unseen=400),
    ("DELETE", "mapping-delete", None): when_seen(204),
    # Emergency access: a clinician's act, whatever the clinician already sees.
    ("POST", "patient-emergency-access", "reason"): {
        **{actor: 403 for actor in ACTORS},
        **NOT_SIGNED_IN,
        "care": 201,
        "outside": 201,
        "emergency": 201,
        "expired": 201,
    },
    ("GET", "appointment-detail", None): when_seen(200),
    ("PATCH", "appointment-detail", "follow-up"): when_seen(200),
    ("POST", "appointment-list", "book"): when_seen(201, unseen=400),
}
# Which lists show the patient's rows, by actor.
LISTS = ["patient-list", "mapping-list", "appointment-list"]


class CareTeamTestCase(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.creator = factories.make_user("creator")
        cls.staff = factories.make_user("staff", is_staff=True)
        cls.doctor = factories.make_doctor(cls.staff)
        cls.second_doctor = factories.make_doctor(cls.staff)
        cls.patient = factories.make_patient(cls.creator)
        cls.mapping = factories.make_mapping(cls.patient, cls.doctor)
        cls.appointment = factories.make_appointment(cls.patient, cls.doctor, SLOT)
        cls.users = {
            "anonymous": None,
            "creator": cls.creator,
            "other": factories.make_user("other"),
            "front_desk": factories.make_front_desk("front"),
            "staff": cls.staff,
            "care": factories.make_clinician(cls.doctor, "care"),
            "outside": factories.make_clinician(factories.make_doctor(cls.staff), "outside"),
            "emergency": factories.make_clinician(factories.make_doctor(cls.staff), "emergency"),
            "expired": factories.make_clinician(factories.make_doctor(cls.staff), "expired"),
        }
        factories.make_grant(cls.users["emergency"], cls.patient, minutes=60)
        factories.make_grant(cls.users["expired"], cls.patient, minutes=-5)

    def url(self, route: str) -> str:
        if route in ("mapping-list", "appointment-list"):
            return reverse(route)
        if route == "patient-doctors":
            return reverse(route, kwargs={"patient_id": self.patient.pk})
        if route == "mapping-delete":
            return reverse(route, args=[self.mapping.pk])
        if route == "appointment-detail":
            return reverse(route, args=[self.appointment.pk])
        return reverse(route, args=[self.patient.pk])

    BODIES = {
        None: None,
        "age": {"age": 41},
        "reason": {"reason": "Arrived unconscious, allergies unknown"},
        "follow-up": {"reason": "Follow-up"},
    }

    def body(self, body):
        if body in self.BODIES:
            return self.BODIES[body]
        if body == "full":
            return {"firstname": "Ada", "lastname": "Lovelace", "age": 36, "gender": Gender.FEMALE}
        if body == "assign":
            return {"patient": self.patient.pk, "doctor": self.second_doctor.pk}
        if body == "book":
            start = SLOT + timedelta(days=1)
            end = start + timedelta(minutes=30)
            return {
                "patient": self.patient.pk,
                "doctor": self.doctor.pk,
                "start": start.isoformat(),
                "end": end.isoformat(),
            }
        return body


class AccessMatrixTests(CareTeamTestCase):
    def test_every_route_answers_each_role_as_the_table_says(self):
        for (method, route, body), expected in MATRIX.items():
            for actor in ACTORS:
                with self.subTest(method=method, route=route, actor=actor), transaction.atomic():
                    client = factories.client_for(self.users[actor])
                    url = self.url(route)
                    if method == "GET":
                        response = client.get(url)
                    else:
                        response = getattr(client, method.lower())(url, self.body(body), format="json")
                    self.assertEqual(response.status_code, expected[actor], response.content[:200])
                    transaction.set_rollback(True)

    def test_every_list_shows_the_patients_rows_exactly_to_those_who_see_it(self):
        rows = {
            "patient-list": self.patient.pk,
            "mapping-list": self.mapping.pk,
            "appointment-list": self.appointment.pk,
        }
        for route in LISTS:
            for actor in ACTORS[1:]:
                with self.subTest(route=route, actor=actor):
                    response = factories.client_for(self.users[actor]).get(reverse(route))
                    self.assertEqual(response.status_code, status.HTTP_200_OK)
                    self.assertEqual(rows[route] in ids(response), actor in SEES)

    def test_a_hidden_patient_answers_exactly_like_a_missing_one(self):
        client = factories.client_for(self.users["outside"])
        hidden = client.get(reverse("patient-detail", args=[self.patient.pk]))
        missing = client.get(reverse("patient-detail", args=[self.patient.pk + 1000]))
        self.assertEqual((hidden.status_code, hidden.json()), (missing.status_code, missing.json()))

    def test_a_deleted_patient_is_hidden_from_every_role_but_staff(self):
        Patient.objects.filter(pk=self.patient.pk).update(deleted_at=SLOT, deleted_by=self.creator)
        for actor in ACTORS[1:]:
            with self.subTest(actor=actor):
                response = factories.client_for(self.users[actor]).get(
                    reverse("patient-detail", args=[self.patient.pk])
                )
                self.assertEqual(response.status_code, status.HTTP_404_NOT_FOUND)
        staff = factories.client_for(self.staff).get(reverse("patient-history", args=[self.patient.pk]))
        self.assertEqual(staff.status_code, status.HTTP_200_OK)
        emergency = factories.client_for(self.users["care"]).post(
            reverse("patient-emergency-access", args=[self.patient.pk]), {"reason": "x" * 20}, format="json"
        )
        self.assertEqual(emergency.status_code, status.HTTP_404_NOT_FOUND)


DOCTOR_MATRIX = {
    # (method, body) -> status per actor, for doctor D (created by staff; `care` is linked to it).
    ("PATCH", "doctor"): {"creator": 403, "other": 403, "front_desk": 200, "staff": 200, "care": 200, "outside": 403},
    ("PUT", "hours"): {"creator": 403, "other": 403, "front_desk": 200, "staff": 200, "care": 200, "outside": 403},
    ("DELETE", "doctor"): {"creator": 403, "other": 403, "front_desk": 403, "staff": 409, "care": 403, "outside": 403},
}


class DoctorAccessTests(CareTeamTestCase):
    def test_every_route_answers_each_role_as_the_table_says(self):
        for (method, target), expected in DOCTOR_MATRIX.items():
            for actor, code in expected.items():
                with self.subTest(method=method, target=target, actor=actor), transaction.atomic():
                    client = factories.client_for(self.users[actor])
                    if target == "hours":
                        week = [{"weekday": 0, "start": "08:00", "end": "18:00"}]
                        response = client.put(
                            reverse("doctor-working-hours", args=[self.doctor.pk]), week, format="json"
                        )
                    else:
                        url = reverse("doctor-detail", args=[self.doctor.pk])
                        response = getattr(client, method.lower())(url, {"email": "d@example.com"}, format="json")
                    self.assertEqual(response.status_code, code, response.content[:200])
                    transaction.set_rollback(True)

    def test_the_creator_of_a_doctor_may_change_and_delete_it(self):
        doctor = factories.make_doctor(self.creator)
        client = factories.client_for(self.creator)
        self.assertEqual(
            client.patch(
                reverse("doctor-detail", args=[doctor.pk]), {"email": "x@example.com"}, format="json"
            ).status_code,
            200,
        )
        self.assertEqual(client.delete(reverse("doctor-detail", args=[doctor.pk])).status_code, 204)

    def test_a_doctor_linked_to_an_account_cannot_be_deleted(self):
        doctor = factories.make_doctor(self.staff)
        factories.make_clinician(doctor)
        response = factories.client_for(self.staff).delete(reverse("doctor-detail", args=[doctor.pk]))
        self.assertEqual((response.status_code, response.json()["code"]), (409, "doctor_linked"))

    def test_overbooking_is_for_staff_and_the_front_desk(self):
        self.doctor.max_appointments_per_day = 1
        self.doctor.save()
        start = SLOT + timedelta(hours=2)
        body = {
            "patient": self.patient.pk,
            "doctor": self.doctor.pk,
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=30)).isoformat(),
            "overbook": True,
        }
        for actor, code in {"creator": 403, "care": 403, "emergency": 403, "front_desk": 201, "staff": 201}.items():
            with self.subTest(actor=actor), transaction.atomic():
                response = factories.client_for(self.users[actor]).post(
                    reverse("appointment-list"), body, format="json"
                )
                self.assertEqual(response.status_code, code, response.content[:200])
                transaction.set_rollback(True)


class RoleQueryCountTests(ApiTransactionTestCase):
    """Every list, for every role, runs the statements a plain account's runs: the count, and the page with its
    audit row. The care team's rule is part of those statements' SQL, never a query of its own."""

    def setUp(self):
        super().setUp()
        self.owner = factories.make_user()
        self.doctor = factories.make_doctor(self.owner, max_appointments_per_day=100)
        clinician = factories.make_clinician(self.doctor)
        emergency = factories.make_clinician(factories.make_doctor(self.owner))
        self.clients = {
            "creator": factories.client_for(self.owner),
            "front_desk": factories.client_for(factories.make_front_desk()),
            "staff": factories.client_for(factories.make_user(is_staff=True)),
            "clinician": factories.client_for(clinician),
            "emergency": factories.client_for(emergency),
        }
        self.emergency = emergency
        for client in self.clients.values():
            client.get(reverse("me"))  # each worker caches the token's user (with its roles) from the first request

    def add(self, count: int) -> None:
        start = Patient.objects.count()
        for n in range(start, start + count):
            patient = factories.make_patient(self.owner)
            factories.make_mapping(patient, self.doctor)
            factories.make_appointment(patient, self.doctor, SLOT + timedelta(minutes=10 * n), 10)
            if n % 2:
                factories.make_grant(self.emergency, patient)

    def test_each_list_is_two_statements_for_every_role_with_2_rows_and_with_50(self):
        lists = [reverse("patient-list"), reverse("mapping-list"), reverse("appointment-list")]
        for rows in (2, 48):
            self.add(rows)
            for role, client in self.clients.items():
                for url in lists:
                    with self.subTest(rows=rows, role=role, url=url), CaptureQueriesContext(connection) as queries:
                        response = client.get(url)
                        self.assertEqual(response.status_code, 200)
                    # 1. COUNT(*) of the visible rows, 2. the page with the INSERT of its audit row
                    self.assertEqual(len(queries), 2, [query["sql"][:90] for query in queries])
        self.assertEqual(len(self.clients["clinician"].get(reverse("patient-list")).json()), 50)
        self.assertEqual(len(self.clients["emergency"].get(reverse("patient-list")).json()), 25)
