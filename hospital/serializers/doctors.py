"""The doctor directory and its versions."""

from rest_framework import serializers

from hospital.fields import StrictModelSerializer
from hospital.models import Doctor
from hospital.serializers.common import VersionSerializer

DOCTOR_GONE = "This doctor no longer exists."


class DoctorSerializer(StrictModelSerializer):
    created_by = serializers.IntegerField(source="created_by_id", read_only=True)

    class Meta:
        model = Doctor
        fields = [
            "id",
            "firstname",
            "lastname",
            "specialization",
            "max_appointments_per_day",
            "gender",
            "email",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]


class DoctorVersionSerializer(VersionSerializer):
    record = DoctorSerializer(help_text="The doctor as this version left it.")
