"""Accounts and tokens: register, login, refresh, logout, me."""

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer

from hospital.access import roles_of
from hospital.exceptions import save_or_field_error
from hospital.fields import StrictCharField, StrictModelSerializer
from hospital.models import User
from hospital.representation import PlannedModelSerializer, PlannedSerializer
from hospital.tokens import SessionRefreshToken
from hospital.usernames import USERNAME_TAKEN, validate_username


class RegisterSerializer(StrictModelSerializer):
    password = StrictCharField(write_only=True, max_length=128, trim_whitespace=False)

    class Meta:
        model = User
        fields = ["id", "username", "email", "password"]
        extra_kwargs = {
            # The rules apply to the name as stored (NFKC); surrounding spaces are refused, not trimmed.
            # Uniqueness of the canonical form (look-alikes included) is the database's job: see create().
            "username": {"validators": [validate_username], "trim_whitespace": False},
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
                "user_username_key_unique": username_taken,
            },
        )


class LoginSerializer(TokenObtainPairSerializer):
    """Username and password in, an access and a refresh token out (a new session); 401 for any bad credential."""

    token_class = SessionRefreshToken

    default_error_messages = {"no_active_account": "No active account found with the given credentials."}


class TokenPairSerializer(PlannedSerializer):
    access = serializers.CharField(read_only=True)
    refresh = serializers.CharField(read_only=True)


class RefreshTokenSerializer(PlannedSerializer):
    refresh = StrictCharField(write_only=True, max_length=4096)


class MeSerializer(PlannedModelSerializer):
    roles = serializers.SerializerMethodField(help_text="Role names: front_desk, clinician.")
    doctor = serializers.IntegerField(
        source="doctor_id", allow_null=True, read_only=True, help_text="The doctor this account acts as, if any."
    )

    class Meta:
        model = User
        fields = ["id", "username", "email", "is_staff", "roles", "doctor"]
        read_only_fields = fields

    def get_roles(self, user) -> list[str]:
        return sorted(roles_of(user))
