"""/api/appointments/, /api/doctors/<id>/working-hours/ and /availability/: booking that never double-books and
never exceeds a doctor's daily limit, under any concurrency, in the clinic's time zone.

Dates lie in 2030 (the future for the "not in the past" rule) unless a test fixes the clock itself.
"""

from datetime import UTC, datetime, timedelta
from unittest import mock

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework import status

from hospital.models import Appointment, AuditEvent, HistoricalAppointment, PatientDoctorMapping
from hospital.tests import factories
from hospital.tests.base import ApiTestCase, ApiTransactionTestCase, clinic_time_zone, ids, run_concurrently

LIST_URL = reverse("appointment-list")
APPOINTMENT_FIELDS = {
    "id",
    "patient",
    "doctor",
    "start",
    "end",
    "status",
    "overbooked",
    "reason",
    "created_by",
    "created_at",
    "updated_at",
}
MONDAY = datetime(2030, 6, 3, tzinfo=UTC)


def at(hour: int, minute: int = 0, day: datetime = MONDAY) -> datetime:
    return day.replace(hour=hour, minute=minute)


def iso(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


def detail_url(pk: int) -> str:
    return reverse("appointment-detail", args=[pk])


def body(patient, doctor, start: datetime, minutes: int = 30, **extra) -> dict:
    return {
        "patient": patient.pk,
        "doctor": doctor.pk,
        "start": iso(start),
        "end": iso(start + timedelta(minutes=minutes)),
        **extra,
    }


def frozen_now(instant: datetime):
    return mock.patch("django.utils.timezone.now", return_value=instant)


class AppointmentTestCase(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.owner = factories.make_user()
        cls.other = factories.make_user()
        cls.staff = factories.make_user(is_staff=True)
        cls.patient = factories.make_patient(cls.owner)
        cls.second_patient = factories.make_patient(cls.owner)
        cls.others_patient = factories.make_patient(cls.other)
        cls.doctor = factories.make_doctor(cls.owner, max_appointments_per_day=3)

    def setUp(self):
        super().setUp()
        self.client = factories.client_for(self.owner)

    def book(self, client=None, **kwargs):
        kwargs.setdefault("patient", self.patient)
        kwargs.setdefault("doctor", self.doctor)
        kwargs.setdefault("start", at(9))
        extra = kwargs.pop("extra", {})
        return (client or self.client).post(LIST_URL, body(**kwargs, **extra), format="json")


class BookingTests(AppointmentTestCase):
    def test_it_books_an_appointment_returned_in_utc_and_assigns_the_doctor(self):
        request = body(self.patient, self.doctor, at(9), reason="Check-up")
        request["start"], request["end"] = "2030-06-03T14:30:00+05:30", "2030-06-03T15:00:00+05:30"

        response = self.client.post(LIST_URL, request, format="json")

        self.assertEqual(response.status_code, status.HTTP_201_CREATED, response.content)
        data = response.json()
        self.assertEqual(set(data), APPOINTMENT_FIELDS)
        self.assertEqual((data["start"], data["end"]), ("2030-06-03T09:00:00Z", "2030-06-03T09:30:00Z"))
        self.assertEqual(
            (data["status"], data["overbooked"], data["reason"], data["created_by"]),
            ("booked", False, "Check-up", self.owner.pk),
        )
        self.assertTrue(PatientDoctorMapping.objects.filter(patient=self.patient, doctor=self.doctor).exists())
        self.assertEqual(self.client.get(detail_url(data["id"])).json(), data)

    def test_an_existing_assignment_is_kept_not_duplicated(self):
        factories.make_mapping(self.patient, self.doctor)
        self.assertEqual(self.book().status_code, status.HTTP_201_CREATED)
        self.assertEqual(PatientDoctorMapping.objects.filter(patient=self.patient, doctor=self.doctor).count(), 1)

    def test_each_invalid_time_is_a_400_naming_the_field(self):
        start = "2030-06-03T09:00:00Z"
        cases = [
            ({"start": "2030-06-03T09:00:00"}, "start"),
            ({"end": "2030-06-03T09:30:00"}, "end"),
            ({"start": "2030-06-03"}, "start"),
            ({"start": "tomorrow"}, "start"),
            ({"start": 1900000000}, "start"),
            ({"end": "2030-06-03T08:59:00Z"}, "end"),
            ({"end": start}, "end"),
            ({"end": "2030-06-03T09:04:59Z"}, "end"),
            ({"end": "2030-06-03T17:00:01Z"}, "end"),
            ({"start": "2020-06-03T09:00:00Z", "end": "2020-06-03T09:30:00Z"}, "start"),
            ({"start": "0001-01-01T00:00:00+01:00"}, "start"),
            ({"reason": "x" * 501}, "reason"),
            ({"reason": 5}, "reason"),
            ({"overbook": "yes"}, "overbook"),
            ({"patient": None}, "patient"),
            ({"doctor": 10**9}, "doctor"),
            ({"doctor": "1"}, "doctor"),
        ]
        for change, field in cases:
            with self.subTest(change=change):
                request = {**body(self.patient, self.doctor, at(9)), **change}

                response = self.client.post(LIST_URL, request, format="json")

                self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST, response.content)
                self.assertIn(field, response.json())
        self.assertFalse(Appointment.objects.exists())

    def test_a_patient_the_caller_does_not_see_is_a_400_like_a_missing_one(self):
        hidden = self.book(patient=self.others_patient)
        missing = self.client.post(
            LIST_URL, {**body(self.patient, self.doctor, at(9)), "patient": 10**9}, format="json"
        )

        self.assertEqual(hidden.status_code, status.HTTP_400_BAD_REQUEST)
        self.assertEqual(
            hidden.json()["patient"][0].replace(str(self.others_patient.pk), "N"),
            missing.json()["patient"][0].replace(str(10**9), "N"),
        )
        self.assertFalse(Appointment.objects.exists())

    def test_outside_the_working_hours_is_a_400_naming_start(self):
        self.doctor.max_appointments_per_day = 10
        self.doctor.save()
        hours = [{"weekday": 0, "start": "09:00", "end": "12:00"}, {"weekday": 0, "start": "13:00", "end": "17:00"}]
        self.assertEqual(
            self.client.put(reverse("doctor-working-hours", args=[self.doctor.pk]), hours, format="json").status_code,
            status.HTTP_200_OK,
        )
        for start, minutes in [
            (at(8, 45), 30),
            (at(11, 45), 30),
            (at(12), 30),
            (at(16, 45), 30),
            (at(9, 0, MONDAY + timedelta(days=1)), 30),
        ]:
            with self.subTest(start=start):
                response = self.book(start=start, minutes=minutes)
                self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST, response.content)
                self.assertEqual(list(response.json()), ["start"])
        for start in (at(9), at(11, 30), at(13), at(16, 30)):
            with self.subTest(start=start):
                self.assertEqual(self.book(start=start, patient=factories.make_patient(self.owner)).status_code, 201)

    def test_anonymous_callers_get_401(self):
        response = self.book(client=factories.client_for(None))
        self.assertEqual(response.status_code, status.HTTP_401_UNAUTHORIZED)

    def test_an_idempotency_key_books_once(self):
        headers = {"HTTP_IDEMPOTENCY_KEY": "booking-1"}
        first = self.client.post(LIST_URL, body(self.patient, self.doctor, at(9)), format="json", **headers)
        again = self.client.post(LIST_URL, body(self.patient, self.doctor, at(9)), format="json", **headers)

        self.assertEqual((first.status_code, again.status_code), (201, 201))
        self.assertEqual(first.content, again.content)
        self.assertEqual(again["Idempotent-Replayed"], "true")
        self.assertEqual(Appointment.objects.count(), 1)


