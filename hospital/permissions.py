"""Permission classes: each reads the rule it names from hospital.access, where the role table lives."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from hospital.access import Capability, can, may_change_doctor, may_delete_doctor, may_delete_patient


class HasCapability(BasePermission):
    """The route is for accounts whose roles (or staff flag) grant `capability`; others get 403, anonymous 401."""

    capability: Capability

    def has_permission(self, request, view):
        return can(request.user, self.capability)


def requires(capability: Capability, who: str) -> type[HasCapability]:
    """A permission class for one capability; `who` says in the 403 who may ("Staff", "Clinicians")."""
    return type(
        f"Requires{capability.name.title().replace('_', '')}",
        (HasCapability,),
        {"capability": capability, "message": f"{who} only: you may not {capability}."},
    )


class DoctorWrites(BasePermission):
    """Doctors are a shared directory: anyone signed in reads; changes by those who may change the doctor
    (creator, staff, front desk, the clinician linked to it); deletion by its creator or staff."""

    message = "You may not change or delete this doctor."

    def has_object_permission(self, request, view, obj):
        if request.method in SAFE_METHODS:
            return True
        if request.method == "DELETE":
            return may_delete_doctor(request.user, obj)
        return may_change_doctor(request.user, obj)


class PatientDeletion(BasePermission):
    """Everyone changes the patients they see; deleting one is for its creator, the front desk and staff."""

    message = "You may update this patient but not delete it: only its creator, the front desk and staff may."

    def has_object_permission(self, request, view, obj):
        return request.method != "DELETE" or may_delete_patient(request.user, obj)
