"""The audit trail, for staff."""

from rest_framework import generics, permissions

from hospital.access import Capability
from hospital.audit import AuditedView
from hospital.filters import AuditEventFilter, QueryFilterBackend, StrictOrderingFilter
from hospital.models import AuditEvent, AuditResource
from hospital.permissions import requires
from hospital.serializers import (
    AuditEventSerializer,
)


class AuditEventListView(AuditedView, generics.ListAPIView):
    """Staff: the audit trail, newest first, filtered by actor, resource, resource id, action and time."""

    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
    permission_classes = [permissions.IsAuthenticated, requires(Capability.REVIEW, "Staff")]
    filterset_class = AuditEventFilter
    filter_backends = [QueryFilterBackend, StrictOrderingFilter]
    ordering_fields = ["id", "at"]
    ordering = ["-id"]
    audit_resource = AuditResource.AUDIT

    def audit_ids(self, response):
        return [], []
