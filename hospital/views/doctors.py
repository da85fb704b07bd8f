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

    Deleting a doctor removes its assignments; its history keeps every version.
    """

    queryset = Doctor.objects.all()
    serializer_class = DoctorSerializer
    permission_classes = [permissions.IsAuthenticated, IsCreatorOrStaffForWrites]


class DoctorHistoryView(DoctorAuditMixin, HistoryListView):
    """Every saved version of one doctor, newest first, with the fields each one changed."""

    serializer_class = DoctorVersionSerializer
    record_serializer_class = DoctorSerializer
    audit_action = AuditAction.HISTORY

    def get_record(self):
        return get_object_or_404(Doctor, pk=self.kwargs["pk"])

    def audit_ids(self, response):
        return self.url_ids(), []
