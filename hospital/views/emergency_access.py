"""Emergency access ("break the glass"): a clinician's time-boxed, reasoned, audited access to any live patient,
and the staff's review queue of every grant."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions, status
from rest_framework.response import Response

from hospital.access import Capability
from hospital.audit import AuditedView
from hospital.filters import EmergencyAccessFilter, QueryFilterBackend
from hospital.models import AuditAction, AuditResource, EmergencyAccessGrant, Patient
from hospital.permissions import requires
from hospital.serializers import EmergencyAccessGrantSerializer, EmergencyAccessRequestSerializer
from hospital.services import grant_emergency_access


class PatientEmergencyAccessView(AuditedView, generics.GenericAPIView):
    """A clinician opens any live patient's record for EMERGENCY_ACCESS_MINUTES, saying why. Others get 403
    (before the patient is looked up: whether it exists is not theirs to learn); a missing or deleted patient
    404. The grant shows in the patient's access log and in the staff's review queue."""

    serializer_class = EmergencyAccessRequestSerializer
    permission_classes = [permissions.IsAuthenticated, requires(Capability.EMERGENCY_ACCESS, "Clinicians")]
    audit_resource = AuditResource.PATIENT
    audit_action = AuditAction.EMERGENCY_ACCESS

    def audit_ids(self, response):
        return self.url_ids(), self.url_ids()

    @extend_schema(responses={201: EmergencyAccessGrantSerializer})
    def post(self, request, pk):
        patient = get_object_or_404(Patient.objects.filter(deleted_at__isnull=True), pk=pk)
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        grant = grant_emergency_access(patient=patient, user=request.user, reason=body.validated_data["reason"])
        return Response(EmergencyAccessGrantSerializer(grant).data, status=status.HTTP_201_CREATED)


class EmergencyAccessListView(AuditedView, generics.ListAPIView):
    """Staff: every emergency access grant, newest first, to review; `?user=`, `?patient=`, `?active=true`."""

    queryset = EmergencyAccessGrant.objects.order_by("-granted_at", "-id")
    serializer_class = EmergencyAccessGrantSerializer
    permission_classes = [permissions.IsAuthenticated, requires(Capability.REVIEW, "Staff")]
    filterset_class = EmergencyAccessFilter
    audit_in_read = True
    audit_patient_field = "patient_id"
    filter_backends = [QueryFilterBackend]
    audit_resource = AuditResource.EMERGENCY_ACCESS

    def audit_ids(self, response):
        if response.status_code >= 300:
            return [], []
        return [row["id"] for row in response.data], [row["patient"] for row in response.data]