class OverlapTests(AppointmentTestCase):
    def test_an_overlap_with_the_doctor_is_a_409_listing_every_clash(self):
        first = factories.make_appointment(self.second_patient, self.doctor, at(9), 30)
        second = factories.make_appointment(factories.make_patient(self.owner), self.doctor, at(9, 30), 30)

        response = self.book(start=at(9, 15), minutes=30)

        self.assertEqual(response.status_code, status.HTTP_409_CONFLICT)
        self.assertEqual(
            response.json(),
            {
                "detail": "This time overlaps other appointments of the doctor or the patient.",
                "code": "overlap",
                "conflicts": [
                    {"id": first.pk, "start": iso(at(9)), "end": iso(at(9, 30))},
                    {"id": second.pk, "start": iso(at(9, 30)), "end": iso(at(10))},
                ],
            },
        )
        self.assertEqual(Appointment.objects.count(), 2)

    def test_a_clash_with_someone_elses_patient_shows_its_times_never_whose(self):
        factories.make_appointment(self.others_patient, self.doctor, at(9), 30)

        response = self.book(start=at(9, 15))

        self.assertEqual(response.status_code, status.HTTP_409_CONFLICT)
        self.assertEqual(response.json()["conflicts"], [{"id": None, "start": iso(at(9)), "end": iso(at(9, 30))}])
        self.assertNotIn(str(self.others_patient.pk), response.content.decode().replace(iso(at(9)), ""))

    def test_a_patient_cannot_be_in_two_places_at_once(self):
        other_doctor = factories.make_doctor(self.owner)
        clash = factories.make_appointment(self.patient, other_doctor, at(9), 60)

        response = self.book(start=at(9, 30))

        self.assertEqual(response.status_code, status.HTTP_409_CONFLICT)
        self.assertEqual([row["id"] for row in response.json()["conflicts"]], [clash.pk])

    def test_back_to_back_is_fine_and_cancelled_or_missed_appointments_hold_no_time(self):
        self.doctor.max_appointments_per_day = 10
        self.doctor.save()
        factories.make_appointment(self.second_patient, self.doctor, at(9), 30)
        factories.make_appointment(self.others_patient, self.doctor, at(10), 30, status="cancelled")
        factories.make_appointment(factories.make_patient(self.owner), self.doctor, at(11), 30, status="noshow")

        for start in (at(9, 30), at(10), at(11)):
            with self.subTest(start=start):
                self.assertEqual(self.book(start=start, patient=factories.make_patient(self.owner)).status_code, 201)

    def test_the_database_refuses_an_overlap_whatever_writes_it(self):
        from django.db import IntegrityError, transaction

        factories.make_appointment(self.patient, self.doctor, at(9), 30)
        for patient, doctor in [(self.second_patient, self.doctor), (self.patient, factories.make_doctor(self.owner))]:
            with (
                self.subTest(patient=patient.pk, doctor=doctor.pk),
                self.assertRaises(IntegrityError),
                transaction.atomic(),
            ):
                factories.make_appointment(patient, doctor, at(9, 29), 30)


