"""Shared serializer helpers: constraint violations as field errors, record versions."""

from django.db import IntegrityError, transaction
from rest_framework import serializers

from hospital.exceptions import violated_constraint


def save_or_field_error(save, errors_by_constraint: dict[str, dict]):
    """Run `save()` in a transaction; turn a known constraint violation into a 400 naming the field.

    Uniqueness is checked by the database alone, so that two racing requests get one success and one
    400, and the friendly message comes from the same rule that enforces it.
    """
    try:
        with transaction.atomic():
            return save()
    except IntegrityError as error:
        field_error = errors_by_constraint.get(violated_constraint(error))
        if field_error is None:
            raise
        raise serializers.ValidationError(field_error) from None


class FieldChangeSerializer(serializers.Serializer):
    field = serializers.CharField()
    old = serializers.JSONField(allow_null=True, help_text="The value before this version.")
    new = serializers.JSONField(allow_null=True, help_text="The value in this version.")


class VersionSerializer(serializers.Serializer):
    """One saved version of a record: who made it, when, and the fields that changed from the one before."""

    version = serializers.IntegerField(help_text="The record's own version number: 1 for its first, then 2, 3...")
    change = serializers.ChoiceField(choices=["created", "updated", "deleted", "restored"])
    changed_at = serializers.DateTimeField(source="history_date")
    changed_by = serializers.IntegerField(source="history_user_id", allow_null=True, help_text="User id.")
    changes = FieldChangeSerializer(many=True)
