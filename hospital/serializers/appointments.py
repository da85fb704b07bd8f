"""Appointments, a doctor's working hours and availability."""

from django.utils import timezone
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied

from hospital.access import may_overbook
from hospital.fields import (
    AwareDateTimeField,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    StrictModelSerializer,
)
from hospital.models import MAX_APPOINTMENT, MIN_APPOINTMENT, Appointment, AppointmentStatus
from hospital.representation import PlannedModelSerializer, PlannedSerializer
from hospital.scheduling import first_overlap, format_wall_time, parse_wall_time
from hospital.serializers.patients import VisiblePatientField
from hospital.services import book_appointment, change_appointment_status, reschedule_appointment

MAX_WORKING_RANGES = 70  # ten a day
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


class AppointmentSerializer(PlannedModelSerializer):
    created_by = serializers.IntegerField(source="created_by_id", read_only=True)
    patient = serializers.IntegerField(source="patient_id", read_only=True)
    doctor = serializers.IntegerField(source="doctor_id", read_only=True)

    class Meta:
        model = Appointment
        fields = [
            "id",
            "patient",
            "doctor",
            "start",
            "end",
            "status",
            "overbooked",
            "reason",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class AppointmentWriteMixin:
    """start and end: explicit offsets, end after start, 5 minutes to 8 hours, not in the past; `overbook` for
    those allowed to. The answer is the appointment as AppointmentSerializer shows it."""

    def to_representation(self, instance):
        return AppointmentSerializer(instance, context=self.context).data

    def validate_overbook(self, overbook):
        if overbook and not may_overbook(self.context["request"].user):
            raise PermissionDenied("Only staff and the front desk may overbook.")
        return overbook

    def validate_start(self, start):
        if start < timezone.now():
            raise serializers.ValidationError("An appointment cannot start in the past.")
        return start

    def check_times(self, start, end):
        if end <= start:
            raise serializers.ValidationError({"end": ["The end must be after the start."]})
        if not MIN_APPOINTMENT <= end - start <= MAX_APPOINTMENT:
            raise serializers.ValidationError({"end": ["An appointment lasts from 5 minutes to 8 hours."]})


class AppointmentCreateSerializer(AppointmentWriteMixin, StrictModelSerializer):
    patient = VisiblePatientField(pk_field=StrictIntegerField())
    start = AwareDateTimeField()
    end = AwareDateTimeField()
    reason = StrictCharField(max_length=500, required=False, allow_blank=True, default="")
    overbook = StrictBooleanField(
        write_only=True,
        required=False,
        default=False,
        help_text="Staff and front desk only: book past the doctor's daily limit (never past an overlap).",
    )

    class Meta:
        model = Appointment
        fields = ["patient", "doctor", "start", "end", "reason", "overbook"]
        extra_kwargs = {"doctor": {"pk_field": StrictIntegerField()}}

    def validate(self, attrs):
        self.check_times(attrs["start"], attrs["end"])
        return attrs

    def create(self, validated_data):
        return book_appointment(**validated_data, by=self.context["request"].user)


class AppointmentUpdateSerializer(AppointmentWriteMixin, StrictModelSerializer):
    """Either a change of status, or (while booked) new times and reason, never both at once."""

    start = AwareDateTimeField(required=False)
    end = AwareDateTimeField(required=False)
    reason = StrictCharField(max_length=500, required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=AppointmentStatus.choices, required=False)
    overbook = StrictBooleanField(
        write_only=True,
        required=False,
        default=False,
        help_text="Staff and front desk only: move it past the new day's limit (never past an overlap).",
    )

    class Meta:
        model = Appointment
        fields = ["start", "end", "reason", "status", "overbook"]

    def validate(self, attrs):
        rescheduling = {"start", "end", "reason"} & set(self.initial_data)
        if "status" in attrs and rescheduling:
            raise serializers.ValidationError(
                {"status": ["Change the status on its own, not together with start, end or reason."]}
            )
        if "start" in attrs or "end" in attrs:
            self.check_times(attrs.get("start", self.instance.start), attrs.get("end", self.instance.end))
        return attrs

    def validate_start(self, start):
        if start != self.instance.start:
            return super().validate_start(start)
        return start

    def update(self, appointment, validated_data):
        if "status" in validated_data:
            return change_appointment_status(
                appointment=appointment, status=validated_data["status"], now=timezone.now()
            )
        return reschedule_appointment(
            appointment=appointment,
            start=validated_data.get("start", appointment.start),
            end=validated_data.get("end", appointment.end),
            reason=validated_data.get("reason", appointment.reason),
            overbook=validated_data.get("overbook", False),
            by=self.context["request"].user,
        )


class ConflictingAppointmentSerializer(PlannedSerializer):
    id = serializers.IntegerField(allow_null=True, help_text="Null for an appointment the caller may not see.")
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


class AppointmentConflictSerializer(PlannedSerializer):
    detail = serializers.CharField()
    code = serializers.ChoiceField(choices=["overlap", "fully_booked", "invalid_transition", "not_editable"])
    conflicts = ConflictingAppointmentSerializer(
        many=True, required=False, help_text="With code overlap: every clashing appointment, times only."
    )


class WorkingHoursRangeSerializer(PlannedSerializer):
    """One range of a weekday, in the clinic's wall-clock time."""

    weekday = StrictIntegerField(min_value=0, max_value=6, help_text="0 = Monday ... 6 = Sunday.")
    start = StrictCharField(help_text='"HH:MM", 00:00 to 23:59.')
    end = StrictCharField(help_text='"HH:MM", 00:01 to 24:00; after start.')

    def validate_start(self, value):
        try:
            return parse_wall_time(value)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None

    def validate_end(self, value):
        try:
            return parse_wall_time(value, allow_end_of_day=True)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None

    def validate(self, attrs):
        if attrs["start"] >= attrs["end"]:
            raise serializers.ValidationError({"end": ["The range is empty: end must be after start."]})
        return attrs

    def to_representation(self, hours):
        return {
            "weekday": hours.weekday,
            "start": format_wall_time(hours.start_minute),
            "end": format_wall_time(hours.end_minute),
        }


class WorkingWeekSerializer(serializers.ListSerializer):
    """The whole week at once: what a PUT sends replaces every range. Overlaps within a weekday are refused."""

    child = WorkingHoursRangeSerializer()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, max_length=MAX_WORKING_RANGES, **kwargs)

    def validate(self, ranges):
        by_day: dict[int, list[tuple[int, int]]] = {}
        for item in ranges:
            by_day.setdefault(item["weekday"], []).append((item["start"], item["end"]))
        for weekday, day_ranges in sorted(by_day.items()):
            overlap = first_overlap(day_ranges)
            if overlap:
                (a_start, a_end), (b_start, b_end) = overlap
                raise serializers.ValidationError(
                    f"{WEEKDAYS[weekday]}: {format_wall_time(a_start)}-{format_wall_time(a_end)} "
                    f"overlaps {format_wall_time(b_start)}-{format_wall_time(b_end)}."
                )
        return ranges


class IntervalSerializer(PlannedSerializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


class AvailabilitySerializer(PlannedSerializer):
    doctor = serializers.IntegerField()
    date = serializers.DateField(help_text="A calendar day in the clinic's time zone.")
    time_zone = serializers.CharField(help_text="The clinic's IANA time zone (CLINIC_TIME_ZONE).")
    max_appointments_per_day = serializers.IntegerField()
    booked = serializers.IntegerField(help_text="Appointments that count against the limit (not cancelled).")
    remaining = serializers.IntegerField()
    working_hours = IntervalSerializer(many=True, help_text="The whole day for a doctor without working hours.")
    busy = IntervalSerializer(many=True, help_text="Times held by appointments (whose, never said).")
    free = IntervalSerializer(many=True, help_text="Working hours minus busy times, from now on; empty when full.")


class AvailabilityQuerySerializer(serializers.Serializer):
    date = serializers.DateField(help_text="YYYY-MM-DD, a clinic day.")
