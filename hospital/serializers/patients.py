"""Patients, their versions and their access log."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from hospital.access import visible_patients
from hospital.fields import StrictModelSerializer
from hospital.models import AuditEvent, AuditResource, Patient
from hospital.representation import PlannedModelSerializer
from hospital.serializers.common import VersionSerializer

PATIENT_GONE = "This patient no longer exists."


class PatientSerializer(StrictModelSerializer):
    created_by = serializers.IntegerField(source="created_by_id", read_only=True)
    deleted_by = serializers.IntegerField(source="deleted_by_id", read_only=True, allow_null=True)

    class Meta:
        model = Patient
        fields = [
            "id",
            "firstname",
            "lastname",
            "age",
            "gender",
            "email",
            "created_by",
            "created_at",
            "updated_at",
            "deleted_at",
            "deleted_by",
        ]
        read_only_fields = ["id", "created_at", "updated_at", "deleted_at"]


class PatientVersionSerializer(VersionSerializer):
    record = PatientSerializer(help_text="The patient as this version left it.")


class AccessLogEntrySerializer(PlannedModelSerializer):
    """A request that touched one patient (`context["patient_id"]`). The requester's address is left out: it is
    for staff only. So are the other records the same request touched: a staff member's list of patients must
    not show one owner the ids of another's."""

    resource_ids = serializers.SerializerMethodField(
        help_text="This patient's id for patient events; a doctor event's doctor ids (a shared directory); other "
        "records' ids only when the request touched this patient alone."
    )

    class Meta:
        model = AuditEvent
        fields = ["id", "at", "actor", "action", "resource_type", "resource_ids", "outcome", "request_id"]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_resource_ids(self, event) -> list[int]:
        patient_id = self.context["patient_id"]
        if event.resource_type == AuditResource.PATIENT:
            return [patient_id]
        if event.resource_type == AuditResource.DOCTOR or event.patient_ids == [patient_id]:
            return event.resource_ids
        return []


class DeletedParameterSerializer(serializers.Serializer):
    deleted = serializers.BooleanField(required=False, default=False)


class VisiblePatientField(serializers.PrimaryKeyRelatedField):
    """A patient id the caller may see; any other id reads as "does not exist", revealing nothing."""

    def get_queryset(self):
        return visible_patients(self.context["request"].user)