class DailyLimitTests(AppointmentTestCase):
    def fill_day(self, count: int, day: datetime = MONDAY) -> None:
        for hour in range(count):
            factories.make_appointment(factories.make_patient(self.owner), self.doctor, at(8 + hour, 0, day))

    def test_at_the_limit_a_booking_is_a_409_fully_booked(self):
        self.fill_day(3)

        response = self.book(start=at(14))

        self.assertEqual(response.status_code, status.HTTP_409_CONFLICT)
        self.assertEqual(response.json()["code"], "fully_booked")
        self.assertEqual(Appointment.objects.count(), 3)
        # Another day is free.
        self.assertEqual(self.book(start=at(14, 0, MONDAY + timedelta(days=1))).status_code, 201)

    def test_a_cancelled_appointment_frees_its_place(self):
        self.fill_day(3)
        cancelled = Appointment.objects.first()
        self.client.patch(detail_url(cancelled.pk), {"status": "cancelled"}, format="json")

        self.assertEqual(self.book(start=at(14)).status_code, status.HTTP_201_CREATED)

    def test_staff_may_overbook_and_the_appointment_and_its_audit_row_say_so(self):
        self.fill_day(3)
        staff = factories.client_for(self.staff)

        response = self.book(client=staff, start=at(14), extra={"overbook": True})

        self.assertEqual(response.status_code, status.HTTP_201_CREATED, response.content)
        self.assertTrue(response.json()["overbooked"])
        event = AuditEvent.objects.get(request_id=response["X-Request-ID"])
        self.assertEqual(
            (event.action, event.resource_ids, event.patient_ids),
            ("overbook", [response.json()["id"]], [self.patient.pk]),
        )
        # Never past an overlap, though.
        clash = self.book(client=staff, patient=self.second_patient, start=at(14, 15), extra={"overbook": True})
        self.assertEqual(clash.json()["code"], "overlap")

    def test_others_may_not_overbook(self):
        response = self.book(extra={"overbook": True})
        self.assertEqual(response.status_code, status.HTTP_403_FORBIDDEN)
        self.assertFalse(Appointment.objects.exists())

    def test_lowering_the_limit_keeps_the_days_bookings_and_refuses_new_ones(self):
        self.fill_day(3)
        response = self.client.patch(
            reverse("doctor-detail", args=[self.doctor.pk]), {"max_appointments_per_day": 1}, format="json"
        )
        self.assertEqual(response.status_code, status.HTTP_200_OK)

        self.assertEqual(Appointment.objects.filter(status="booked").count(), 3)
        self.assertEqual(self.book(start=at(14)).json()["code"], "fully_booked")
        self.assertEqual(self.book(start=at(14, 0, MONDAY + timedelta(days=1))).status_code, 201)

    def test_the_database_refuses_one_more_than_the_limit_whatever_writes_it(self):
        from django.db import IntegrityError, transaction

        self.fill_day(3)
        with self.assertRaises(IntegrityError) as refused, transaction.atomic():
            factories.make_appointment(self.patient, self.doctor, at(20))
        self.assertIn("fully booked", str(refused.exception))
        factories.make_appointment(self.patient, self.doctor, at(20), overbooked=True)


