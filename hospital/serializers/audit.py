"""The audit trail, for staff."""

from hospital.models import AuditEvent
from hospital.representation import PlannedModelSerializer


class AuditEventSerializer(PlannedModelSerializer):
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
