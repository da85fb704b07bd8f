"""Accounts as staff manage them: roles and the doctor an account is linked to."""

from rest_framework import serializers

from hospital.access import Role, roles_of
from hospital.fields import StrictBooleanField, StrictCharField, StrictIntegerField
from hospital.models import Doctor, User
from hospital.representation import PlannedModelSerializer, PlannedSerializer
from hospital.services import update_account

CLINICIAN_NEEDS_DOCTOR = "An account with the clinician role must be linked to a doctor."


class UserSerializer(PlannedModelSerializer):
    roles = serializers.SerializerMethodField(help_text="Role names: front_desk, clinician.")
    doctor = serializers.IntegerField(source="doctor_id", allow_null=True, help_text="The linked doctor's id.")

    class Meta:
        model = User
        fields = ["id", "username", "email", "is_staff", "is_active", "roles", "doctor", "date_joined"]
        read_only_fields = fields

    def get_roles(self, user) -> list[str]:
        return sorted(roles_of(user))


class UserUpdateSerializer(PlannedSerializer):
    """Any of roles (the whole list), doctor (an id, or null to unlink) and is_active."""

    roles = serializers.ListField(
        child=serializers.ChoiceField(choices=Role.choices), required=False, max_length=len(Role.values)
    )
    doctor = serializers.PrimaryKeyRelatedField(
        queryset=Doctor.objects.all(), allow_null=True, required=False, pk_field=StrictIntegerField()
    )
    is_active = StrictBooleanField(required=False)

    def validate_roles(self, roles):
        if not isinstance(self.initial_data.get("roles"), list):
            raise serializers.ValidationError("Send a list of role names.")
        return sorted(set(roles))

    def validate(self, attrs):
        roles = attrs.get("roles", roles_of(self.instance))
        doctor_id = attrs["doctor"].pk if attrs.get("doctor") is not None else None
        if "doctor" not in attrs:
            doctor_id = self.instance.doctor_id
        if Role.CLINICIAN in roles and doctor_id is None:
            raise serializers.ValidationError({"doctor": [CLINICIAN_NEEDS_DOCTOR]})
        return attrs

    def update(self, user, validated_data):
        return update_account(user=user, **validated_data)

    def to_representation(self, user):
        return UserSerializer(user, context=self.context).data


class EmergencyAccessRequestSerializer(serializers.Serializer):
    reason = StrictCharField(
        min_length=10, max_length=500, help_text="Why the record is needed now (10 to 500 characters)."
    )


class EmergencyAccessGrantSerializer(PlannedSerializer):
    id = serializers.IntegerField()
    patient = serializers.IntegerField(source="patient_id")
    user = serializers.IntegerField(source="user_id")
    reason = serializers.CharField()
    granted_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