class TimeZoneTests(AppointmentTestCase):
    """A clinic in Berlin. The DST days of 2026 lie in the past: the clock is fixed before them."""

    def setUp(self):
        super().setUp()
        self.enterContext(clinic_time_zone("Europe/Berlin"))
        self.enterContext(frozen_now(datetime(2026, 3, 1, tzinfo=UTC)))
        self.doctor.max_appointments_per_day = 2
        self.doctor.save()

    def book_at(self, text: str):
        start = datetime.fromisoformat(text)
        patient = factories.make_patient(self.owner)
        request = body(patient, self.doctor, start)
        request["start"], request["end"] = text, (start + timedelta(minutes=30)).isoformat()
        return self.client.post(LIST_URL, request, format="json")

    def test_the_limit_counts_the_23_hour_day_when_clocks_go_forward(self):
        # 2026-03-29 in Berlin runs from 2026-03-28T23:00Z to 2026-03-29T22:00Z.
        self.assertEqual(self.book_at("2026-03-28T22:30:00Z").status_code, 201)  # 23:30 on the 28th
        self.assertEqual(self.book_at("2026-03-28T23:00:00Z").status_code, 201)  # 00:00 on the 29th
        self.assertEqual(self.book_at("2026-03-29T21:30:00Z").status_code, 201)  # 23:30 CEST on the 29th
        self.assertEqual(self.book_at("2026-03-29T10:00:00+02:00").json()["code"], "fully_booked")
        self.assertEqual(self.book_at("2026-03-29T22:00:00Z").status_code, 201)  # 00:00 on the 30th

    def test_the_limit_counts_the_25_hour_day_when_clocks_go_back(self):
        # 2026-10-25 in Berlin runs from 2026-10-24T22:00Z to 2026-10-25T23:00Z.
        self.assertEqual(self.book_at("2026-10-24T22:00:00Z").status_code, 201)  # 00:00 CEST
        self.assertEqual(self.book_at("2026-10-25T22:30:00Z").status_code, 201)  # 23:30 CET
        self.assertEqual(self.book_at("2026-10-25T12:00:00+01:00").json()["code"], "fully_booked")
        self.assertEqual(self.book_at("2026-10-25T23:00:00Z").status_code, 201)  # 00:00 on the 26th
        self.assertEqual(self.book_at("2026-10-24T21:30:00Z").status_code, 201)  # 23:30 on the 24th

    def test_a_booking_sent_at_plus_05_30_lands_on_the_clinic_day_it_falls_on(self):
        # 2026-06-02T03:00+05:30 is 2026-06-01T21:30Z, 23:30 in Berlin on June 1st.
        response = self.book_at("2026-06-02T03:00:00+05:30")
        self.assertEqual(response.status_code, 201)
        self.assertEqual(response.json()["start"], "2026-06-01T21:30:00Z")
        june_1 = self.client.get(LIST_URL, {"date": "2026-06-01"})
        june_2 = self.client.get(LIST_URL, {"date": "2026-06-02"})
        self.assertEqual((ids(june_1), ids(june_2)), ([response.json()["id"]], []))

    def test_working_hours_are_clinic_wall_clock_times_on_dst_days_too(self):
        hours = [{"weekday": 6, "start": "01:00", "end": "04:00"}]  # Sundays, 01:00-04:00 on the clocks
        self.client.put(reverse("doctor-working-hours", args=[self.doctor.pk]), hours, format="json")
        # On 2026-03-29 that is two real hours, 00:00Z-02:00Z; 03:30 CEST is 01:30Z.
        self.assertEqual(self.book_at("2026-03-29T03:30:00+02:00").status_code, 201)
        self.assertEqual(
            self.book_at("2026-03-29T02:00:00Z").json(), {"start": ["This time is outside the doctor's working hours."]}
        )
        availability = self.client.get(
            reverse("doctor-availability", args=[self.doctor.pk]), {"date": "2026-03-29"}
        ).json()
        self.assertEqual(
            availability["working_hours"], [{"start": "2026-03-29T00:00:00Z", "end": "2026-03-29T02:00:00Z"}]
        )
        self.assertEqual(availability["time_zone"], "Europe/Berlin")


