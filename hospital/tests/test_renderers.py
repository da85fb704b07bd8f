"""The API's JSON renderer (hospital.renderers) writes exactly the bytes DRF's JSONRenderer writes: on tricky data
directly, and on real answers through HTTP."""

import enum
import uuid
from collections import OrderedDict
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import models
from django.test import SimpleTestCase
from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ErrorDetail
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList

from hospital.renderers import FastJSONRenderer, orjson_writes_the_same
from hospital.tests import factories
from hospital.tests.base import ApiTestCase

TRICKY_TEXT = 'Zoë 山田 🩺 line\u2028sep\u2029 "quoted" back\\slash / tab\t nl\n cr\r \x00 \x1f \x7f \x80 \u2027\u202a'
WHEN = datetime(2030, 6, 3, 9, 30, 15, 123456, tzinfo=UTC)


class Colour(models.TextChoices):
    RED = "red", "Red"


class Size(enum.IntEnum):
    SMALL = 1


TRICKY_DATA = {
    "text": TRICKY_TEXT,
    "empty": ["", {}, [], ()],
    "nested": {"a": [{"b": [None, True, False, 0, -1]}, (1, "two", [3])], "c": {"d": {"e": TRICKY_TEXT}}},
    "integers": [0, -(2**63), 2**63 - 1, 2**64, -(2**70)],
    "floats": [0.1, 1e-05, 1e16, 2.5e-07, -0.0, 1e300],
    "decimal": [Decimal("1.10"), Decimal("-0.000001")],
    "datetimes": [
        WHEN,
        WHEN.replace(microsecond=0),
        WHEN.replace(tzinfo=None),
        WHEN.astimezone(ZoneInfo("Europe/London")).replace(month=1),
        WHEN.astimezone(ZoneInfo("Asia/Kolkata")),
        WHEN.replace(tzinfo=timezone(timedelta(hours=5, minutes=30, seconds=15))),
    ],
    "dates": [date(2030, 6, 3), time(9, 30), time(9, 30, 15, 5), timedelta(days=1, seconds=3)],
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "lazy": gettext_lazy("Not found."),
    "error": ErrorDetail("This field is required.", code="required"),
    "choices": [Colour.RED, Size.SMALL],
    "returned": ReturnDict({"x": ReturnList([1, "y"], serializer=None)}, serializer=None),
    "bytes": b"raw",
    "set": {"only"},
}


def moved_ordered_dict() -> OrderedDict:
    """An OrderedDict whose order is no longer its insertion order (orjson would write the insertion order)."""
    ordered = OrderedDict(first=1, second=2)
    ordered.move_to_end("first")
    return ordered


class RendererBytesTests(SimpleTestCase):
    def assert_same_bytes(self, data, media_type=None, context=None):
        expected = JSONRenderer().render(data, media_type, context)
        self.assertEqual(FastJSONRenderer().render(data, media_type, context), expected)
        return expected

    def test_every_kind_of_value_alone_and_together(self):
        for key, value in TRICKY_DATA.items():
            with self.subTest(key):
                self.assert_same_bytes(value)
                self.assert_same_bytes({key: value})
        self.assert_same_bytes(TRICKY_DATA)
        self.assert_same_bytes([TRICKY_DATA, None, [TRICKY_DATA]])

    def test_line_and_paragraph_separators_escaped_as_drf_does(self):
        rendered = self.assert_same_bytes({"text": "a\u2028b\u2029c"})
        self.assertEqual(rendered, b'{"text":"a\\u2028b\\u2029c"}')

    def test_orders_keys_and_refusals_as_drf_does(self):
        self.assert_same_bytes(moved_ordered_dict())
        self.assert_same_bytes({2: "int key", True: "bool key", None: "none key", "s": "str key"})
        for refused in ({"nan": float("nan")}, {"inf": [float("inf")]}, {"aware": time(9, tzinfo=UTC)}, object()):
            with self.subTest(refused=refused):
                with self.assertRaises((ValueError, TypeError)) as drf:
                    JSONRenderer().render(refused)
                with self.assertRaises(type(drf.exception)):
                    FastJSONRenderer().render(refused)

    def test_nothing_indentation_and_other_formats_as_drf_does(self):
        self.assertEqual(FastJSONRenderer().render(None), b"")
        self.assert_same_bytes(TRICKY_DATA, "application/json; indent=4")
        self.assert_same_bytes(TRICKY_DATA, None, {"indent": 2})

    def test_orjson_renders_plain_records_and_leaves_the_rest_to_drf(self):
        record = {"id": 1, "name": TRICKY_TEXT, "deleted_at": None, "active": True, "tags": ["a"], "when": WHEN}
        self.assertTrue(orjson_writes_the_same([record, {**record, "id": 2}]))
        self.assertTrue(orjson_writes_the_same(TRICKY_DATA["returned"]))
        for other in (0.5, Decimal(1), moved_ordered_dict(), {"nested": [{"deep": 1.5}]}, Size.SMALL, {"s"}):
            with self.subTest(other=other):
                self.assertFalse(orjson_writes_the_same(other))


class RenderedAnswersTests(ApiTestCase):
    def test_answers_are_drf_bytes(self):
        staff = factories.make_user(is_staff=True)
        doctor = factories.make_doctor(staff, firstname="Zoë 山田 🩺 \u2029", email="")
        patient = factories.make_patient(staff, firstname="Zoë \u2028", lastname='O"Brien \\', email="", age=0)
        factories.make_mapping(patient, doctor)
        factories.make_appointment(patient, doctor, WHEN, reason=TRICKY_TEXT.replace("\x00", ""))
        self.client.force_authenticate(staff)
        for url in (
            "/api/patients/",
            f"/api/patients/{patient.pk}/",
            "/api/doctors/",
            "/api/mappings/",
            f"/api/mappings/{patient.pk}/",
            "/api/appointments/",
            "/api/patients/?age_min=nope",
            "/api/patients/999999/",
        ):
            with self.subTest(url):
                response = self.client.get(url)
                self.assertIsInstance(response.accepted_renderer, FastJSONRenderer)
                self.assertEqual(response.content, JSONRenderer().render(response.data))
        self.assertIn(b"\\u2028", self.client.get("/api/patients/").content)
