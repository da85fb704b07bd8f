"""Doctor assignments: list, create, one patient's doctors, delete."""

from django.shortcuts import get_object_or_404
from rest_framework import generics
from rest_framework.response import Response

from hospital.access import visible_mappings, visible_patients
from hospital.audit import AuditedView
from hospital.filters import MappingFilter, QueryFilterBackend, StrictOrderingFilter
from hospital.idempotency import IdempotentCreateMixin
from hospital.models import AuditAction, AuditResource, Doctor
from hospital.serializers import (
    MappingCreateSerializer,
    MappingSerializer,
    PatientDoctorsSerializer,
)


class MappingListCreateView(AuditedView, IdempotentCreateMixin, generics.ListCreateAPIView):
    """Doctor assignments of the caller's patients (staff: all), with both sides nested; and assigning."""

    filterset_class = MappingFilter
    audit_in_read = True
    audit_patient_field = "patient_id"
    filter_backends = [QueryFilterBackend, StrictOrderingFilter]
    ordering_fields = ["id", "assigned_at"]
    audit_resource = AuditResource.MAPPING

    def audit_ids(self, response):
        if response.status_code >= 300:
            return [], []
        if isinstance(response.data, list):
            return [row["id"] for row in response.data], [row["patient"]["id"] for row in response.data]
        return [response.data["id"]], [response.data["patient"]]

    def get_queryset(self):
        return visible_mappings(self.request.user).select_related("patient", "doctor")

    def get_serializer_class(self):
        return MappingCreateSerializer if self.request.method == "POST" else MappingSerializer


class PatientDoctorsView(AuditedView, generics.GenericAPIView):
    """The doctors assigned to one of the caller's patients."""

    serializer_class = PatientDoctorsSerializer
    filter_backends = []
    pagination_class = None
    audit_resource = AuditResource.DOCTOR
    audit_action = AuditAction.LIST

    def audit_ids(self, response):
        doctors = response.data["doctors"] if response.status_code < 300 else []
        return [doctor["id"] for doctor in doctors], self.url_ids("patient_id")

    def get(self, request, patient_id):
        patient = get_object_or_404(visible_patients(request.user), pk=patient_id)
        doctors = Doctor.objects.filter(patient_mappings__patient=patient).order_by("patient_mappings__id")
        serializer = self.get_serializer({"id": patient.id, "full_name": patient.full_name, "doctors": doctors})
        return Response(serializer.data)


class MappingDeleteView(AuditedView, generics.DestroyAPIView):
    """Remove a doctor from one of the caller's patients."""

    serializer_class = MappingSerializer
    audit_resource = AuditResource.MAPPING
    deleted_patient_ids = ()

    def get_queryset(self):
        return visible_mappings(self.request.user)

    def perform_destroy(self, instance):
        self.deleted_patient_ids = [instance.patient_id]
        super().perform_destroy(instance)

    def audit_ids(self, response):
        return self.url_ids(), list(self.deleted_patient_ids)