class ListTests(AppointmentTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.tuesday = MONDAY + timedelta(days=1)
        cls.later = factories.make_appointment(cls.patient, cls.doctor, at(11))
        cls.earlier = factories.make_appointment(cls.second_patient, cls.doctor, at(9))
        cls.next_day = factories.make_appointment(cls.patient, cls.doctor, at(9, 0, cls.tuesday), status="cancelled")
        cls.hidden = factories.make_appointment(cls.others_patient, cls.doctor, at(10))

    def test_it_lists_the_appointments_of_the_patients_the_caller_sees_by_start(self):
        response = self.client.get(LIST_URL)

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(ids(response), [self.earlier.pk, self.later.pk, self.next_day.pk])
        self.assertEqual(response["X-Total-Count"], "3")
        self.assertEqual(set(response.json()[0]), APPOINTMENT_FIELDS)
        staff = factories.client_for(self.staff).get(LIST_URL)
        self.assertEqual(ids(staff), [self.earlier.pk, self.hidden.pk, self.later.pk, self.next_day.pk])

    def test_each_filter_narrows_the_list(self):
        cases = {
            f"patient={self.patient.pk}": [self.later.pk, self.next_day.pk],
            f"patient={self.others_patient.pk}": [],
            f"doctor={self.doctor.pk}": [self.earlier.pk, self.later.pk, self.next_day.pk],
            "status=cancelled": [self.next_day.pk],
            "date=2030-06-03": [self.earlier.pk, self.later.pk],
            "date=2030-06-04": [self.next_day.pk],
            "from=2030-06-03T09:15:00Z&to=2030-06-03T11:00:00Z": [self.earlier.pk],
            "from=2030-06-03T09:30:00Z&to=2030-06-03T11:01:00%2B00:00": [self.later.pk],
            "ordering=-start": [self.next_day.pk, self.later.pk, self.earlier.pk],
            "ordering=created_at": [self.later.pk, self.earlier.pk, self.next_day.pk],
        }
        for query, expected in cases.items():
            with self.subTest(query=query):
                response = self.client.get(f"{LIST_URL}?{query}")
                self.assertEqual(response.status_code, status.HTTP_200_OK, response.content)
                self.assertEqual(ids(response), expected)

    def test_a_malformed_filter_is_a_400_naming_it(self):
        for query in (
            "date=2030-13-01",
            "date=today",
            "from=2030-06-03T09:00:00",
            "to=x",
            "status=done",
            "patient=x",
            "ordering=end",
        ):
            with self.subTest(query=query):
                response = self.client.get(f"{LIST_URL}?{query}")
                self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST)
                self.assertIn(query.split("=")[0], response.json())

    def test_another_users_appointment_answers_404_like_a_missing_one(self):
        hidden = self.client.get(detail_url(self.hidden.pk))
        missing = self.client.get(detail_url(10**9))

        self.assertEqual((hidden.status_code, hidden.json()), (missing.status_code, missing.json()))
        self.assertEqual(hidden.status_code, status.HTTP_404_NOT_FOUND)
        patch = self.client.patch(detail_url(self.hidden.pk), {"status": "cancelled"}, format="json")
        self.assertEqual(patch.status_code, status.HTTP_404_NOT_FOUND)
        self.assertEqual(Appointment.objects.get(pk=self.hidden.pk).status, "booked")

    def test_appointments_are_never_deleted_or_replaced(self):
        for method in ("delete", "put"):
            with self.subTest(method=method):
                response = getattr(self.client, method)(detail_url(self.later.pk), {}, format="json")
                self.assertEqual(response.status_code, status.HTTP_405_METHOD_NOT_ALLOWED)
        self.assertTrue(Appointment.objects.filter(pk=self.later.pk).exists())

    def test_reads_are_audited_with_the_patients_they_touched(self):
        listing = self.client.get(LIST_URL)
        detail = self.client.get(detail_url(self.later.pk))

        event = AuditEvent.objects.get(request_id=listing["X-Request-ID"])
        self.assertEqual((event.action, event.resource_type), ("list", "appointment"))
        # In the order of the page (earlier, later, next day), one per appointment.
        self.assertEqual(event.patient_ids, [self.second_patient.pk, self.patient.pk, self.patient.pk])
        event = AuditEvent.objects.get(request_id=detail["X-Request-ID"])
        self.assertEqual(
            (event.action, event.resource_ids, event.patient_ids), ("read", [self.later.pk], [self.patient.pk])
        )
        log = self.client.get(reverse("patient-access-log", args=[self.patient.pk])).json()
        self.assertEqual([row["resource_type"] for row in log], ["appointment", "appointment"])


