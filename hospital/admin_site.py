"""The admin site: named for the product, its logins and logouts in the audit trail, its lookups audited."""

import json

from django.contrib import admin
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.db import transaction
from django.http import HttpResponseRedirect
from django.utils import timezone

from hospital.admin_audit import AuditedModelAdmin
from hospital.admin_security import SESSION_STARTED_KEY
from hospital.audit import record_audit_event
from hospital.models import AuditAction, AuditResource

# Audit outcomes of an admin login (README, "Audit trail"): the API's codes for the same event.
LOGIN_SUCCEEDED = 200
LOGIN_FAILED = 401
LOGIN_LOCKED_OUT = 429


class HospitalAdminSite(admin.AdminSite):
    site_header = "healthcare-backend administration"
    site_title = "healthcare-backend admin"
    index_title = "Records and accounts"
    # The admin has no public site of its own; the API's documentation is what "View site" should open.
    site_url = "/api/docs/"

    def login(self, request, extra_context=None):
        """Every login attempt writes a `login` row: the account on success, nobody on failure (as the API)."""
        if request.method != "POST":
            return super().login(request, extra_context)
        with transaction.atomic():
            response = super().login(request, extra_context)
            logged_in = isinstance(response, HttpResponseRedirect) and request.user.is_authenticated
            if logged_in:
                outcome = LOGIN_SUCCEEDED
                # A new login restarts the session's absolute limit (hospital.admin_security).
                request.session[SESSION_STARTED_KEY] = timezone.now().timestamp()
            elif getattr(request, "axes_locked_out", False):
                outcome = LOGIN_LOCKED_OUT
            else:
                outcome = response.status_code if response.status_code >= 400 else LOGIN_FAILED
            record_audit_event(
                request,
                actor=request.user.pk if logged_in else None,
                action=AuditAction.LOGIN,
                resource=AuditResource.USER,
                resource_ids=[request.user.pk] if logged_in else [],
                patient_ids=[],
                outcome=outcome,
            )
        return response

    def logout(self, request, extra_context=None):
        user_id = request.user.pk if request.user.is_authenticated else None
        with transaction.atomic():
            response = super().logout(request, extra_context)
            if user_id is not None and request.method == "POST":
                record_audit_event(
                    request,
                    actor=user_id,
                    action=AuditAction.LOGOUT,
                    resource=AuditResource.USER,
                    resource_ids=[user_id],
                    patient_ids=[],
                    outcome=204,
                )
        return response

    def autocomplete_view(self, request):
        """The search box of a foreign key (a mapping's patient) lists records: audited like a changelist."""
        response = super().autocomplete_view(request)
        if response.status_code == 200:
            _term, model_admin, _field, _to_field = AutocompleteJsonView(admin_site=self).process_request(request)
            if isinstance(model_admin, AuditedModelAdmin):
                pks = [int(result["id"]) for result in json.loads(response.content)["results"]]
                model_admin.audit(request, AuditAction.LIST, pks, model_admin.audit_patient_ids(pks), 200)
        return response
