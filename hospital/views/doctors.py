"""The shared doctor directory and its history."""

from django.shortcuts import get_object_or_404
from rest_framework import generics, permissions

from hospital.audit import AuditedView
from hospital.conditional import ConditionalRecordMixin
from hospital.filters import DoctorFilter
from hospital.history import HistoryListView
from hospital.idempotency import IdempotentCreateMixin
from hospital.models import AuditAction, AuditResource, Doctor
from hospital.permissions import IsCreatorOrStaffForWrites
from hospital.serializers import (
    DoctorSerializer,
    DoctorVersionSerializer,
)


class DoctorAuditMixin(AuditedView):
    audit_resource = AuditResource.DOCTOR


class DoctorListCreateView(DoctorAuditMixin, IdempotentCreateMixin, generics.ListCreateAPIView):
    """The shared doctor directory, and adding a doctor to it."""

    queryset = Doctor.objects.all()
    serializer_class = DoctorSerializer
    filterset_class = DoctorFilter
    search_fields = ["firstname", "lastname", "email"]
    ordering_fields = ["id", "firstname", "lastname", "specialization", "created_at", "updated_at"]

    def perform_create(self, serializer):
        serializer.save(created_by=self.request.user)


class DoctorDetailView(DoctorAuditMixin, ConditionalRecordMixin, generics.RetrieveUpdateDestroyAPIView):
    """One doctor: readable by everyone signed in; changed or deleted by its creator or staff.

    Deleting a doctor removes its assignments, whoever's patients they belong to: the doctor directory is shared,
    and an assignment to a deleted doctor means nothing. The audit row names every patient who lost one, so
    the removal shows in each of their access logs; refusing instead would tell the deleter that patients
    they cannot see exist. The history keeps every version of the doctor and of each assignment.
    """

    queryset = Doctor.objects.all()
    serializer_class = DoctorSerializer
    permission_classes = [permissions.IsAuthenticated, IsCreatorOrStaffForWrites]
    unassigned_patient_ids: list[int] = []

    def perform_destroy(self, instance):
        # The doctor's row is locked (ConditionalRecordMixin): no assignment to it can be added meanwhile.
        self.unassigned_patient_ids = sorted(instance.patient_mappings.values_list("patient_id", flat=True))
        super().perform_destroy(instance)

    def audit_ids(self, response):
        if self.request.method == "DELETE":
            return self.url_ids(), self.unassigned_patient_ids
        return super().audit_ids(response)


class DoctorHistoryView(DoctorAuditMixin, HistoryListView):
    """Every saved version of one doctor, newest first, with the fields each one changed."""

    serializer_class = DoctorVersionSerializer
    record_serializer_class = DoctorSerializer
    audit_action = AuditAction.HISTORY

    def get_record(self):
        return get_object_or_404(Doctor, pk=self.kwargs["pk"])

    def audit_ids(self, response):
        return self.url_ids(), []
