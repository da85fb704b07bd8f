"""The audit trail, for staff."""

from rest_framework import serializers

from hospital.models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "at",
            "actor",
            "action",
            "resource_type",
            "resource_ids",
            "patient_ids",
            "outcome",
            "client_ip",
            "request_id",
            "client_request_id",
        ]
        read_only_fields = fields
