"""Patients: list, create, detail, soft delete and restore, history and access log."""

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, permissions
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from hospital.access import Capability, can, visible_patients
from hospital.audit import AuditedView
from hospital.conditional import ConditionalRecordMixin, etag_for
from hospital.exceptions import Conflict
from hospital.filters import PatientFilter
from hospital.history import HistoryListView
from hospital.idempotency import IdempotentCreateMixin
from hospital.models import AuditAction, AuditEvent, AuditResource, Patient
from hospital.permissions import PatientDeletion, requires
from hospital.schema import ErrorSerializer
from hospital.serializers import (
    AccessLogEntrySerializer,
    DeletedParameterSerializer,
    PatientSerializer,
    PatientVersionSerializer,
)
from hospital.services import cancel_future_appointments


def patient_for_records(request, pk) -> Patient:
    """A patient whose history or access log the caller may read: their own; any, deleted too, for staff."""
    return get_object_or_404(visible_patients(request.user, deleted=None), pk=pk)


class PatientAuditMixin(AuditedView):
    audit_resource = AuditResource.PATIENT


@extend_schema_view(
    get=extend_schema(
        parameters=[
            OpenApiParameter(
                "deleted",
                OpenApiTypes.BOOL,
                description="Staff only: list deleted patients instead of live ones.",
            )
        ]
    )
)
class PatientListCreateView(PatientAuditMixin, IdempotentCreateMixin, generics.ListCreateAPIView):
    """The patients the caller sees (hospital.access: own, the care team's, the front desk's and staff's all;
    deleted ones with `?deleted=true` for staff), and creating one."""

    serializer_class = PatientSerializer
    filterset_class = PatientFilter
    audit_in_read = True
    audit_patient_field = "id"
    schema_error_responses = {"GET": {"403": "`deleted=true` is for staff only."}}
    search_fields = ["firstname", "lastname", "email"]
    ordering_fields = ["id", "firstname", "lastname", "age", "created_at", "updated_at"]

    def get_queryset(self):
        deleted = False
        if self.request.method == "GET":
            params = DeletedParameterSerializer(data=self.request.query_params)
            params.is_valid(raise_exception=True)
            deleted = params.validated_data["deleted"]
            if deleted and not can(self.request.user, Capability.SEE_DELETED_PATIENTS):
                raise PermissionDenied("Only staff may list deleted patients.")
        return visible_patients(self.request.user, deleted=deleted)

    def perform_create(self, serializer):
        serializer.save(created_by=self.request.user)


class PatientDetailView(PatientAuditMixin, ConditionalRecordMixin, generics.RetrieveUpdateDestroyAPIView):
    """One patient. A patient the caller does not see, or a deleted one, answers 404, exactly like a missing one.

    Everyone who sees a patient may update it. DELETE (its creator, the front desk, staff) keeps the record,
    marked deleted by the caller; staff can restore it.
    """

    serializer_class = PatientSerializer
    permission_classes = [permissions.IsAuthenticated, PatientDeletion]
    audit_in_read = True
    audit_patient_field = "id"

    def get_queryset(self):
        return visible_patients(self.request.user)

    def perform_destroy(self, instance):
        instance.deleted_at = timezone.now()
        instance.deleted_by = self.request.user
        instance.save()
        # Its future bookings are cancelled (each change in the appointment's history); a restore keeps them so.
        cancel_future_appointments(patient=instance, now=instance.deleted_at)


class PatientRestoreView(PatientAuditMixin, generics.GenericAPIView):
    """Staff: bring a deleted patient back, with the doctor assignments it had (those whose doctor still exists)."""

    serializer_class = PatientSerializer
    permission_classes = [permissions.IsAuthenticated, requires(Capability.SEE_DELETED_PATIENTS, "Staff")]
    audit_action = AuditAction.RESTORE

    @extend_schema(
        request=None,
        responses={
            200: PatientSerializer,
            409: OpenApiResponse(ErrorSerializer, description="The patient is not deleted."),
        },
    )
    def post(self, request, pk):
        patient = get_object_or_404(visible_patients(request.user, deleted=None).select_for_update(), pk=pk)
        if not patient.is_deleted:
            raise Conflict("This patient is not deleted.")
        patient.deleted_at = None
        patient.deleted_by = None
        patient.save()
        data = self.get_serializer(patient).data
        return Response(data, headers={"ETag": etag_for(data)})


class PatientHistoryView(PatientAuditMixin, HistoryListView):
    """Every saved version of one patient, newest first, with the fields each one changed."""

    serializer_class = PatientVersionSerializer
    record_serializer_class = PatientSerializer
    audit_action = AuditAction.HISTORY

    def get_record(self):
        return patient_for_records(self.request, self.kwargs["pk"])

    def audit_ids(self, response):
        return self.url_ids(), self.url_ids()


class PatientAccessLogView(PatientAuditMixin, generics.ListAPIView):
    """Who read or changed one patient's record, newest first: every request that touched it (the audit trail)."""

    serializer_class = AccessLogEntrySerializer
    filter_backends = []
    audit_action = AuditAction.ACCESS_LOG

    def get_queryset(self):
        patient = patient_for_records(self.request, self.kwargs["pk"])
        return AuditEvent.objects.filter(patient_ids__contains=[patient.pk]).order_by("-id")

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "patient_id": self.kwargs["pk"]}

    def audit_ids(self, response):
        return self.url_ids(), []
