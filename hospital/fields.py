"""Serializer fields that take a JSON value only in the type the OpenAPI schema documents.

DRF converts scalars on the way in (`0` into the string "0", "36" into the integer 36). The schema
promises `"type": "string"` and `"type": "integer"`, so a value of another type is a 400 naming the field
rather than a silent conversion: clients find their bug, and what is stored is what was meant.
"""

from rest_framework import serializers


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
class StrictModelSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {
        model_field: STRICT_FIELDS.get(field, field)
        for model_field, field in serializers.ModelSerializer.serializer_field_mapping.items()
    }
