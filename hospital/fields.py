"""Serializer fields that take a JSON value only in the type the OpenAPI schema documents.

DRF converts scalars on the way in (`0` into the string "0", "36" into the integer 36). The schema
promises `"type": "string"` and `"type": "integer"`, so a value of another type is a 400 naming the field
rather than a silent conversion: clients find their bug, and what is stored is what was meant.
"""

from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from hospital.representation import PlannedModelSerializer


class JsonStringMixin:
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class JsonNumberMixin:
    def to_internal_value(self, data):
        # bool is an int in Python, but true is not a number in JSON.
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(JsonStringMixin, serializers.CharField):
    pass


class StrictBooleanField(serializers.BooleanField):
    """true or false, not "yes", 1 or "on"."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictEmailField(JsonStringMixin, serializers.EmailField):
    pass


class StrictIntegerField(JsonNumberMixin, serializers.IntegerField):
    pass


STRICT_FIELDS = {
    serializers.CharField: StrictCharField,
    serializers.EmailField: StrictEmailField,
    serializers.IntegerField: StrictIntegerField,
}


# A ModelSerializer whose text and whole-number model fields use the strict fields above. (A comment, not a
# docstring: drf-spectacular would publish a docstring as the description of every schema built on it.)
class StrictModelSerializer(PlannedModelSerializer):
    serializer_field_mapping = {
        model_field: STRICT_FIELDS.get(field, field)
        for model_field, field in serializers.ModelSerializer.serializer_field_mapping.items()
    }


AWARE_DATETIME_HELP = "ISO 8601 date-time with an explicit UTC offset, e.g. 2026-03-29T09:30:00+02:00 or ...Z."


def parse_aware_datetime(text: str) -> datetime:
    """An ISO 8601 date-time with an explicit offset, as the same instant in UTC; ValueError (with a message
    for the client) otherwise. Converting here, not in the database, keeps offsets PostgreSQL refuses (beyond
    +-15:59) and instants outside year 1..9999 in UTC from reaching it."""
    try:
        value = parse_datetime(text)
    except ValueError:
        value = None
    if value is None:
        raise ValueError("Enter a valid ISO 8601 date-time, e.g. 2026-03-29T09:30:00+02:00.")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("Include a UTC offset (Z or +hh:mm): a date-time without one names no instant.")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("This date-time is out of range (years 1 to 9999 in UTC).") from None


class AwareDateTimeField(serializers.DateTimeField):
    """A date-time that must carry its offset; stored and returned in UTC."""

    def to_internal_value(self, value):
        if not isinstance(value, str):
            self.fail("invalid", format=AWARE_DATETIME_HELP)
        try:
            return parse_aware_datetime(value)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None
