"""The API's views: generic DRF views, each scoped to what the caller may see in `get_queryset()`."""

from django.db import DatabaseError, connection
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, permissions, status
from rest_framework.exceptions import APIException, PermissionDenied
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from hospital.audit import AuditedView
from hospital.conditional import ConditionalRecordMixin, etag_for
from hospital.exceptions import DATABASE_RETRY_AFTER_SECONDS
from hospital.filters import AuditEventFilter, DoctorFilter, MappingFilter, PatientFilter, StrictOrderingFilter
from hospital.history import HistoryListView
from hospital.idempotency import IdempotentCreateMixin
from hospital.models import AuditAction, AuditEvent, AuditResource, Doctor, Patient, PatientDoctorMapping
from hospital.permissions import IsCreatorOrStaffForWrites
from hospital.schema import ErrorSerializer
from hospital.serializers import (
    AccessLogEntrySerializer,
    AuditEventSerializer,
    DeletedParameterSerializer,
    DoctorSerializer,
    DoctorVersionSerializer,
    HealthSerializer,
    LoginSerializer,
    MappingCreateSerializer,
    MappingSerializer,
    MeSerializer,
    PatientDoctorsSerializer,
    PatientSerializer,
    PatientVersionSerializer,
    RefreshTokenSerializer,
    RegisterSerializer,
    TokenPairSerializer,
)
from hospital.services import redeem_refresh_token, rotate_refresh_token

# ---------------------------------------------------------------------------------------------- auth


class AccountAuditMixin(AuditedView):
    """Account events name the account they concern."""

    audit_resource = AuditResource.USER

    def audit_ids(self, response):
        if self.audit_actor_id is not None:
            return [self.audit_actor_id], []
        return super().audit_ids(response)


class RegisterView(AccountAuditMixin, generics.CreateAPIView):
    """Create an account. Throttled per client IP."""

    serializer_class = RegisterSerializer
    authentication_classes = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "register"


class LoginView(AccountAuditMixin, generics.GenericAPIView):
    """Exchange a username and password for an access and a refresh token. Throttled per client IP."""

    serializer_class = LoginSerializer
    authentication_classes = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"
    audit_action = AuditAction.LOGIN

    def get_authenticate_header(self, request):
        return 'Bearer realm="api"'

    @extend_schema(responses={200: TokenPairSerializer})
    def post(self, request):
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except TokenError as error:
            raise InvalidToken(error.args[0]) from None
        self.audit_actor_id = serializer.user.pk
        return Response(serializer.validated_data)


