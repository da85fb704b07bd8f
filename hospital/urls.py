"""The API's routes. Each answers with and without its final slash, without a redirect."""

from django.urls import path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from hospital import views


def route(pattern: str, view, name: str):
    """Serve `pattern` and `pattern` without its final slash; `reverse()` gives the slashed form."""
    return [path(pattern, view, name=name), path(pattern.removesuffix("/"), view)]


urlpatterns = [
    path("", views.ApiIndexView.as_view(), name="api-index"),
    *route("auth/register/", views.RegisterView.as_view(), "register"),
    *route("auth/login/", views.LoginView.as_view(), "login"),
    *route("auth/refresh/", views.RefreshView.as_view(), "token-refresh"),
    *route("auth/logout/", views.LogoutView.as_view(), "logout"),
    *route("auth/me/", views.MeView.as_view(), "me"),
    *route("patients/", views.PatientListCreateView.as_view(), "patient-list"),
    *route("patients/<int:pk>/", views.PatientDetailView.as_view(), "patient-detail"),
    *route("patients/<int:pk>/restore/", views.PatientRestoreView.as_view(), "patient-restore"),
    *route("patients/<int:pk>/history/", views.PatientHistoryView.as_view(), "patient-history"),
    *route("patients/<int:pk>/access-log/", views.PatientAccessLogView.as_view(), "patient-access-log"),
    *route(
        "patients/<int:pk>/emergency-access/", views.PatientEmergencyAccessView.as_view(), "patient-emergency-access"
    ),
    *route("emergency-access/", views.EmergencyAccessListView.as_view(), "emergency-access-list"),
    *route("users/", views.UserListView.as_view(), "user-list"),
    *route("users/<int:pk>/", views.UserDetailView.as_view(), "user-detail"),
    *route("doctors/", views.DoctorListCreateView.as_view(), "doctor-list"),
    *route("doctors/<int:pk>/", views.DoctorDetailView.as_view(), "doctor-detail"),
    *route("doctors/<int:pk>/history/", views.DoctorHistoryView.as_view(), "doctor-history"),
    *route("doctors/<int:pk>/working-hours/", views.DoctorWorkingHoursView.as_view(), "doctor-working-hours"),
    *route("doctors/<int:pk>/availability/", views.DoctorAvailabilityView.as_view(), "doctor-availability"),
    *route("appointments/", views.AppointmentListCreateView.as_view(), "appointment-list"),
    *route("appointments/<int:pk>/", views.AppointmentDetailView.as_view(), "appointment-detail"),
    *route("mappings/", views.MappingListCreateView.as_view(), "mapping-list"),
    *route("mappings/<int:patient_id>/", views.PatientDoctorsView.as_view(), "patient-doctors"),
    *route("mappings/<int:pk>/delete/", views.MappingDeleteView.as_view(), "mapping-delete"),
    *route("audit/", views.AuditEventListView.as_view(), "audit-list"),
    *route("health/", views.HealthView.as_view(), "health"),
    *route("ready/", views.ReadyView.as_view(), "ready"),
    *route("schema/", SpectacularJSONAPIView.as_view(), "schema"),
    *route("docs/", SpectacularSwaggerView.as_view(url_name="schema"), "docs"),
]
