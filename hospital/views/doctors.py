"""The shared doctor directory and its history."""

from django.conf import settings
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from hospital.access import may_change_doctor
from hospital.audit import AuditedView
from hospital.conditional import ConditionalRecordMixin
from hospital.exceptions import Conflict
from hospital.filters import DoctorFilter
from hospital.history import HistoryListView
from hospital.idempotency import IdempotentCreateMixin
from hospital.models import TIME_HOLDING_STATUSES, AppointmentStatus, AuditAction, AuditResource, Doctor
from hospital.permissions import DoctorWrites
from hospital.scheduling import Interval, clip, day_bounds, merge, subtract
from hospital.schema import VALIDATION_ERROR_LIST_SCHEMA
from hospital.serializers import (
    AvailabilityQuerySerializer,
    AvailabilitySerializer,
    DoctorSerializer,
    DoctorVersionSerializer,
    WorkingHoursRangeSerializer,
    WorkingWeekSerializer,
)
from hospital.services import doctor_working_intervals, replace_working_hours


class DoctorAuditMixin(AuditedView):
    audit_resource = AuditResource.DOCTOR


class DoctorListCreateView(DoctorAuditMixin, IdempotentCreateMixin, generics.ListCreateAPIView):
    """The shared doctor directory, and adding a doctor to it."""

    queryset = Doctor.objects.all()
    serializer_class = DoctorSerializer
    filterset_class = DoctorFilter
    audit_in_read = True
    search_fields = ["firstname", "lastname", "email"]
    ordering_fields = ["id", "firstname", "lastname", "specialization", "created_at", "updated_at"]

    def perform_create(self, serializer):
        serializer.save(created_by=self.request.user)


class DoctorDetailView(DoctorAuditMixin, ConditionalRecordMixin, generics.RetrieveUpdateDestroyAPIView):
    """One doctor: readable by everyone signed in; changed by its creator, staff, the front desk and the clinician
    linked to it; deleted by its creator or staff.

    Deleting a doctor removes its assignments, whoever's patients they belong to: the doctor directory is shared,
    and an assignment to a deleted doctor means nothing. The audit row names every patient who lost one, so
    the removal shows in each of their access logs; refusing instead would tell the deleter that patients
    they cannot see exist. The history keeps every version of the doctor and of each assignment.
    """

    queryset = Doctor.objects.all()
    serializer_class = DoctorSerializer
    permission_classes = [permissions.IsAuthenticated, DoctorWrites]
    audit_in_read = True
    schema_error_responses = {
        "DELETE": {
            "409": "The doctor has future booked appointments, appointment records (which are kept), or is linked "
            "to an account."
        }
    }
    unassigned_patient_ids: list[int] = []

    def perform_destroy(self, instance):
        # The doctor's row is locked (ConditionalRecordMixin): no assignment or booking can be added meanwhile.
        if instance.appointments.filter(status=AppointmentStatus.BOOKED, start__gte=timezone.now()).exists():
            raise Conflict("This doctor has future booked appointments; cancel them first.", "doctor_has_bookings")
        if instance.accounts.exists():
            raise Conflict("This doctor is linked to an account; staff must unlink it first.", "doctor_linked")
        if instance.appointments.exists():
            raise Conflict(
                "This doctor has appointment records, which are kept: the doctor cannot be deleted.",
                "doctor_has_appointments",
            )
        self.unassigned_patient_ids = sorted(instance.patient_mappings.values_list("patient_id", flat=True))
        super().perform_destroy(instance)

    def audit_ids(self, response):
        if self.request.method == "DELETE":
            return self.url_ids(), self.unassigned_patient_ids
        return super().audit_ids(response)


class DoctorWorkingHoursView(DoctorAuditMixin, generics.GenericAPIView):
    """The doctor's working week in the clinic's wall-clock time: read by anyone signed in; replaced whole (PUT) by
    those who may change the doctor."""

    queryset = Doctor.objects.all()
    serializer_class = WorkingHoursRangeSerializer
    pagination_class = None
    filter_backends = []
    validation_error_schema = VALIDATION_ERROR_LIST_SCHEMA
    schema_error_responses = {
        "PUT": {
            "403": "Only staff, the doctor's creator (and, with roles, the front desk and "
            "the clinician linked to the doctor) set its hours."
        }
    }

    def audit_ids(self, response):
        return self.url_ids(), []

    @extend_schema(responses={200: WorkingHoursRangeSerializer(many=True)})
    def get(self, request, pk):
        doctor = self.get_object()
        return Response(
            WorkingHoursRangeSerializer(doctor.working_hours.order_by("weekday", "start_minute"), many=True).data
        )

    @extend_schema(
        request=WorkingHoursRangeSerializer(many=True),
        responses={200: WorkingHoursRangeSerializer(many=True)},
    )
    def put(self, request, pk):
        doctor = self.get_object()
        if not may_change_doctor(request.user, doctor):
            raise PermissionDenied("Only those who may change this doctor may set its working hours.")
        week = WorkingWeekSerializer(data=request.data)
        week.is_valid(raise_exception=True)
        hours = replace_working_hours(doctor=doctor, ranges=week.validated_data)
        hours.sort(key=lambda item: (item.weekday, item.start_minute))
        return Response(WorkingHoursRangeSerializer(hours, many=True).data)


class DoctorAvailabilityView(DoctorAuditMixin, generics.GenericAPIView):
    """One clinic day of a doctor: working hours, busy times (whose, never said), free times, and how many of
    the daily limit remain."""

    queryset = Doctor.objects.all()
    serializer_class = AvailabilitySerializer
    pagination_class = None
    filter_backends = []
    validates_query = True

    def audit_ids(self, response):
        return self.url_ids(), []

    @extend_schema(parameters=[AvailabilityQuerySerializer])
    def get(self, request, pk):
        query = AvailabilityQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        day = query.validated_data["date"]
        doctor = self.get_object()
        zone = settings.CLINIC_TIME_ZONE
        bounds = day_bounds(day, zone)
        hours = doctor_working_intervals(doctor, day, zone)
        hours = [bounds] if hours is None else hours
        appointments = list(
            doctor.appointments.exclude(status=AppointmentStatus.CANCELLED)
            .filter(start__lt=bounds.end, end__gt=bounds.start)
            .values_list("start", "end", "status", "overbooked")
        )
        busy = merge(Interval(start, end) for start, end, status, _ in appointments if status in TIME_HOLDING_STATUSES)
        booked = sum(1 for start, _, _, overbooked in appointments if bounds.start <= start and not overbooked)
        remaining = max(0, doctor.max_appointments_per_day - booked)
        free = clip(subtract(hours, busy), not_before=timezone.now()) if remaining else []
        body = {
            "doctor": doctor.pk,
            "date": day,
            "time_zone": zone.key,
            "max_appointments_per_day": doctor.max_appointments_per_day,
            "booked": booked,
            "remaining": remaining,
            "working_hours": [interval._asdict() for interval in hours],
            "busy": [interval._asdict() for interval in busy],
            "free": [interval._asdict() for interval in free],
        }
        return Response(AvailabilitySerializer(body).data)


class DoctorHistoryView(DoctorAuditMixin, HistoryListView):
    """Every saved version of one doctor, newest first, with the fields each one changed."""

    serializer_class = DoctorVersionSerializer
    record_serializer_class = DoctorSerializer
    audit_action = AuditAction.HISTORY

    def get_record(self):
        return get_object_or_404(Doctor, pk=self.kwargs["pk"])

    def audit_ids(self, response):
        return self.url_ids(), []
