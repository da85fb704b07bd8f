"""Representations at the cost of reading the values: a plan per serializer class, compiled once from its own fields.

DRF's `Serializer.to_representation` rebuilds the serializer's fields for every request, then for every row asks
each field for its attribute (with its exception handling) and converts it (a date-time looks its zone up each
time). On a 50-row page that was a quarter of the request. The representation rules stay in the serializers:
the plan is read off their declared fields, once per class, and does per row only what those fields would do
with that row's values. A field whose conversion the plan does not know is asked itself (the same field
instance, built once), so nothing is lost, only slower. Tests compare the plan with DRF's own
`to_representation` for every serializer, on rows with nulls, unicode and every field type.

A serializer opts in with `PlannedRepresentation` (before DRF's class in its bases).
"""

from collections.abc import Callable, Mapping
from datetime import UTC
from functools import cache
from operator import attrgetter

from django.core.exceptions import ObjectDoesNotExist
from rest_framework import fields as drf_fields
from rest_framework import serializers
from rest_framework.fields import SkipField, get_attribute
from rest_framework.settings import api_settings

# (key, read, convert, nested plan, kind, field): kind is "value", "method", "one" (a nested serializer) or "many".
Step = tuple[str, Callable, Callable | None, "Plan | None", str, object]


def iso_datetime(value):
    """DRF's ISO 8601 output in UTC: `...+00:00` written `Z`."""
    if isinstance(value, str):
        return value
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def iso_date(value):
    return value if isinstance(value, str) else value.isoformat()


def converter(field) -> Callable | None:
    """The conversion `field.to_representation` makes, for the field classes whose rules are plain; None: ask the
    field. Exact classes only, or subclasses that leave `to_representation` alone (our strict fields)."""
    cls = type(field)

    def is_a(drf_class) -> bool:
        return isinstance(field, drf_class) and cls.to_representation is drf_class.to_representation

    if is_a(drf_fields.BooleanField):
        return lambda value: value if type(value) is bool else field.to_representation(value)
    if is_a(drf_fields.IntegerField):
        return int
    big_integer = getattr(drf_fields, "BigIntegerField", None)
    if big_integer is not None and is_a(big_integer):
        if getattr(field, "coerce_to_string", api_settings.COERCE_BIGINT_TO_STRING):
            return str
        return int
    if is_a(drf_fields.ChoiceField):
        choices = field.choice_strings_to_values
        return lambda value: value if value == "" else choices.get(str(value), value)
    if is_a(drf_fields.CharField) or is_a(drf_fields.EmailField) or is_a(drf_fields.IPAddressField):
        return str
    if is_a(drf_fields.DateTimeField):
        utc = getattr(field, "timezone", None)
        output_format = getattr(field, "format", drf_fields.empty)
        if output_format in (drf_fields.empty, drf_fields.ISO_8601) and utc in (None, UTC):
            return lambda value: iso_datetime(value) if value else None
        return None
    if is_a(drf_fields.DateField):
        output_format = getattr(field, "format", drf_fields.empty)
        if output_format in (drf_fields.empty, drf_fields.ISO_8601):
            return lambda value: iso_date(value) if value else None
        return None
    if is_a(drf_fields.ListField):
        item = converter(field.child) or field.child.to_representation
        return lambda values: [item(value) if value is not None else None for value in values]
    if is_a(drf_fields.JSONField) and not field.binary:
        return lambda value: value
    return None


def getter(field) -> Callable:
    """Reads the field's source from a row (an object; dict rows take DRF's own path, in `represent`), as
    `Field.get_attribute` does."""
    attrs = field.source_attrs
    if not attrs:  # source="*": the row itself
        return lambda instance: instance
    if len(attrs) > 1:
        return lambda instance: get_attribute(instance, attrs)
    by_attribute = attrgetter(attrs[0])

    def read(instance):
        try:
            value = by_attribute(instance)
        except ObjectDoesNotExist:
            return None
        return get_attribute(instance, attrs) if callable(value) else value

    return read


class Plan:
    """The steps that turn one row into the serializer's representation."""

    def __init__(self, serializer_class):
        template = serializer_class()
        self.steps: list[Step] = []
        # A method field reads the request's own serializer (its context): such a plan is not used nested.
        self.reads_serializer = False
        for field in template._readable_fields:
            name = field.field_name
            if isinstance(field, serializers.SerializerMethodField):
                self.steps.append((name, attrgetter(field.method_name), None, None, "method", field))
                self.reads_serializer = True
            elif isinstance(field, serializers.ListSerializer):
                self.steps.append((name, getter(field), None, self.nested(field.child), "many", field))
            elif isinstance(field, serializers.BaseSerializer):
                self.steps.append((name, getter(field), None, self.nested(field), "one", field))
            else:
                convert = converter(field) or field.to_representation
                self.steps.append((name, getter(field), convert, None, "value", field))
        self.sources = {name: field.source_attrs for name, field in template.fields.items()}

    @staticmethod
    def nested(serializer) -> "Plan | None":
        plan = plan_of(type(serializer))
        return None if plan.reads_serializer else plan

    def represent(self, instance, serializer) -> dict:
        mapping = isinstance(instance, Mapping)  # a dict row (a history version): DRF's own attribute path
        representation = {}
        for name, read, convert, nested, kind, field in self.steps:
            if kind == "method":
                representation[name] = read(serializer)(instance)
                continue
            try:
                if mapping:
                    attrs = self.sources[name]
                    value = get_attribute(instance, attrs) if attrs else instance
                else:
                    value = read(instance)
            except (KeyError, AttributeError):
                # Missing: the field decides (its default, null, or left out), as in DRF.
                try:
                    value = field.get_attribute(instance)
                except SkipField:
                    continue
            if value is None:
                representation[name] = None
            elif kind == "value":
                representation[name] = convert(value)
            elif nested is None:  # a nested serializer with method fields: its own, request-bound instance
                representation[name] = serializer.fields[name].to_representation(value)
            elif kind == "many":
                items = value.all() if hasattr(value, "all") else value
                representation[name] = [nested.represent(item, None) for item in items]
            else:
                representation[name] = nested.represent(value, None)
        return representation


@cache
def plan_of(serializer_class) -> Plan:
    return Plan(serializer_class)


class PlannedRepresentation:
    """For serializers: `to_representation` by the class's compiled plan (hospital.representation)."""

    def to_representation(self, instance):
        return plan_of(type(self)).represent(instance, self)


# Bases for the API's serializers. (Comments, not docstrings: drf-spectacular would publish a docstring as the
# description of every schema built on them.)
class PlannedSerializer(PlannedRepresentation, serializers.Serializer):
    pass


class PlannedModelSerializer(PlannedRepresentation, serializers.ModelSerializer):
    pass
