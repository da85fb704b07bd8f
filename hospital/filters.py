"""Query-string filters. A malformed value is a 400 naming the parameter, never ignored or a 500."""

import django_filters
from django import forms
from django.conf import settings
from django.db.models.functions import Now
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter, SearchFilter

from hospital.access import Role
from hospital.fields import AWARE_DATETIME_HELP, parse_aware_datetime
from hospital.models import (
    MAX_ID,
    MAX_PATIENT_AGE,
    Appointment,
    AppointmentStatus,
    AuditAction,
    AuditEvent,
    AuditResource,
    Doctor,
    EmergencyAccessGrant,
    Gender,
    Patient,
    Specialization,
    User,
)
from hospital.scheduling import day_bounds

MAX_SEARCH_LENGTH = 100


class QueryFilterBackend(DjangoFilterBackend):
    """django-filter's backend, skipped when the query string is empty: with no parameter no filter applies, and
    building and validating the filter set's form was a tenth of a list request."""

    def filter_queryset(self, request, queryset, view):
        if not request.query_params:
            return queryset
        return super().filter_queryset(request, queryset, view)


class StrictSearchFilter(SearchFilter):
    """`?search=`: at most 100 characters, split on spaces, every term matching one of the fields."""

    def filter_queryset(self, request, queryset, view):
        if self.search_param not in request.query_params:
            return queryset
        return super().filter_queryset(request, queryset, view)

    def get_search_terms(self, request):
        field = serializers.CharField(max_length=MAX_SEARCH_LENGTH, trim_whitespace=False, allow_blank=True)
        try:
            field.run_validation(request.query_params.get(self.search_param, ""))
        except ValidationError as error:
            raise ValidationError({self.search_param: error.detail}) from None
        return super().get_search_terms(request)

    def get_schema_operation_parameters(self, view):
        fields = ", ".join(name.lstrip("^=@$") for name in getattr(view, "search_fields", []))
        [parameter] = super().get_schema_operation_parameters(view)
        parameter["description"] = (
            f"Case-insensitive search in: {fields}. Every space-separated term must match one of them. "
            f"At most {MAX_SEARCH_LENGTH} characters."
        )
        parameter["schema"]["maxLength"] = MAX_SEARCH_LENGTH
        return [parameter]


class StrictOrderingFilter(OrderingFilter):
    """`?ordering=`: only the fields a view documents; `id` always breaks ties so pages are stable."""

    def remove_invalid_fields(self, queryset, fields, view, request):
        valid = [name for name, _label in self.get_valid_fields(queryset, view, {"request": request})]
        unknown = [term for term in fields if term.removeprefix("-") not in valid]
        if unknown:
            allowed = ", ".join(valid)
            raise ValidationError(
                {self.ordering_param: [f"Unknown ordering field {unknown[0]!r}; use one of: {allowed}."]}
            )
        return fields

    def get_schema_operation_parameters(self, view):
        """The fields a view sorts by, each also with `-` for descending; several are comma-separated."""
        fields = [name for name, _label in self.get_valid_fields(None, view, {})]
        [parameter] = super().get_schema_operation_parameters(view)
        parameter["description"] = (
            f"Sort by {', '.join(fields)}; prefix `-` for descending; several comma-separated, e.g. "
            f"`{fields[-1]},-{fields[0]}`. Ties are always broken by `id`."
        )
        parameter["schema"] = {
            "type": "array",
            "items": {"type": "string", "enum": [value for name in fields for value in (name, f"-{name}")]},
        }
        parameter["style"] = "form"
        parameter["explode"] = False
        return [parameter]

    def get_ordering(self, request, queryset, view):
        ordering = list(super().get_ordering(request, queryset, view) or [])
        if not {"id", "-id"} & set(ordering):
            ordering.append("id")
        return ordering


