"""The API's views: generic DRF views, each scoped to what the caller may see in `get_queryset()`."""

from django.db import DatabaseError, connection
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions, status
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenObtainPairView

from hospital.exceptions import DATABASE_RETRY_AFTER_SECONDS
from hospital.filters import DoctorFilter, MappingFilter, PatientFilter
from hospital.models import Doctor, Patient, PatientDoctorMapping
from hospital.permissions import IsCreatorOrStaffForWrites
from hospital.serializers import (
    DoctorSerializer,
    HealthSerializer,
    LoginSerializer,
    MappingCreateSerializer,
    MappingSerializer,
    MeSerializer,
    PatientDoctorsSerializer,
    PatientSerializer,
    RefreshTokenSerializer,
    RegisterSerializer,
    TokenPairSerializer,
)
from hospital.services import redeem_refresh_token, rotate_refresh_token

# ---------------------------------------------------------------------------------------------- auth


class RegisterView(generics.CreateAPIView):
    """Create an account. Throttled per client IP."""

    serializer_class = RegisterSerializer
    authentication_classes = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "register"


class LoginView(TokenObtainPairView):
    """Exchange a username and password for an access and a refresh token. Throttled per client IP."""

    serializer_class = LoginSerializer
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(responses={200: TokenPairSerializer})
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class RefreshView(generics.GenericAPIView):
    """Exchange a refresh token for a new pair. The old refresh token is then rejected."""

    serializer_class = RefreshTokenSerializer
    authentication_classes = []
    permission_classes = [permissions.AllowAny]

    def get_authenticate_header(self, request):
        """A rejected token is a 401 with a challenge (DRF answers 403 for views without authenticators)."""
        return 'Bearer realm="api"'

    @extend_schema(responses={200: TokenPairSerializer})
    def post(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        refresh = rotate_refresh_token(serializer.validated_data["refresh"])
        return Response({"access": str(refresh.access_token), "refresh": str(refresh)})


class LogoutView(generics.GenericAPIView):
    """Revoke one of the caller's refresh tokens (access tokens expire on their own)."""

    serializer_class = RefreshTokenSerializer

    @extend_schema(responses={204: None})
    def post(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        redeem_refresh_token(serializer.validated_data["refresh"], user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(generics.RetrieveAPIView):
    """The account the access token belongs to."""

    serializer_class = MeSerializer

    def get_object(self):
        return self.request.user


# ------------------------------------------------------------------------------------------ patients


class PatientQuerysetMixin:
    serializer_class = PatientSerializer

    def get_queryset(self):
        return Patient.objects.visible_to(self.request.user)


class PatientListCreateView(PatientQuerysetMixin, generics.ListCreateAPIView):
    """The caller's patients (staff: everyone's), and creating one."""

    filterset_class = PatientFilter
    search_fields = ["firstname", "lastname", "email"]
    ordering_fields = ["id", "firstname", "lastname", "age", "created_at", "updated_at"]

    def perform_create(self, serializer):
        serializer.save(created_by=self.request.user)


class PatientDetailView(PatientQuerysetMixin, generics.RetrieveUpdateDestroyAPIView):
    """One patient. Another user's patient answers 404, exactly like a missing one."""


# ------------------------------------------------------------------------------------------- doctors


class DoctorListCreateView(generics.ListCreateAPIView):
    """The shared doctor directory, and adding a doctor to it."""

    queryset = Doctor.objects.all()
    serializer_class = DoctorSerializer
    filterset_class = DoctorFilter
    search_fields = ["firstname", "lastname", "email"]
    ordering_fields = ["id", "firstname", "lastname", "specialization", "created_at", "updated_at"]

    def perform_create(self, serializer):
        serializer.save(created_by=self.request.user)


class DoctorDetailView(generics.RetrieveUpdateDestroyAPIView):
    """One doctor: readable by everyone signed in; changed or deleted by its creator or staff."""

    queryset = Doctor.objects.all()
    serializer_class = DoctorSerializer
    permission_classes = [permissions.IsAuthenticated, IsCreatorOrStaffForWrites]


# ------------------------------------------------------------------------------------------ mappings


class MappingListCreateView(generics.ListCreateAPIView):
    """Doctor assignments of the caller's patients (staff: all), with both sides nested; and assigning."""

    filterset_class = MappingFilter
    ordering_fields = ["id", "assigned_at"]

    def get_queryset(self):
        return PatientDoctorMapping.objects.visible_to(self.request.user).select_related("patient", "doctor")

    def get_serializer_class(self):
        return MappingCreateSerializer if self.request.method == "POST" else MappingSerializer


class PatientDoctorsView(generics.GenericAPIView):
    """The doctors assigned to one of the caller's patients."""

    serializer_class = PatientDoctorsSerializer
    filter_backends = []
    pagination_class = None

    def get(self, request, patient_id):
        patient = get_object_or_404(Patient.objects.visible_to(request.user), pk=patient_id)
        doctors = Doctor.objects.filter(patient_mappings__patient=patient).order_by("patient_mappings__id")
        serializer = self.get_serializer({"id": patient.id, "full_name": patient.full_name, "doctors": doctors})
        return Response(serializer.data)


class MappingDeleteView(generics.DestroyAPIView):
    """Remove a doctor from one of the caller's patients."""

    serializer_class = MappingSerializer

    def get_queryset(self):
        return PatientDoctorMapping.objects.visible_to(self.request.user)


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
