from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class HospitalConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "hospital"
    verbose_name = "Hospital"

    def ready(self):
        # Connects the receivers that publish user changes to every worker, in every process (a management
        # command or the admin may save a user before any API request has loaded the authentication).
        from hospital import revocation  # noqa: F401


class HospitalAdminConfig(admin_apps.AdminConfig):
    """Django's admin, with this project's site as `admin.site` (so third-party apps register on it too)."""

    default = False  # named explicitly in INSTALLED_APPS; HospitalConfig stays the app's default
    default_site = "hospital.admin_site.HospitalAdminSite"
