from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from hospital.models import Doctor, Patient, PatientDoctorMapping, User


class CreatedByAdmin(admin.ModelAdmin):
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
    list_display = ["id", "lastname", "firstname", "age", "gender", "email", "created_by", "created_at"]
    list_display_links = ["id", "lastname"]
    list_filter = ["gender", "created_at"]
    search_fields = ["firstname", "lastname", "email"]
    inlines = [DoctorMappingInline]


@admin.register(Doctor)
class DoctorAdmin(CreatedByAdmin):
    list_display = ["id", "lastname", "firstname", "specialization", "max_appointments_per_day", "gender", "created_by"]
    list_display_links = ["id", "lastname"]
    list_filter = ["specialization", "gender"]
    search_fields = ["firstname", "lastname", "email"]


@admin.register(PatientDoctorMapping)
class PatientDoctorMappingAdmin(admin.ModelAdmin):
    list_display = ["id", "patient", "doctor", "assigned_at"]
    list_filter = ["doctor__specialization", "assigned_at"]
    search_fields = ["patient__firstname", "patient__lastname", "doctor__firstname", "doctor__lastname"]
    autocomplete_fields = ["patient", "doctor"]
    list_select_related = ["patient", "doctor"]
