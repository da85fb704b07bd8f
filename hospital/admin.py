from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from simple_history.admin import SimpleHistoryAdmin

from hospital.models import AuditEvent, Doctor, Patient, PatientDoctorMapping, User


class CreatedByAdmin(SimpleHistoryAdmin):
    """Records created in the admin belong to the staff member who created them; the creator is fixed."""

    readonly_fields = ["created_by", "created_at", "updated_at"]
    list_select_related = ["created_by"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(User)
class HospitalUserAdmin(UserAdmin):
    list_display = ["username", "email", "is_staff", "is_active", "date_joined"]


class DoctorMappingInline(admin.TabularInline):
    model = PatientDoctorMapping
    autocomplete_fields = ["doctor"]
    extra = 0


@admin.register(Patient)
class PatientAdmin(CreatedByAdmin):
    list_display = ["id", "lastname", "firstname", "age", "gender", "email", "created_by", "created_at", "deleted_at"]
    list_display_links = ["id", "lastname"]
    list_filter = ["gender", "created_at", ("deleted_at", admin.EmptyFieldListFilter)]
    search_fields = ["firstname", "lastname", "email"]
    readonly_fields = [*CreatedByAdmin.readonly_fields, "deleted_at", "deleted_by"]
    inlines = [DoctorMappingInline]

    def has_delete_permission(self, request, obj=None):
        """Patients are never erased: the API's DELETE marks them deleted, and staff can restore them."""
        return False


@admin.register(Doctor)
class DoctorAdmin(CreatedByAdmin):
    list_display = ["id", "lastname", "firstname", "specialization", "max_appointments_per_day", "gender", "created_by"]
    list_display_links = ["id", "lastname"]
    list_filter = ["specialization", "gender"]
    search_fields = ["firstname", "lastname", "email"]


@admin.register(PatientDoctorMapping)
class PatientDoctorMappingAdmin(SimpleHistoryAdmin):
    list_display = ["id", "patient", "doctor", "assigned_at"]
    list_filter = ["doctor__specialization", "assigned_at"]
    search_fields = ["patient__firstname", "patient__lastname", "doctor__firstname", "doctor__lastname"]
    autocomplete_fields = ["patient", "doctor"]
    list_select_related = ["patient", "doctor"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the database refuses changes to the audit trail anyway."""

    list_display = ["id", "at", "actor", "action", "resource_type", "resource_ids", "outcome", "client_ip"]
    list_filter = ["action", "resource_type", "outcome"]
    search_fields = ["request_id"]
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
