"""The API's views, one module per route family (mirroring urls.py). Each is a generic DRF view scoped to what
the caller may see in `get_queryset()`."""

from hospital.views.appointments import AppointmentDetailView, AppointmentListCreateView
from hospital.views.audit import AuditEventListView
from hospital.views.auth import LoginView, LogoutView, MeView, RefreshView, RegisterView
from hospital.views.doctors import (
    DoctorAvailabilityView,
    DoctorDetailView,
    DoctorHistoryView,
    DoctorListCreateView,
    DoctorWorkingHoursView,
)
from hospital.views.emergency_access import EmergencyAccessListView, PatientEmergencyAccessView
from hospital.views.mappings import MappingDeleteView, MappingListCreateView, PatientDoctorsView
from hospital.views.patients import (
    PatientAccessLogView,
    PatientDetailView,
    PatientHistoryView,
    PatientListCreateView,
    PatientRestoreView,
)
from hospital.views.service import ApiIndexView, HealthView, ReadyView
from hospital.views.users import UserDetailView, UserListView

__all__ = [
    "ApiIndexView",
    "AppointmentDetailView",
    "AppointmentListCreateView",
    "AuditEventListView",
    "DoctorAvailabilityView",
    "DoctorDetailView",
    "DoctorHistoryView",
    "DoctorListCreateView",
    "DoctorWorkingHoursView",
    "EmergencyAccessListView",
    "HealthView",
    "LoginView",
    "LogoutView",
    "MappingDeleteView",
    "MappingListCreateView",
    "MeView",
    "PatientAccessLogView",
    "PatientDetailView",
    "PatientDoctorsView",
    "PatientEmergencyAccessView",
    "PatientHistoryView",
    "PatientListCreateView",
    "PatientRestoreView",
    "ReadyView",
    "RefreshView",
    "RegisterView",
    "UserDetailView",
    "UserListView",
]
