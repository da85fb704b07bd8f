from django.apps import AppConfig


class HospitalConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "hospital"
    verbose_name = "Hospital"

    def ready(self):
        # Connects the receivers that publish user changes to every worker, in every process (a management
        # command or the admin may save a user before any API request has loaded the authentication).
        from hospital import revocation  # noqa: F401
