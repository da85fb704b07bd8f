"""The representation plan (hospital.representation) gives exactly DRF's own representation, for every serializer
of the API, on rows with nulls, unicode, and every field type the API uses."""

from datetime import UTC, date, datetime, timedelta

from django.db.models import QuerySet
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from hospital import serializers as api_serializers
from hospital.access import with_roles
from hospital.models import AuditEvent, Patient, User
from hospital.representation import PlannedRepresentation
from hospital.tests import factories
from hospital.tests.base import ApiTestCase

UNICODE = "Zoë Ørsted-Ñúñez 山田 ✓ \u2028"
WHEN = datetime(2030, 6, 3, 9, 30, 15, 123456, tzinfo=UTC)


def drf_representation(serializer_class, instance, context):
    """What DRF's own Serializer.to_representation gives, for one row or (many) a list of them."""
    template = serializer_class(context=context)
    represent = serializers.Serializer.to_representation
    if isinstance(instance, list | QuerySet):
        return [represent(template, row) for row in instance]
    return represent(template, instance)


class RepresentationPlanTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.staff = factories.make_user(is_staff=True)
        cls.doctor = factories.make_doctor(cls.staff, firstname=UNICODE, email="")
        cls.linked = factories.make_clinician(cls.doctor, "linked")
        cls.live = factories.make_patient(cls.linked, firstname=UNICODE, lastname="O'Brien", email="", age=0)
        cls.deleted = factories.make_patient(cls.staff, email="x@example.org", age=150)
        Patient.objects.filter(pk=cls.deleted.pk).update(deleted_at=WHEN, deleted_by=cls.staff)
        cls.deleted.refresh_from_db()
        cls.mapping = factories.make_mapping(cls.live, cls.doctor)
        cls.appointment = factories.make_appointment(cls.live, cls.doctor, WHEN, reason=UNICODE)
        cls.cancelled = factories.make_appointment(
            cls.deleted, cls.doctor, WHEN + timedelta(days=1), status="cancelled", overbooked=True
        )
        cls.grant = factories.make_grant(cls.linked, cls.deleted, reason=UNICODE)
        cls.events = [
            AuditEvent.objects.create(actor=None, action="login", resource_type="user", outcome=401, request_id="r1"),
            AuditEvent.objects.create(
                actor=cls.staff.pk,
                action="list",
                resource_type="patient",
                resource_ids=[cls.live.pk, cls.deleted.pk],
                patient_ids=[cls.live.pk, cls.deleted.pk],
                outcome=200,
                client_ip="2001:db8::1",
                request_id="r2",
                client_request_id=UNICODE[:10],
            ),
        ]

    def cases(self):
        """(serializer class, instance, context) for every serializer the API represents rows with."""
        patients = list(Patient.objects.order_by("id"))
        versions = list(Patient.history.order_by("history_id"))
        doctor_versions = list(type(self.doctor).history.all())
        users = list(with_roles(User.objects.order_by("id")))
        plain_users = list(User.objects.order_by("id"))  # roles read with a query of their own
        change = {"field": "firstname", "old": None, "new": UNICODE}
        interval = {"start": WHEN, "end": WHEN + timedelta(minutes=30)}
        return [
            (api_serializers.PatientSerializer, patients, {}),
            (api_serializers.DoctorSerializer, [self.doctor], {}),
            (api_serializers.MappingSerializer, [self.mapping], {}),
            (api_serializers.MappingCreateSerializer, [self.mapping], {}),
            (
                api_serializers.PatientDoctorsSerializer,
                {"id": self.live.pk, "full_name": UNICODE, "doctors": type(self.doctor).objects.all()},
                {},
            ),
            (api_serializers.AppointmentSerializer, [self.appointment, self.cancelled], {}),
            (api_serializers.AuditEventSerializer, self.events, {}),
            (api_serializers.AccessLogEntrySerializer, self.events, {"patient_id": self.live.pk}),
            (api_serializers.UserSerializer, users + plain_users, {}),
            (api_serializers.MeSerializer, users, {}),
            (api_serializers.RegisterSerializer, users, {}),
            (api_serializers.EmergencyAccessGrantSerializer, [self.grant], {}),
            (api_serializers.FieldChangeSerializer, [change, {"field": "age", "old": 3, "new": None}], {}),
            (
                api_serializers.PatientVersionSerializer,
                [
                    {
                        "version": 1,
                        "change": "created",
                        "history_date": v.history_date,
                        "history_user_id": None,
                        "changes": [change],
                        "record": v,
                    }
                    for v in versions
                ],
                {},
            ),
            (
                api_serializers.VersionSerializer,
                [
                    {
                        "version": 3,
                        "change": "deleted",
                        "history_date": WHEN,
                        "history_user_id": None,
                        "changes": [change],
                    }
                ],
                {},
            ),
            (
                api_serializers.DoctorVersionSerializer,
                [
                    {
                        "version": 2,
                        "change": "updated",
                        "history_date": v.history_date,
                        "history_user_id": self.staff.pk,
                        "changes": [],
                        "record": v,
                    }
                    for v in doctor_versions
                ],
                {},
            ),
            (api_serializers.TokenPairSerializer, {"access": "a.b.c", "refresh": UNICODE}, {}),
            (api_serializers.HealthSerializer, {"status": "ok", "database": "ok"}, {}),
            (api_serializers.ReadySerializer, {"status": "ready", "database": "ok", "migrations": "ok"}, {}),
            (
                api_serializers.ApiIndexSerializer,
                {
                    "name": UNICODE,
                    "version": "1",
                    "docs": "http://x/docs/",
                    "schema": "http://x/schema/",
                    "health": "http://x/health/",
                    "auth": dict.fromkeys(["register", "login", "refresh", "logout", "me"], "http://x/"),
                    "collections": dict.fromkeys(["patients", "doctors", "mappings", "audit"], "http://x/"),
                },
                {},
            ),
            (
                api_serializers.AvailabilitySerializer,
                {
                    "doctor": self.doctor.pk,
                    "date": date(2030, 6, 3),
                    "time_zone": "Europe/Berlin",
                    "max_appointments_per_day": 10,
                    "booked": 0,
                    "remaining": 10,
                    "working_hours": [interval],
                    "busy": [],
                    "free": [interval, interval],
                },
                {},
            ),
            (
                api_serializers.AppointmentConflictSerializer,
                {"detail": UNICODE, "code": "overlap", "conflicts": [{"id": None, **interval}, {"id": 7, **interval}]},
                {},
            ),
            (api_serializers.AppointmentConflictSerializer, {"detail": "full", "code": "fully_booked"}, {}),
        ]

    def test_the_plan_gives_drfs_own_representation_for_every_serializer(self):
        covered = set()
        for serializer_class, instance, context in self.cases():
            with self.subTest(serializer=serializer_class.__name__):
                many = isinstance(instance, list | QuerySet)
                planned = serializer_class(instance, many=many, context=context).data
                expected = drf_representation(serializer_class, instance, context)
                self.assertEqual(planned, expected)
                self.assertEqual(JSONRenderer().render(planned), JSONRenderer().render(expected))
                covered.add(serializer_class)
        planned_classes = {
            cls
            for name in api_serializers.__all__
            if isinstance(cls := getattr(api_serializers, name), type)
            and issubclass(cls, PlannedRepresentation)
            and cls.to_representation is PlannedRepresentation.to_representation
            and any(field for field in cls().fields.values() if not field.write_only)
        }
        self.assertEqual(planned_classes - covered, set(), "serializers whose plan no case checks")

    def test_null_values_are_null_and_dates_are_utc_with_a_z(self):
        data = api_serializers.PatientSerializer(self.live).data
        self.assertIsNone(data["deleted_at"])
        self.assertTrue(data["created_at"].endswith("Z"))
        data = api_serializers.AppointmentSerializer(self.appointment).data
        self.assertEqual(data["start"], "2030-06-03T09:30:15.123456Z")
