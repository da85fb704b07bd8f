"""Request and response bodies, one module per route family. Field rules come from the models' validators;
uniqueness from the database."""

from hospital.serializers.appointments import (
    AppointmentConflictSerializer,
    AppointmentCreateSerializer,
    AppointmentSerializer,
    AppointmentUpdateSerializer,
    AvailabilityQuerySerializer,
    AvailabilitySerializer,
    WorkingHoursRangeSerializer,
    WorkingWeekSerializer,
)
from hospital.serializers.audit import AuditEventSerializer
from hospital.serializers.auth import (
    USERNAME_TAKEN,
    LoginSerializer,
    MeSerializer,
    RefreshTokenSerializer,
    RegisterSerializer,
    TokenPairSerializer,
)
from hospital.serializers.common import FieldChangeSerializer, VersionSerializer
from hospital.serializers.doctors import DOCTOR_GONE, DoctorSerializer, DoctorVersionSerializer
from hospital.serializers.mappings import (
    DUPLICATE_MAPPING,
    MappingCreateSerializer,
    MappingSerializer,
    PatientDoctorsSerializer,
)
from hospital.serializers.patients import (
    PATIENT_GONE,
    AccessLogEntrySerializer,
    DeletedParameterSerializer,
    PatientSerializer,
    PatientVersionSerializer,
    VisiblePatientField,
)
from hospital.serializers.service import ApiIndexSerializer, HealthSerializer, ReadySerializer
from hospital.serializers.users import (
    EmergencyAccessGrantSerializer,
    EmergencyAccessRequestSerializer,
    UserSerializer,
    UserUpdateSerializer,
)

__all__ = [
    "DOCTOR_GONE",
    "DUPLICATE_MAPPING",
    "PATIENT_GONE",
    "USERNAME_TAKEN",
    "AccessLogEntrySerializer",
    "ApiIndexSerializer",
    "AppointmentConflictSerializer",
    "AppointmentCreateSerializer",
    "AppointmentSerializer",
    "AppointmentUpdateSerializer",
    "AuditEventSerializer",
    "AvailabilityQuerySerializer",
    "AvailabilitySerializer",
    "DeletedParameterSerializer",
    "DoctorSerializer",
    "DoctorVersionSerializer",
    "EmergencyAccessGrantSerializer",
    "EmergencyAccessRequestSerializer",
    "FieldChangeSerializer",
    "HealthSerializer",
    "LoginSerializer",
    "MappingCreateSerializer",
    "MappingSerializer",
    "MeSerializer",
    "PatientDoctorsSerializer",
    "PatientSerializer",
    "PatientVersionSerializer",
    "ReadySerializer",
    "RefreshTokenSerializer",
    "RegisterSerializer",
    "TokenPairSerializer",
    "UserSerializer",
    "UserUpdateSerializer",
    "VersionSerializer",
    "VisiblePatientField",
    "WorkingHoursRangeSerializer",
    "WorkingWeekSerializer",
]
