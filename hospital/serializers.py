"""Request and response bodies. Field rules come from the models' validators; uniqueness from the database."""

from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from rest_framework import serializers
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer

from hospital.exceptions import violated_constraint
from hospital.fields import StrictCharField, StrictIntegerField, StrictModelSerializer
from hospital.models import AuditEvent, Doctor, Patient, PatientDoctorMapping, User

USERNAME_TAKEN = "A user with that username already exists."
DUPLICATE_MAPPING = "This doctor is already assigned to this patient."
PATIENT_GONE = "This patient no longer exists."
DOCTOR_GONE = "This doctor no longer exists."


def save_or_field_error(save, errors_by_constraint: dict[str, dict]):
    """Run `save()` in a transaction; turn a known constraint violation into a 400 naming the field.

    Uniqueness is checked by the database alone, so that two racing requests get one success and one
    400, and the friendly message comes from the same rule that enforces it.
    """
    try:
        with transaction.atomic():
            return save()
    except IntegrityError as error:
        field_error = errors_by_constraint.get(violated_constraint(error))
        if field_error is None:
            raise
        raise serializers.ValidationError(field_error) from None


class RegisterSerializer(StrictModelSerializer):
    password = StrictCharField(write_only=True, max_length=128, trim_whitespace=False)

    class Meta:
        model = User
        fields = ["id", "username", "email", "password"]
        extra_kwargs = {
            # Uniqueness (regardless of case) is the database's job: see create().
            "username": {"validators": [UnicodeUsernameValidator()]},
            "email": {"required": True, "allow_blank": False},
        }

    def validate(self, attrs):
        candidate = User(username=attrs["username"], email=attrs["email"])
        try:
            validate_password(attrs["password"], user=candidate)
        except DjangoValidationError as error:
            raise serializers.ValidationError({"password": list(error.messages)}) from None
        return attrs

    def create(self, validated_data):
        username_taken = {"username": [USERNAME_TAKEN]}
        return save_or_field_error(
            lambda: User.objects.create_user(**validated_data),
            {
                "hospital_user_username_key": username_taken,
                "user_username_case_insensitive_unique": username_taken,
            },
        )


class LoginSerializer(TokenObtainPairSerializer):
    """Username and password in, an access and a refresh token out; 401 for any bad credential."""

    default_error_messages = {"no_active_account": "No active account found with the given credentials."}


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField(read_only=True)
    refresh = serializers.CharField(read_only=True)


class RefreshTokenSerializer(serializers.Serializer):
    refresh = StrictCharField(write_only=True, max_length=4096)


class MeSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email", "is_staff"]
        read_only_fields = fields


class PatientSerializer(StrictModelSerializer):
    created_by = serializers.IntegerField(source="created_by_id", read_only=True)
    deleted_by = serializers.IntegerField(source="deleted_by_id", read_only=True, allow_null=True)

    class Meta:
        model = Patient
        fields = [
            "id",
            "firstname",
            "lastname",
            "age",
            "gender",
            "email",
            "created_by",
            "created_at",
            "updated_at",
            "deleted_at",
            "deleted_by",
        ]
        read_only_fields = ["id", "created_at", "updated_at", "deleted_at"]


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


class VisiblePatientField(serializers.PrimaryKeyRelatedField):
    """A patient id the caller may see; any other id reads as "does not exist", revealing nothing."""

    def get_queryset(self):
        return Patient.objects.visible_to(self.context["request"].user)


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


class MappingSerializer(serializers.ModelSerializer):
    patient = PatientSerializer(read_only=True)
    doctor = DoctorSerializer(read_only=True)

    class Meta:
        model = PatientDoctorMapping
        fields = ["id", "patient", "doctor", "assigned_at"]


class PatientDoctorsSerializer(serializers.Serializer):
    """The doctors assigned to one patient."""

    patient_id = serializers.IntegerField(source="id")
    patient = serializers.CharField(source="full_name")
    doctors = DoctorSerializer(many=True)


class HealthSerializer(serializers.Serializer):
    status = serializers.CharField(help_text='"ok", or "unavailable" while the database is unreachable.')
    database = serializers.CharField(help_text='"ok" or "unavailable".')


class FieldChangeSerializer(serializers.Serializer):
    field = serializers.CharField()
    old = serializers.JSONField(allow_null=True, help_text="The value before this version.")
    new = serializers.JSONField(allow_null=True, help_text="The value in this version.")


class VersionSerializer(serializers.Serializer):
    """One saved version of a record: who made it, when, and the fields that changed from the one before."""

    version = serializers.IntegerField(source="history_id")
    change = serializers.ChoiceField(choices=["created", "updated", "deleted", "restored"])
    changed_at = serializers.DateTimeField(source="history_date")
    changed_by = serializers.IntegerField(source="history_user_id", allow_null=True, help_text="User id.")
    changes = FieldChangeSerializer(many=True)


class PatientVersionSerializer(VersionSerializer):
    record = PatientSerializer(help_text="The patient as this version left it.")


class DoctorVersionSerializer(VersionSerializer):
    record = DoctorSerializer(help_text="The doctor as this version left it.")


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "at",
            "actor",
            "action",
            "resource_type",
            "resource_ids",
            "patient_ids",
            "outcome",
            "client_ip",
            "request_id",
        ]
        read_only_fields = fields


class AccessLogEntrySerializer(serializers.ModelSerializer):
    """A request that touched one patient. The requester's address is left out: it is for staff only."""

    class Meta:
        model = AuditEvent
        fields = ["id", "at", "actor", "action", "resource_type", "resource_ids", "outcome", "request_id"]
        read_only_fields = fields


class DeletedParameterSerializer(serializers.Serializer):
    deleted = serializers.BooleanField(required=False, default=False)