class RefreshView(AccountAuditMixin, generics.GenericAPIView):
    """Exchange a refresh token for a new pair. The old refresh token is then rejected."""

    serializer_class = RefreshTokenSerializer
    authentication_classes = []
    permission_classes = [permissions.AllowAny]
    audit_action = AuditAction.REFRESH

    def get_authenticate_header(self, request):
        """A rejected token is a 401 with a challenge (DRF answers 403 for views without authenticators)."""
        return 'Bearer realm="api"'

    @extend_schema(responses={200: TokenPairSerializer})
    def post(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        refresh = rotate_refresh_token(serializer.validated_data["refresh"])
        self.audit_actor_id = refresh.payload["user_id"]
        return Response({"access": str(refresh.access_token), "refresh": str(refresh)})


class LogoutView(AccountAuditMixin, generics.GenericAPIView):
    """Revoke one of the caller's refresh tokens (access tokens expire on their own)."""

    serializer_class = RefreshTokenSerializer
    audit_action = AuditAction.LOGOUT

    @extend_schema(responses={204: None})
    def post(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        redeem_refresh_token(serializer.validated_data["refresh"], user=request.user)
        self.audit_actor_id = request.user.pk
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(AccountAuditMixin, generics.RetrieveAPIView):
    """The account the access token belongs to."""

    serializer_class = MeSerializer

    def get_object(self):
        return self.request.user


# ------------------------------------------------------------------------------------------ patients


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def patient_for_records(request, pk) -> Patient:
    """A patient whose history or access log the caller may read: their own; any, deleted too, for staff."""
    return get_object_or_404(Patient.objects.visible_to(request.user, deleted=None), pk=pk)


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
    """The caller's patients (staff: everyone's; deleted ones with `?deleted=true`), and creating one."""

    serializer_class = PatientSerializer
    filterset_class = PatientFilter
    schema_error_responses = {"GET": {"403": "`deleted=true` is for staff only."}}
    search_fields = ["firstname", "lastname", "email"]
    ordering_fields = ["id", "firstname", "lastname", "age", "created_at", "updated_at"]

    def get_queryset(self):
        deleted = False
        if self.request.method == "GET":
            params = DeletedParameterSerializer(data=self.request.query_params)
            params.is_valid(raise_exception=True)
            deleted = params.validated_data["deleted"]
            if deleted and not self.request.user.is_staff:
                raise PermissionDenied("Only staff may list deleted patients.")
        return Patient.objects.visible_to(self.request.user, deleted=deleted)

    def perform_create(self, serializer):
        serializer.save(created_by=self.request.user)


class PatientDetailView(PatientAuditMixin, ConditionalRecordMixin, generics.RetrieveUpdateDestroyAPIView):
    """One patient. Another user's patient, or a deleted one, answers 404, exactly like a missing one.

    DELETE keeps the record, marked deleted by the caller; staff can restore it.
    """

    serializer_class = PatientSerializer

    def get_queryset(self):
        return Patient.objects.visible_to(self.request.user)

    def perform_destroy(self, instance):
        instance.deleted_at = timezone.now()
        instance.deleted_by = self.request.user
        instance.save()


class PatientRestoreView(PatientAuditMixin, generics.GenericAPIView):
    """Staff: bring a deleted patient back, with the doctor assignments it had (those whose doctor still exists)."""

    serializer_class = PatientSerializer
    permission_classes = [permissions.IsAdminUser]
    audit_action = AuditAction.RESTORE

    @extend_schema(
        request=None,
        responses={
            200: PatientSerializer,
            409: OpenApiResponse(ErrorSerializer, description="The patient is not deleted."),
        },
    )
    def post(self, request, pk):
        patient = get_object_or_404(Patient.objects.visible_to(request.user, deleted=None).select_for_update(), pk=pk)
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

    def audit_ids(self, response):
        return self.url_ids(), []


# ------------------------------------------------------------------------------------------- doctors


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


# ------------------------------------------------------------------------------------------ mappings


class MappingListCreateView(AuditedView, IdempotentCreateMixin, generics.ListCreateAPIView):
    """Doctor assignments of the caller's patients (staff: all), with both sides nested; and assigning."""

    filterset_class = MappingFilter
    filter_backends = [DjangoFilterBackend, StrictOrderingFilter]
    ordering_fields = ["id", "assigned_at"]
    audit_resource = AuditResource.MAPPING

    def audit_ids(self, response):
        if response.status_code >= 300:
            return [], []
        if isinstance(response.data, list):
            return [row["id"] for row in response.data], [row["patient"]["id"] for row in response.data]
        return [response.data["id"]], [response.data["patient"]]

    def get_queryset(self):
        return PatientDoctorMapping.objects.visible_to(self.request.user).select_related("patient", "doctor")

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
        patient = get_object_or_404(Patient.objects.visible_to(request.user), pk=patient_id)
        doctors = Doctor.objects.filter(patient_mappings__patient=patient).order_by("patient_mappings__id")
        serializer = self.get_serializer({"id": patient.id, "full_name": patient.full_name, "doctors": doctors})
        return Response(serializer.data)


class MappingDeleteView(AuditedView, generics.DestroyAPIView):
    """Remove a doctor from one of the caller's patients."""

    serializer_class = MappingSerializer
    audit_resource = AuditResource.MAPPING
    deleted_patient_ids = ()

    def get_queryset(self):
        return PatientDoctorMapping.objects.visible_to(self.request.user)

    def perform_destroy(self, instance):
        self.deleted_patient_ids = [instance.patient_id]
        super().perform_destroy(instance)

    def audit_ids(self, response):
        return self.url_ids(), list(self.deleted_patient_ids)


# --------------------------------------------------------------------------------------------- audit


class AuditEventListView(AuditedView, generics.ListAPIView):
    """Staff: the audit trail, newest first, filtered by actor, resource, resource id, action and time."""

    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
    permission_classes = [permissions.IsAdminUser]
    filterset_class = AuditEventFilter
    filter_backends = [DjangoFilterBackend, StrictOrderingFilter]
    ordering_fields = ["id", "at"]
    ordering = ["-id"]
    audit_resource = AuditResource.AUDIT

    def audit_ids(self, response):
        return [], []


# ------------------------------------------------------------------------------------------- service


class HealthView(APIView):
    """Liveness and database reachability, for load balancers and monitoring. No authentication."""

    authentication_classes = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: HealthSerializer, 503: HealthSerializer})
    def get(self, request):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except DatabaseError:
            body = {"status": "unavailable", "database": "unavailable"}
            return Response(
                body, status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}
            )
        return Response({"status": "ok", "database": "ok"})