class ChangeTests(AppointmentTestCase):
    def setUp(self):
        super().setUp()
        self.appointment = factories.make_appointment(self.patient, self.doctor, at(9))

    def patch(self, changes, client=None, **extra):
        return (client or self.client).patch(detail_url(self.appointment.pk), changes, format="json", **extra)

    def test_every_allowed_status_transition(self):
        paths = [
            ["arrived", "fulfilled"],
            ["arrived", "cancelled"],
            ["cancelled"],
        ]
        for number, path in enumerate(paths):
            with self.subTest(path=path):
                patient = factories.make_patient(self.owner)
                appointment = factories.make_appointment(patient, self.doctor, at(12 + number))
                for target in path:
                    response = self.client.patch(detail_url(appointment.pk), {"status": target}, format="json")
                    self.assertEqual((response.status_code, response.json()["status"]), (200, target))

    def test_a_no_show_only_once_the_start_has_passed(self):
        early = self.patch({"status": "noshow"})
        self.assertEqual((early.status_code, early.json()["code"]), (409, "invalid_transition"))
        with frozen_now(at(9, 1)):
            late = self.patch({"status": "noshow"})
        self.assertEqual((late.status_code, late.json()["status"]), (200, "noshow"))

    def test_every_other_transition_is_a_409_invalid_transition(self):
        refused = {
            "booked": ["fulfilled"],
            "arrived": ["booked", "noshow"],
            "fulfilled": ["booked", "arrived", "cancelled", "noshow"],
            "cancelled": ["booked", "arrived", "fulfilled", "noshow"],
            "noshow": ["booked", "arrived", "fulfilled", "cancelled"],
        }
        for current, targets in refused.items():
            for target in targets:
                with self.subTest(current=current, target=target):
                    Appointment.objects.filter(pk=self.appointment.pk).update(status=current)
                    response = self.patch({"status": target})
                    self.assertEqual(response.status_code, status.HTTP_409_CONFLICT, response.content)
                    self.assertEqual(response.json()["code"], "invalid_transition")
                    self.assertEqual(Appointment.objects.get(pk=self.appointment.pk).status, current)

    def test_a_status_change_goes_alone(self):
        response = self.patch({"status": "arrived", "reason": "late"})
        self.assertEqual((response.status_code, list(response.json())), (400, ["status"]))

    def test_while_booked_times_and_reason_change_with_every_rule_checked_again(self):
        factories.make_appointment(self.second_patient, self.doctor, at(10))

        moved = self.patch({"start": iso(at(9, 30)), "end": iso(at(9, 55)), "reason": "Moved"})
        clash = self.patch({"start": iso(at(9, 45)), "end": iso(at(10, 15))})
        past = self.patch({"start": "2020-01-01T09:00:00Z", "end": "2020-01-01T09:30:00Z"})
        too_short = self.patch({"end": iso(at(9, 31))})

        self.assertEqual(moved.status_code, status.HTTP_200_OK, moved.content)
        self.assertEqual(
            (moved.json()["start"], moved.json()["end"], moved.json()["reason"]),
            (iso(at(9, 30)), iso(at(9, 55)), "Moved"),
        )
        self.assertEqual(clash.json()["code"], "overlap")
        self.assertEqual(list(past.json()), ["start"])
        self.assertEqual(list(too_short.json()), ["end"])
        self.assertEqual(HistoricalAppointment.objects.filter(id=self.appointment.pk).count(), 2)

    def test_a_move_to_a_full_day_is_refused_unless_overbooked_by_staff(self):
        tuesday = MONDAY + timedelta(days=1)
        for hour in (8, 9, 10):
            factories.make_appointment(factories.make_patient(self.owner), self.doctor, at(hour, 0, tuesday))
        move = {"start": iso(at(14, 0, tuesday)), "end": iso(at(14, 30, tuesday))}

        self.assertEqual(self.patch(move).json()["code"], "fully_booked")
        staff = self.patch({**move, "overbook": True}, client=factories.client_for(self.staff))
        self.assertEqual((staff.status_code, staff.json()["overbooked"]), (200, True))

    def test_only_a_booked_appointment_is_rescheduled(self):
        self.patch({"status": "arrived"})
        response = self.patch({"reason": "changed"})
        self.assertEqual((response.status_code, response.json()["code"]), (409, "not_editable"))

    def test_an_etag_guards_against_lost_updates(self):
        etag = self.client.get(detail_url(self.appointment.pk))["ETag"]
        self.assertEqual(self.patch({"reason": "one"}, HTTP_IF_MATCH=etag).status_code, 200)
        stale = self.patch({"reason": "two"}, HTTP_IF_MATCH=etag)
        self.assertEqual(stale.status_code, status.HTTP_412_PRECONDITION_FAILED)
        self.assertEqual(Appointment.objects.get(pk=self.appointment.pk).reason, "one")

    def test_deleting_the_patient_cancels_its_future_bookings_and_a_restore_keeps_them_cancelled(self):
        past = factories.make_appointment(
            self.patient, self.doctor, datetime(2020, 1, 6, 9, tzinfo=UTC), status="fulfilled"
        )
        self.assertEqual(self.client.delete(reverse("patient-detail", args=[self.patient.pk])).status_code, 204)

        self.appointment.refresh_from_db()
        past.refresh_from_db()
        self.assertEqual((self.appointment.status, past.status), ("cancelled", "fulfilled"))
        self.assertEqual(
            list(
                HistoricalAppointment.objects.filter(id=self.appointment.pk)
                .order_by("history_id")
                .values_list("status", flat=True)
            ),
            ["booked", "cancelled"],
        )
        factories.client_for(self.staff).post(reverse("patient-restore", args=[self.patient.pk]))
        self.appointment.refresh_from_db()
        self.assertEqual(self.appointment.status, "cancelled")

    def test_a_doctor_with_future_bookings_or_records_cannot_be_deleted(self):
        response = self.client.delete(reverse("doctor-detail", args=[self.doctor.pk]))
        self.assertEqual((response.status_code, response.json()["code"]), (409, "doctor_has_bookings"))
        self.patch({"status": "cancelled"})
        response = self.client.delete(reverse("doctor-detail", args=[self.doctor.pk]))
        self.assertEqual((response.status_code, response.json()["code"]), (409, "doctor_has_appointments"))
        free_doctor = factories.make_doctor(self.owner)
        self.assertEqual(self.client.delete(reverse("doctor-detail", args=[free_doctor.pk])).status_code, 204)