class AwareDateTimeFormField(forms.Field):
    """A query-string date-time with an explicit offset, as an instant in UTC (hospital.fields)."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return parse_aware_datetime(value)
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None


class AwareDateTimeFilter(django_filters.Filter):
    field_class = AwareDateTimeFormField


class IntegerFilter(django_filters.NumberFilter):
    """A whole-number filter: `?age_min=1.5` or `?age_min=1e999` is a 400, not a database error."""

    field_class = forms.IntegerField


class PatientFilter(django_filters.FilterSet):
    gender = django_filters.ChoiceFilter(choices=Gender.choices)
    age_min = IntegerFilter(field_name="age", lookup_expr="gte", min_value=0, max_value=MAX_PATIENT_AGE)
    age_max = IntegerFilter(field_name="age", lookup_expr="lte", min_value=0, max_value=MAX_PATIENT_AGE)

    class Meta:
        model = Patient
        fields = ["gender", "age_min", "age_max"]


class DoctorFilter(django_filters.FilterSet):
    specialization = django_filters.ChoiceFilter(choices=Specialization.choices)
    gender = django_filters.ChoiceFilter(choices=Gender.choices)

    class Meta:
        model = Doctor
        fields = ["specialization", "gender"]


class MappingFilter(django_filters.FilterSet):
    # Plain ids, not ModelChoiceFilter: "no such patient" must look like "no mappings", so a filter
    # never reveals whether another user's patient exists.
    patient = IntegerFilter(field_name="patient_id", min_value=1, max_value=MAX_ID)
    doctor = IntegerFilter(field_name="doctor_id", min_value=1, max_value=MAX_ID)


class AppointmentFilter(django_filters.FilterSet):
    patient = IntegerFilter(field_name="patient_id", min_value=1, max_value=MAX_ID)
    doctor = IntegerFilter(field_name="doctor_id", min_value=1, max_value=MAX_ID)
    status = django_filters.ChoiceFilter(choices=AppointmentStatus.choices)
    date = django_filters.DateFilter(
        method="filter_clinic_day", help_text="YYYY-MM-DD: appointments starting on this day in the clinic's zone."
    )
    # `from` is a Python keyword: declared as from_time, published as `from` below.
    from_time = AwareDateTimeFilter(
        field_name="end",
        lookup_expr="gt",
        help_text=f"With `to`: appointments overlapping [from, to). {AWARE_DATETIME_HELP}",
    )
    to = AwareDateTimeFilter(
        field_name="start", lookup_expr="lt", help_text=f"Appointments starting before this time. {AWARE_DATETIME_HELP}"
    )

    class Meta:
        model = Appointment
        fields = ["patient", "doctor", "status", "date", "to"]

    def filter_clinic_day(self, queryset, name, value):
        start, end = day_bounds(value, settings.CLINIC_TIME_ZONE)
        return queryset.filter(start__gte=start, start__lt=end)


AppointmentFilter.base_filters = {
    ("from" if name == "from_time" else name): value for name, value in AppointmentFilter.base_filters.items()
}


class UserFilter(django_filters.FilterSet):
    role = django_filters.ChoiceFilter(choices=Role.choices, method="filter_role", help_text="Accounts with this role.")

    class Meta:
        model = User
        fields = ["role"]

    def filter_role(self, queryset, name, value):
        # A subquery, not a join: the roles the list shows are aggregated over the same relation.
        return queryset.filter(pk__in=User.objects.filter(groups__name=value).values("pk"))


class EmergencyAccessFilter(django_filters.FilterSet):
    user = IntegerFilter(field_name="user_id", min_value=1, max_value=MAX_ID, help_text="The clinician's user id.")
    patient = IntegerFilter(field_name="patient_id", min_value=1, max_value=MAX_ID)
    active = django_filters.ChoiceFilter(
        choices=[("true", "true"), ("false", "false")],
        method="filter_active",
        help_text="true: grants not yet expired; false: expired ones.",
    )

    class Meta:
        model = EmergencyAccessGrant
        fields = ["user", "patient", "active"]

    def filter_active(self, queryset, name, value):
        return queryset.filter(expires_at__gt=Now()) if value == "true" else queryset.filter(expires_at__lte=Now())


class AuditEventFilter(django_filters.FilterSet):
    actor = IntegerFilter(min_value=1, max_value=MAX_ID, help_text="User id.")
    resource = django_filters.ChoiceFilter(field_name="resource_type", choices=AuditResource.choices)
    resource_id = IntegerFilter(
        field_name="resource_ids", method="filter_resource_id", min_value=1, max_value=MAX_ID, help_text="Record id."
    )
    action = django_filters.ChoiceFilter(choices=AuditAction.choices)
    since = AwareDateTimeFilter(
        field_name="at", lookup_expr="gte", help_text=f"From this time on. {AWARE_DATETIME_HELP}"
    )
    until = AwareDateTimeFilter(field_name="at", lookup_expr="lt", help_text=f"Before this time. {AWARE_DATETIME_HELP}")

    class Meta:
        model = AuditEvent
        fields = ["actor", "resource", "resource_id", "action", "since", "until"]

    def filter_resource_id(self, queryset, name, value):
        return queryset.filter(resource_ids__contains=[value])
