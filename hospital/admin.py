"""The admin's pages for staff: every record page is audited (hospital.admin_audit), deleted patients are
marked and hidden by default, history names soft deletes and restores, and tokens are never shown."""

from datetime import date, timedelta
from functools import partial

from axes.models import AccessFailureLog, AccessLog
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.utils import timezone
from django.utils.html import format_html
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from simple_history.admin import SimpleHistoryAdmin
from simple_history.models import DeletedObject
from simple_history.template_utils import HistoricalRecordContextHelper

from hospital.access import roles_of, with_roles
from hospital.admin_audit import READ_METHODS, AuditedModelAdmin, object_pk
from hospital.history import change_kind
from hospital.models import (
    Appointment,
    AuditAction,
    AuditEvent,
    AuditResource,
    Doctor,
    EmergencyAccessGrant,
    Patient,
    PatientDoctorMapping,
    User,
    WorkingHours,
)
from hospital.scheduling import day_bounds


class HistoryContextHelper(HistoricalRecordContextHelper):
    """An empty foreign key reads as empty: simple_history would call a `deleted_by` of None "Deleted user
    (pk=None)" (a soft delete sets it, a restore clears it)."""

    def prepare_delta_change_value(self, change, value):
        if isinstance(value, DeletedObject) and value.pk is None:
            return "-"
        return super().prepare_delta_change_value(change, value)


class HistoryAdmin(AuditedModelAdmin, SimpleHistoryAdmin):
    """Audited admin with every version of a record; a version's change reads as the API's history says it
    (created, updated, deleted, restored), so a soft delete is not just another "Changed"."""

    object_history_list_template = "hospital/admin_history_list.html"

    def get_historical_record_context_helper(self, request, historical_record):
        return HistoryContextHelper(self.model, historical_record)

    def set_history_delta_changes(self, request, historical_records, foreign_keys_are_objs=True):
        super().set_history_delta_changes(request, historical_records, foreign_keys_are_objs)
        versions = list(historical_records)  # newest first
        soft_deletes = hasattr(self.model, "deleted_at")
        for index, version in enumerate(versions):
            older = versions[index + 1] if index + 1 < len(versions) else None
            if older is None and soft_deletes:
                older = version.prev_record
            new = {"deleted_at": version.deleted_at} if soft_deletes else {}
            old = {"deleted_at": older.deleted_at} if soft_deletes and older is not None else None
            version.change_label = change_kind(version, new, old).capitalize()

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        """One past version (a read of the record's history), or reverting to it (an update)."""
        view = partial(super().history_form_view, request, object_id, version_id, extra_context)
        action = AuditAction.HISTORY if request.method in READ_METHODS else AuditAction.UPDATE
        return self.audited_view(request, action, object_id, view)


class CreatedByAdmin(HistoryAdmin):
    """Records created in the admin belong to the staff member who created them; the creator is fixed."""

    readonly_fields = ["created_by", "created_at", "updated_at"]
    list_select_related = ["created_by"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(User)
class HospitalUserAdmin(AuditedModelAdmin, UserAdmin):
    """Accounts: roles are the groups front_desk and clinician (hospital.access); a clinician acts as its doctor."""

    list_display = ["username", "email", "is_staff", "is_active", "role_list", "doctor", "date_joined"]
    list_filter = [*UserAdmin.list_filter, "groups"]
    list_select_related = ["doctor"]
    autocomplete_fields = ["doctor"]
    fieldsets = [
        *UserAdmin.fieldsets,
        ("Care team", {"fields": ["doctor"], "description": "The doctor a clinician account acts as."}),
    ]
    audit_resource = AuditResource.USER

    def get_queryset(self, request):
        return with_roles(super().get_queryset(request))

    @admin.display(description="roles")
    def role_list(self, user):
        return ", ".join(sorted(roles_of(user))) or "-"

    def user_change_password(self, request, id, form_url=""):
        """Setting another account's password is an update of that account (the form redirects on success)."""
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST":
            outcome = 200 if response.status_code == 302 else 400
            self.audit(request, AuditAction.UPDATE, [object_pk(id)], [], outcome)
        return response


class DoctorMappingInline(admin.TabularInline):
    model = PatientDoctorMapping
    autocomplete_fields = ["doctor"]
    extra = 0


class PatientStatusFilter(admin.SimpleListFilter):
    """Live patients unless asked otherwise: deleted ones are kept (soft delete) but are not current records."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("deleted", "Deleted"), ("all", "All")]

    def queryset(self, request, queryset):
        if self.value() == "all":
            return queryset
        return queryset.filter(deleted_at__isnull=self.value() != "deleted")

    def choices(self, changelist):
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "Live",
        }
        for value, title in self.lookup_choices:
            yield {
                "selected": self.value() == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": title,
            }


@admin.register(Patient)
class PatientAdmin(CreatedByAdmin):
    list_display = [
        "id",
        "lastname",
        "firstname",
        "age",
        "gender",
        "email",
        "record_status",
        "created_by",
        "created_at",
    ]
    list_display_links = ["id", "lastname"]
    list_filter = [PatientStatusFilter, "gender", "created_at"]
    search_fields = ["firstname", "lastname", "email"]
    readonly_fields = ["record_status", *CreatedByAdmin.readonly_fields, "deleted_at", "deleted_by"]
    inlines = [DoctorMappingInline]
    audit_resource = AuditResource.PATIENT
    audit_patient_field = "pk"

    @admin.display(description="status", ordering="deleted_at")
    def record_status(self, patient):
        if patient.is_deleted:
            return format_html('<strong class="deleted-record" style="color: var(--error-fg)">Deleted</strong>')
        return "Live"

    def has_delete_permission(self, request, obj=None):
        """Patients are never erased: the API's DELETE marks them deleted, and staff can restore them."""
        return False

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.is_deleted:
            self.message_user(
                request,
                f"This patient is deleted: the API answers 404 for it. Staff can restore it with "
                f"POST /api/patients/{obj.pk}/restore/.",
                messages.WARNING,
            )
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)