class WorkingHoursTests(AppointmentTestCase):
    def url(self, doctor=None):
        return reverse("doctor-working-hours", args=[(doctor or self.doctor).pk])

    def test_the_week_is_replaced_whole_and_read_back_in_order(self):
        week = [
            {"weekday": 2, "start": "14:00", "end": "24:00"},
            {"weekday": 0, "start": "13:00", "end": "17:00"},
            {"weekday": 0, "start": "09:00", "end": "12:30"},
        ]
        response = self.client.put(self.url(), week, format="json")

        expected = [week[2], week[1], week[0]]
        self.assertEqual((response.status_code, response.json()), (200, expected))
        self.assertEqual(factories.client_for(self.other).get(self.url()).json(), expected)
        self.assertEqual(self.client.put(self.url(), [], format="json").json(), [])
        self.assertEqual(self.client.get(self.url()).json(), [])

    def test_overlapping_empty_or_malformed_ranges_are_a_400_and_change_nothing(self):
        kept = [{"weekday": 1, "start": "09:00", "end": "12:00"}]
        self.client.put(self.url(), kept, format="json")
        bad = [
            [{"weekday": 0, "start": "09:00", "end": "12:00"}, {"weekday": 0, "start": "11:00", "end": "13:00"}],
            [{"weekday": 0, "start": "12:00", "end": "12:00"}],
            [{"weekday": 0, "start": "12:00", "end": "11:00"}],
            [{"weekday": 7, "start": "09:00", "end": "12:00"}],
            [{"weekday": 0, "start": "9:00", "end": "12:00"}],
            [{"weekday": 0, "start": "24:00", "end": "24:00"}],
            [{"weekday": 0, "start": "09:00"}],
            {"weekday": 0, "start": "09:00", "end": "12:00"},
            [{"weekday": n % 7, "start": f"{n // 7:02d}:00", "end": f"{n // 7:02d}:30"} for n in range(71)],
        ]
        for week in bad:
            with self.subTest(week=str(week)[:80]):
                response = self.client.put(self.url(), week, format="json")
                self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST, response.content)
                self.assertIsInstance(response.json(), dict)
        ten_a_day = [{"weekday": n % 7, "start": f"{n // 7:02d}:00", "end": f"{n // 7:02d}:30"} for n in range(70)]
        self.assertEqual(len(self.client.put(self.url(), ten_a_day, format="json").json()), 70)
        self.client.put(self.url(), kept, format="json")
        self.assertEqual(self.client.get(self.url()).json(), kept)

    def test_options_describes_the_route_without_changing_anything(self):
        week = [{"weekday": 0, "start": "0", "end": "0"}]
        for url in (self.url(), reverse("doctor-availability", args=[self.doctor.pk])):
            with self.subTest(url=url):
                response = self.client.options(url, week, format="json")
                self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(self.client.get(self.url()).json(), [])

    def test_only_those_who_may_change_the_doctor_set_its_hours(self):
        week = [{"weekday": 0, "start": "09:00", "end": "12:00"}]
        self.assertEqual(factories.client_for(self.other).put(self.url(), week, format="json").status_code, 403)
        self.assertEqual(factories.client_for(self.staff).put(self.url(), week, format="json").status_code, 200)
        self.assertEqual(factories.client_for(None).get(self.url()).status_code, 401)
        self.assertEqual(self.client.get(reverse("doctor-working-hours", args=[10**9])).status_code, 404)


class AvailabilityTests(AppointmentTestCase):
    def url(self, **query):
        return self.client.get(reverse("doctor-availability", args=[self.doctor.pk]), query)

    def test_it_shows_hours_busy_and_free_times_and_what_remains_of_the_limit(self):
        self.client.put(
            reverse("doctor-working-hours", args=[self.doctor.pk]),
            [{"weekday": 0, "start": "09:00", "end": "12:00"}],
            format="json",
        )
        factories.make_appointment(self.others_patient, self.doctor, at(10), 30)
        factories.make_appointment(self.patient, self.doctor, at(10, 30), 30, overbooked=True)
        factories.make_appointment(self.second_patient, self.doctor, at(11), 30, status="cancelled")

        response = self.url(date="2030-06-03")

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(
            response.json(),
            {
                "doctor": self.doctor.pk,
                "date": "2030-06-03",
                "time_zone": "UTC",
                "max_appointments_per_day": 3,
                "booked": 1,
                "remaining": 2,
                "working_hours": [{"start": iso(at(9)), "end": iso(at(12))}],
                "busy": [{"start": iso(at(10)), "end": iso(at(11))}],
                "free": [{"start": iso(at(9)), "end": iso(at(10))}, {"start": iso(at(11)), "end": iso(at(12))}],
            },
        )
        self.assertEqual({key for interval in response.json()["busy"] for key in interval}, {"start", "end"})

    def test_a_doctor_without_hours_works_all_day_and_a_full_day_has_no_free_time(self):
        for hour in (8, 9, 10):
            factories.make_appointment(factories.make_patient(self.owner), self.doctor, at(hour))

        data = self.url(date="2030-06-03").json()

        self.assertEqual(
            data["working_hours"], [{"start": iso(at(0)), "end": iso(at(0, 0, MONDAY + timedelta(days=1)))}]
        )
        self.assertEqual((data["booked"], data["remaining"], data["free"]), (3, 0, []))

    def test_the_date_is_required_and_checked(self):
        for query in ({}, {"date": "2030-02-30"}, {"date": "monday"}):
            with self.subTest(query=query):
                response = self.url(**query)
                self.assertEqual((response.status_code, list(response.json())), (400, ["date"]))


