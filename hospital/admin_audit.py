"""Audit rows for what staff do in the admin: the same rows, written by the same function, as the API's.

Every admin page that shows or changes a record writes one row (hospital.audit.record_audit_event): the
changelist (`list`, with the ids the page shows), a change page (`read`), a save (`create`, `update`), a
deletion (`delete`, with every patient whose assignments went with it), a record's history (`history`) and
the confirmation pages that list what a deletion would remove (`read`). A write's row is inserted in the
write's own transaction. Outcomes are the API's status codes for the same event (README, "Audit trail").
"""

from functools import partial

from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404

from hospital.audit import record_audit_event
from hospital.models import MAX_ID, AuditAction, AuditResource

# Methods Django's admin answers without changing anything (it runs the others in a transaction).
READ_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}
SUCCESS_OUTCOME = {AuditAction.CREATE: 201, AuditAction.DELETE: 204}
REDIRECTS = {301, 302, 303}


def object_pk(object_id) -> int | None:
    """The row id an admin URL names, if it can be one (the admin itself redirects for anything else)."""
    value = unquote(str(object_id)) if object_id is not None else ""
    return int(value) if value.isascii() and value.isdigit() and 0 < int(value) <= MAX_ID else None


def failed_outcome(action: AuditAction, response) -> int:
    if response.status_code >= 400:  # e.g. a CSRF failure
        return response.status_code
    if response.status_code in REDIRECTS:  # the admin redirects away from an id that does not exist
        return 404
    # The form shown again with its errors; for a deletion, the page saying what prevents it.
    return 409 if action == AuditAction.DELETE else 400


class AuditedModelAdmin:
    """ModelAdmin mixin: one audit row for each admin page that shows or changes this model's records.

    Admins set `audit_resource`, and `audit_patient_field` when rows belong to a patient ("pk" for
    patients, "patient_id" for mappings). `audit_deleted_patient_ids()` names the patients a deletion
    touches, when that is more than the rows' own (a doctor's assignments).
    """

    audit_resource: AuditResource
    audit_patient_field: str | None = None

    def audit(self, request, action: AuditAction, pks: list[int], patient_ids: list[int], outcome: int) -> None:
        record_audit_event(
            request,
            actor=request.user.pk,
            action=action,
            resource=self.audit_resource,
            resource_ids=pks,
            patient_ids=patient_ids,
            outcome=outcome,
        )

    def audit_patient_ids(self, pks: list[int]) -> list[int]:
        """The patients whose data these rows hold."""
        if not pks or self.audit_patient_field is None:
            return []
        if self.audit_patient_field == "pk":
            return sorted(set(pks))
        rows = self.model._default_manager.filter(pk__in=pks)
        return sorted(set(rows.values_list(self.audit_patient_field, flat=True)))

    def audit_deleted_patient_ids(self, pks: list[int]) -> list[int]:
        """The patients whose data deleting these rows removes (with what the deletion cascades to)."""
        return self.audit_patient_ids(pks)

    def audited_view(self, request, action: AuditAction, object_id, view, *, deletion=False):
        """Answer `view()` and record it. A write runs in one transaction with its row; success is a save or
        deletion reported by save_model/delete_model, a read's is a 200."""
        pk = object_pk(object_id)
        pks = [pk] if pk else []
        find_patients = self.audit_deleted_patient_ids if deletion else self.audit_patient_ids
        if request.method in READ_METHODS:
            try:
                response = view()
            except (PermissionDenied, Http404) as error:
                self.audit(request, action, pks, [], 403 if isinstance(error, PermissionDenied) else 404)
                raise
            outcome = 200 if response.status_code == 200 else failed_outcome(action, response)
            self.audit(request, action, pks, find_patients(pks), outcome)
            return response
        request.admin_written_pks = []
        try:
            with transaction.atomic():
                patient_ids = find_patients(pks)  # before the write: a deletion removes what names them
                response = view()
                if request.admin_written_pks:
                    pks = pks or request.admin_written_pks
                    patient_ids = sorted({*patient_ids, *self.audit_patient_ids(pks)})
                    outcome = SUCCESS_OUTCOME.get(action, 200)
                else:
                    outcome = failed_outcome(action, response)
                self.audit(request, action, pks, patient_ids, outcome)
        except (PermissionDenied, Http404) as error:
            self.audit(request, action, pks, [], 403 if isinstance(error, PermissionDenied) else 404)
            raise
        return response

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if hasattr(request, "admin_written_pks"):
            request.admin_written_pks.append(obj.pk)

    def delete_model(self, request, obj):
        pk = obj.pk
        super().delete_model(request, obj)
        if hasattr(request, "admin_written_pks"):
            request.admin_written_pks.append(pk)

    def delete_queryset(self, request, queryset):
        """The changelist's "delete selected" action: one row for all the rows it deletes."""
        pks = [obj.pk for obj in queryset]
        with transaction.atomic():
            patient_ids = self.audit_deleted_patient_ids(pks)
            super().delete_queryset(request, queryset)
            self.audit(request, AuditAction.DELETE, pks, patient_ids, 204)

    def changelist_view(self, request, extra_context=None):
        try:
            response = super().changelist_view(request, extra_context)
        except PermissionDenied:
            self.audit(request, AuditAction.LIST, [], [], 403)
            raise
        context = getattr(response, "context_data", None) or {}
        if "cl" in context:
            # Evaluates the page's rows once; the template then reuses them.
            pks = [obj.pk for obj in context["cl"].result_list]
            self.audit(request, AuditAction.LIST, pks, self.audit_patient_ids(pks), 200)
        elif "queryset" in context:  # an action's confirmation page, listing the selected rows
            pks = [obj.pk for obj in context["queryset"]]
            self.audit(request, AuditAction.READ, pks, self.audit_deleted_patient_ids(pks), 200)
        elif request.method in READ_METHODS:  # parameters the changelist refused
            self.audit(request, AuditAction.LIST, [], [], 400)
        return response

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        view = partial(super().changeform_view, request, object_id, form_url, extra_context)
        if request.method in READ_METHODS:
            if object_id is None:  # the empty form for a new record shows no record
                return view()
            return self.audited_view(request, AuditAction.READ, object_id, view)
        return self.audited_view(request, AuditAction.UPDATE if object_id else AuditAction.CREATE, object_id, view)

    def delete_view(self, request, object_id, extra_context=None):
        view = partial(super().delete_view, request, object_id, extra_context)
        action = AuditAction.READ if request.method in READ_METHODS else AuditAction.DELETE
        return self.audited_view(request, action, object_id, view, deletion=True)

    def history_view(self, request, object_id, extra_context=None):
        view = partial(super().history_view, request, object_id, extra_context)
        return self.audited_view(request, AuditAction.HISTORY, object_id, view)
