"""Shared serializers: record versions."""

from rest_framework import serializers

from hospital.representation import PlannedSerializer


class FieldChangeSerializer(PlannedSerializer):
    field = serializers.CharField()
    old = serializers.JSONField(allow_null=True, help_text="The value before this version.")
    new = serializers.JSONField(allow_null=True, help_text="The value in this version.")


class VersionSerializer(PlannedSerializer):
    """One saved version of a record: who made it, when, and the fields that changed from the one before."""

    version = serializers.IntegerField(help_text="The record's own version number: 1 for its first, then 2, 3...")
    change = serializers.ChoiceField(choices=["created", "updated", "deleted", "restored"])
    changed_at = serializers.DateTimeField(source="history_date")
    changed_by = serializers.IntegerField(source="history_user_id", allow_null=True, help_text="User id.")
    changes = FieldChangeSerializer(many=True)