class AppointmentQueryCountTests(ApiTransactionTestCase):
    """The same statements for 2 rows as for 50."""

    def setUp(self):
        super().setUp()
        self.owner = factories.make_user()
        self.client = factories.client_for(self.owner)
        self.client.get(reverse("me"))
        self.doctor = factories.make_doctor(self.owner, max_appointments_per_day=100)

    def add(self, count):
        start = Appointment.objects.count()
        for n in range(start, start + count):
            factories.make_appointment(
                factories.make_patient(self.owner), self.doctor, at(0) + timedelta(minutes=10 * n), 10
            )

    def test_lists_and_availability_run_a_constant_number_of_queries(self):
        urls = {
            LIST_URL: 2,  # COUNT, the page with its audit row
            f"{LIST_URL}?doctor={self.doctor.pk}&date=2030-06-03": 2,
            reverse("doctor-availability", args=[self.doctor.pk]) + "?date=2030-06-03": 4,  # doctor, hours, day, audit
        }
        for rows in (2, 48):
            self.add(rows)
            for url, expected in urls.items():
                with self.subTest(rows=rows, url=url), CaptureQueriesContext(connection) as queries:
                    response = self.client.get(url)
                    self.assertEqual(response.status_code, 200)
                self.assertEqual(len(queries), expected, [q["sql"][:80] for q in queries])
        self.assertEqual(len(self.client.get(LIST_URL).json()), 50)


class RaceTests(ApiTransactionTestCase):
    """Real threads, each with its own database connection, all sent at the same moment."""

    THREADS = 20

    def setUp(self):
        super().setUp()
        self.owner = factories.make_user()
        self.doctor = factories.make_doctor(self.owner, max_appointments_per_day=5)
        self.patients = [factories.make_patient(self.owner) for _ in range(self.THREADS)]
        self.clients = [factories.client_for(self.owner) for _ in range(self.THREADS)]

    def test_the_same_slot_booked_at_once_gives_exactly_one_201(self):
        pairs = list(zip(self.clients, self.patients, strict=True))

        responses = run_concurrently(
            pairs, lambda pair: pair[0].post(LIST_URL, body(pair[1], self.doctor, at(9)), format="json")
        )

        codes = sorted(response.status_code for response in responses)
        self.assertEqual(codes, [201] + [409] * (self.THREADS - 1))
        self.assertEqual({r.json()["code"] for r in responses if r.status_code == 409}, {"overlap"})
        self.assertEqual(Appointment.objects.count(), 1)

    def test_twenty_clients_racing_for_the_last_place_of_a_day_give_exactly_one_winner(self):
        for hour in range(4):
            factories.make_appointment(factories.make_patient(self.owner), self.doctor, at(hour))
        jobs = [
            (client, patient, at(8) + timedelta(minutes=15 * n))
            for n, (client, patient) in enumerate(zip(self.clients, self.patients, strict=True))
        ]

        responses = run_concurrently(
            jobs, lambda job: job[0].post(LIST_URL, body(job[1], self.doctor, job[2], 10), format="json")
        )

        codes = sorted(response.status_code for response in responses)
        self.assertEqual(codes, [201] + [409] * (self.THREADS - 1))
        self.assertEqual({r.json()["code"] for r in responses if r.status_code == 409}, {"fully_booked"})
        self.assertEqual(Appointment.objects.filter(doctor=self.doctor).count(), 5)

    def test_a_reschedule_racing_a_booking_for_the_same_time_lets_exactly_one_through(self):
        moving = factories.make_appointment(self.patients[0], self.doctor, at(9))
        jobs = [
            lambda: self.clients[0].patch(
                detail_url(moving.pk), {"start": iso(at(11)), "end": iso(at(11, 30))}, format="json"
            ),
            lambda: self.clients[1].post(LIST_URL, body(self.patients[1], self.doctor, at(11)), format="json"),
        ]
        responses = run_concurrently(jobs, lambda job: job())

        codes = sorted(response.status_code for response in responses)
        self.assertIn(codes, ([200, 409], [201, 409]))
        self.assertEqual(Appointment.objects.filter(start=at(11), status="booked").count(), 1)
