"""Doctor assignments."""

from rest_framework import serializers

from hospital.exceptions import save_or_field_error
from hospital.fields import StrictIntegerField, StrictModelSerializer
from hospital.models import PatientDoctorMapping
from hospital.representation import PlannedModelSerializer, PlannedSerializer
from hospital.serializers.doctors import DOCTOR_GONE, DoctorSerializer
from hospital.serializers.patients import PATIENT_GONE, PatientSerializer, VisiblePatientField

DUPLICATE_MAPPING = "This doctor is already assigned to this patient."


class MappingCreateSerializer(StrictModelSerializer):
    # pk_field: a whole number, so 4.5 is a 400 rather than silently patient 4.
    patient = VisiblePatientField(pk_field=StrictIntegerField())

    class Meta:
        model = PatientDoctorMapping
        fields = ["id", "patient", "doctor", "assigned_at"]
        read_only_fields = ["id", "assigned_at"]
        extra_kwargs = {"doctor": {"pk_field": StrictIntegerField()}}
        # The unique (patient, doctor) pair is checked by the database alone: see create().
        validators = []

    def create(self, validated_data):
        return save_or_field_error(
            lambda: super(MappingCreateSerializer, self).create(validated_data),
            {
                "unique_patient_doctor": {"doctor": [DUPLICATE_MAPPING]},
                # Foreign keys (names from migration 0001) fail at commit when the patient or doctor
                # was deleted after validation.
                "hospital_patientdoct_patient_id_01e4b398_fk_hospital_": {"patient": [PATIENT_GONE]},
                "hospital_patientdoct_doctor_id_aec37f1b_fk_hospital_": {"doctor": [DOCTOR_GONE]},
            },
        )


class MappingSerializer(PlannedModelSerializer):
    patient = PatientSerializer(read_only=True)
    doctor = DoctorSerializer(read_only=True)

    class Meta:
        model = PatientDoctorMapping
        fields = ["id", "patient", "doctor", "assigned_at"]


class PatientDoctorsSerializer(PlannedSerializer):
    """The doctors assigned to one patient."""

    patient_id = serializers.IntegerField(source="id")
    patient = serializers.CharField(source="full_name")
    doctors = DoctorSerializer(many=True)
