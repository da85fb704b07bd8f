"""Appointments: list, book, read, reschedule and change status. Never deleted: cancelled instead."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics

from hospital.access import patient_scope
from hospital.audit import AuditedView
from hospital.conditional import ConditionalRecordMixin
from hospital.filters import AppointmentFilter, QueryFilterBackend, StrictOrderingFilter
from hospital.idempotency import IdempotentCreateMixin
from hospital.models import Appointment, AuditAction, AuditResource
from hospital.serializers import (
    AppointmentConflictSerializer,
    AppointmentCreateSerializer,
    AppointmentSerializer,
    AppointmentUpdateSerializer,
)

CONFLICT = OpenApiResponse(
    AppointmentConflictSerializer,
    description="`overlap` (with every clashing appointment), `fully_booked`, `invalid_transition` or `not_editable`.",
)


def visible_appointments(user):
    """The appointments of the patients `user` sees: the patient visibility rule, applied through the patient."""
    return Appointment.objects.filter(patient_scope(user, via="patient__"))


class AppointmentAuditMixin(AuditedView):
    audit_resource = AuditResource.APPOINTMENT

    def audit_ids(self, response):
        data = getattr(response, "data", None)
        if response.status_code < 300 and isinstance(data, list):
            return [row["id"] for row in data], [row["patient"] for row in data]
        if response.status_code < 300 and isinstance(data, dict) and "patient" in data:
            return [data["id"]], [data["patient"]]
        return self.url_ids(), self.touched_patient_ids()

    def touched_patient_ids(self) -> list[int]:
        """A refused write still touched its patient (its appointments were searched for clashes)."""
        record = getattr(self, "audited_record", None)
        return [record.patient_id] if record is not None else []

    def get_audit_action(self):
        if self.request.method in ("POST", "PATCH") and getattr(self, "overbooked", False):
            return AuditAction.OVERBOOK
        return super().get_audit_action()


@extend_schema_view(
    post=extend_schema(
        request=AppointmentCreateSerializer,
        responses={201: AppointmentSerializer, 409: CONFLICT},
    )
)
class AppointmentListCreateView(AppointmentAuditMixin, IdempotentCreateMixin, generics.ListCreateAPIView):
    """Appointments of the patients the caller sees, by start time; and booking one."""

    filterset_class = AppointmentFilter
    audit_in_read = True
    audit_patient_field = "patient_id"
    filter_backends = [QueryFilterBackend, StrictOrderingFilter]
    ordering_fields = ["start", "created_at"]
    schema_error_responses = {"POST": {"403": "`overbook: true` is for staff and the front desk only."}}
    ordering = ["start"]

    def get_queryset(self):
        return visible_appointments(self.request.user)

    def get_serializer_class(self):
        return AppointmentCreateSerializer if self.request.method == "POST" else AppointmentSerializer

    def perform_create(self, serializer):
        self.audited_record = None
        patient = serializer.validated_data["patient"]
        self.audit_patient_id = patient.pk
        appointment = serializer.save()
        self.overbooked = appointment.overbooked

    def touched_patient_ids(self):
        patient_id = getattr(self, "audit_patient_id", None)
        return [patient_id] if patient_id is not None else []


@extend_schema_view(
    patch=extend_schema(
        request=AppointmentUpdateSerializer,
        responses={200: AppointmentSerializer, 409: CONFLICT},
    )
)
class AppointmentDetailView(AppointmentAuditMixin, ConditionalRecordMixin, generics.RetrieveUpdateAPIView):
    """One appointment. PATCH reschedules (while booked) or moves the status forward. DELETE is refused (405):
    appointments are cancelled, never erased."""

    http_method_names = ["get", "patch", "head", "options"]
    audit_in_read = True
    audit_patient_field = "patient_id"
    schema_error_responses = {"PATCH": {"403": "`overbook: true` is for staff and the front desk only."}}

    def get_queryset(self):
        return visible_appointments(self.request.user)

    def get_serializer_class(self):
        return AppointmentUpdateSerializer if self.request.method == "PATCH" else AppointmentSerializer

    def get_object(self):
        self.audited_record = super().get_object()
        return self.audited_record

    def perform_update(self, serializer):
        appointment = serializer.save()
        self.overbooked = appointment.overbooked and serializer.validated_data.get("overbook", False)