class WorkingHoursInline(admin.TabularInline):
    """The doctor's week in wall-clock minutes (the database refuses overlapping ranges)."""

    model = WorkingHours
    extra = 0


@admin.register(Doctor)
class DoctorAdmin(CreatedByAdmin):
    list_display = ["id", "lastname", "firstname", "specialization", "max_appointments_per_day", "gender", "created_by"]
    list_display_links = ["id", "lastname"]
    list_filter = ["specialization", "gender"]
    search_fields = ["firstname", "lastname", "email"]
    inlines = [WorkingHoursInline]
    audit_resource = AuditResource.DOCTOR

    def audit_deleted_patient_ids(self, pks):
        """Deleting a doctor deletes its assignments: their patients' access logs must show it."""
        assignments = PatientDoctorMapping.objects.filter(doctor_id__in=pks)
        return sorted(set(assignments.values_list("patient_id", flat=True)))


@admin.register(PatientDoctorMapping)
class PatientDoctorMappingAdmin(HistoryAdmin):
    list_display = ["id", "patient", "doctor", "assigned_at"]
    list_filter = ["doctor__specialization", "assigned_at"]
    search_fields = ["patient__firstname", "patient__lastname", "doctor__firstname", "doctor__lastname"]
    autocomplete_fields = ["patient", "doctor"]
    list_select_related = ["patient", "doctor"]
    audit_resource = AuditResource.MAPPING
    audit_patient_field = "patient_id"


class ClinicDayFilter(admin.SimpleListFilter):
    """Appointments starting on one calendar day in the clinic's zone (CLINIC_TIME_ZONE), not in UTC."""

    title = "day (clinic time zone)"
    parameter_name = "day"

    def lookups(self, request, model_admin):
        today = timezone.now().astimezone(settings.CLINIC_TIME_ZONE).date()
        days = [today + timedelta(days=offset) for offset in range(-1, 7)]
        return [(day.isoformat(), f"{day:%a %d %b}") for day in days]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            day = date.fromisoformat(self.value())
        except ValueError:
            return queryset.none()
        bounds = day_bounds(day, settings.CLINIC_TIME_ZONE)
        return queryset.filter(start__gte=bounds.start, start__lt=bounds.end)


@admin.register(Appointment)
class AppointmentAdmin(HistoryAdmin):
    """Read-only: bookings go through the API, whose rules (working hours, every clash listed, the daily limit
    and who may overbook) the admin's forms would bypass."""

    list_display = ["id", "start", "end", "doctor", "patient", "status", "overbooked", "created_by"]
    list_filter = [ClinicDayFilter, "status", "overbooked", ("doctor", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["doctor", "patient", "created_by"]
    search_fields = ["patient__lastname", "doctor__lastname"]
    ordering = ["start", "id"]
    audit_resource = AuditResource.APPOINTMENT
    audit_patient_field = "patient_id"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(EmergencyAccessGrant)
class EmergencyAccessGrantAdmin(AuditedModelAdmin, admin.ModelAdmin):
    """The emergency access review queue, read-only: a grant is a record of what happened."""

    list_display = ["id", "granted_at", "expires_at", "user", "patient", "reason"]
    list_filter = ["granted_at"]
    list_select_related = ["user", "patient"]
    audit_resource = AuditResource.EMERGENCY_ACCESS
    audit_patient_field = "patient_id"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(AuditedModelAdmin, admin.ModelAdmin):
    """Read-only: the database refuses changes to the audit trail anyway. Reading it is audited too."""

    list_display = ["id", "at", "actor", "action", "resource_type", "resource_ids", "outcome", "client_ip"]
    list_filter = ["action", "resource_type", "outcome"]
    search_fields = ["request_id"]
    date_hierarchy = "at"
    audit_resource = AuditResource.AUDIT

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class RevocationRecordAdmin(admin.ModelAdmin):
    """simplejwt's token records, read-only. Its own admin showed each refresh token in full (anyone with
    the page could use it) and let a revocation be deleted (the token then worked again)."""

    actions = None

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.unregister(OutstandingToken)
admin.site.unregister(BlacklistedToken)
# Axes' logs of successful logins and of every failure are off (the audit trail has them): no empty pages.
# Its access attempts stay: deleting one there lifts a lockout.
admin.site.unregister(AccessLog)
admin.site.unregister(AccessFailureLog)


@admin.register(OutstandingToken)
class OutstandingTokenAdmin(RevocationRecordAdmin):
    """Refresh tokens issued: their id (jti), owner and lifetime; never the token."""

    list_display = ["jti", "user", "created_at", "expires_at"]
    fields = list_display
    search_fields = ["jti", "user__username"]
    list_select_related = ["user"]


@admin.register(BlacklistedToken)
class BlacklistedTokenAdmin(RevocationRecordAdmin):
    """Revoked refresh tokens (rotated or logged out): permanent, so a revocation cannot be undone here."""

    list_display = ["token_jti", "token_user", "blacklisted_at"]
    fields = list_display
    readonly_fields = list_display
    search_fields = ["token__jti", "token__user__username"]
    list_select_related = ["token__user"]

    @admin.display(description="jti", ordering="token__jti")
    def token_jti(self, revoked):
        return revoked.token.jti

    @admin.display(description="user", ordering="token__user")
    def token_user(self, revoked):
        return revoked.token.user
