"""Who sees and may change what, in one place: the role table, the patient visibility rule (as SQL) and the
permission checks that views, serializers and permission classes read.

Everything hanging off a patient (its mappings, history, access log, appointments) is visible exactly when its
patient is. A patient someone may not see answers like a missing one (404), on every route.

| account                    | sees (live patients)                                   | may delete (soft)  |
|----------------------------|--------------------------------------------------------|--------------------|
| any                        | those it created                                       | those              |
| clinician linked to doctor | + those assigned to that doctor + live emergency grants | only its own       |
| front_desk                 | all                                                    | all it sees        |
| staff                      | all; deleted ones on request                           | all; also restore  |

Everyone updates what they see. The table is ROLE_CAPABILITIES below; OpenEMR's ACL matrix and Medplum's access
policies are tables too, ours is a small Python one.
"""

from enum import StrEnum

from django.contrib.postgres.aggregates import ArrayAgg
from django.db import models
from django.db.models import Q, QuerySet, Value
from django.db.models.functions import Now

from hospital.models import EmergencyAccessGrant, Patient, PatientDoctorMapping, User


class Role(models.TextChoices):
    """Granted by staff (as Django groups of these names, created by a migration)."""

    FRONT_DESK = "front_desk", "Front desk"
    CLINICIAN = "clinician", "Clinician"


class Capability(StrEnum):
    SEE_ALL_LIVE_PATIENTS = "see all live patients"
    SEE_CARE_TEAM_PATIENTS = "see the linked doctor's assigned patients and emergency grants"
    DELETE_VISIBLE_PATIENTS = "delete any patient it sees"
    SEE_DELETED_PATIENTS = "list and restore deleted patients"
    CHANGE_ANY_DOCTOR = "change any doctor and its working hours"
    CHANGE_LINKED_DOCTOR = "change the linked doctor and its working hours"
    DELETE_ANY_DOCTOR = "delete any doctor"
    OVERBOOK = "book past a doctor's daily limit"
    EMERGENCY_ACCESS = "grant itself emergency access to a patient"
    MANAGE_ACCOUNTS = "grant roles, link doctors, deactivate accounts"
    REVIEW = "read the audit trail and the emergency access grants"


ROLE_CAPABILITIES: dict[str, frozenset[Capability]] = {
    Role.CLINICIAN: frozenset(
        {Capability.SEE_CARE_TEAM_PATIENTS, Capability.CHANGE_LINKED_DOCTOR, Capability.EMERGENCY_ACCESS}
    ),
    Role.FRONT_DESK: frozenset(
        {
            Capability.SEE_ALL_LIVE_PATIENTS,
            Capability.DELETE_VISIBLE_PATIENTS,
            Capability.CHANGE_ANY_DOCTOR,
            Capability.OVERBOOK,
        }
    ),
}
# Staff (is_staff) are the administrators: every capability but emergency access, which is a clinician's act.
STAFF_CAPABILITIES = frozenset(Capability) - {Capability.SEE_CARE_TEAM_PATIENTS, Capability.EMERGENCY_ACCESS}


def with_roles(users: QuerySet[User]) -> QuerySet[User]:
    """Users with their role names (`role_names`) loaded in the same query."""
    return users.annotate(
        role_names=ArrayAgg("groups__name", filter=Q(groups__name__in=Role.values), distinct=True, default=Value([]))
    )


def roles_of(user) -> frozenset[str]:
    """The user's roles: from `role_names` when the user was loaded with_roles(), else one query, remembered."""
    if not user.is_authenticated:
        return frozenset()
    names = getattr(user, "role_names", None)
    if names is None:
        names = list(user.groups.filter(name__in=Role.values).values_list("name", flat=True))
        user.role_names = names
    return frozenset(names)


def capabilities(user) -> frozenset[Capability]:
    if not user.is_authenticated:
        return frozenset()
    granted = set(STAFF_CAPABILITIES) if user.is_staff else set()
    for role in roles_of(user):
        granted |= ROLE_CAPABILITIES[role]
    return frozenset(granted)


def can(user, capability: Capability) -> bool:
    return capability in capabilities(user)


def patient_scope(user, *, via: str = "") -> Q:
    """The live patients `user` sees, as a filter on a path to a patient (`via="patient__"` for rows that belong
    to one). One SQL condition over indexed columns: the creator, and for clinicians `IN` subqueries over the
    linked doctor's assignments (the unique (patient, doctor) index) and the user's live emergency grants."""
    if not user.is_authenticated:
        return Q(pk__in=[])
    live = Q(**{f"{via}deleted_at__isnull": True})
    granted = capabilities(user)
    if Capability.SEE_ALL_LIVE_PATIENTS in granted:
        return live
    scope = Q(**{f"{via}created_by": user.pk})
    if Capability.SEE_CARE_TEAM_PATIENTS in granted:
        if user.doctor_id is not None:
            assigned = PatientDoctorMapping.objects.filter(doctor_id=user.doctor_id).values("patient_id")
            scope |= Q(**{f"{via}pk__in": assigned})
        granted_now = EmergencyAccessGrant.objects.filter(user_id=user.pk, expires_at__gt=Now()).values("patient_id")
        scope |= Q(**{f"{via}pk__in": granted_now})
    return live & scope


def visible_patients(user, *, deleted: bool | None = False) -> QuerySet[Patient]:
    """`deleted`: False, live patients; True, deleted ones; None, both. Deleted patients are for staff only: for
    anyone else True finds nothing and None the live ones they see."""
    if not user.is_authenticated:
        return Patient.objects.none()
    if not can(user, Capability.SEE_DELETED_PATIENTS):
        return Patient.objects.none() if deleted else Patient.objects.filter(patient_scope(user))
    if deleted is None:
        return Patient.objects.all()
    return Patient.objects.filter(deleted_at__isnull=not deleted)


def visible_mappings(user) -> QuerySet[PatientDoctorMapping]:
    """The assignments of the live patients `user` sees."""
    return PatientDoctorMapping.objects.filter(patient_scope(user, via="patient__"))


def may_delete_patient(user, patient) -> bool:
    """Of the patients it sees, one it created, or any for those who may delete what they see."""
    return patient.created_by_id == user.pk or can(user, Capability.DELETE_VISIBLE_PATIENTS)


def may_change_doctor(user, doctor) -> bool:
    """A doctor (and its working hours): its creator, staff, the front desk, and the clinician linked to it."""
    return (
        doctor.created_by_id == user.pk
        or can(user, Capability.CHANGE_ANY_DOCTOR)
        or (can(user, Capability.CHANGE_LINKED_DOCTOR) and user.doctor_id == doctor.pk)
    )


def may_delete_doctor(user, doctor) -> bool:
    return doctor.created_by_id == user.pk or can(user, Capability.DELETE_ANY_DOCTOR)


def may_overbook(user) -> bool:
    """Whether `user` may book past a doctor's daily limit (never past an overlap)."""
    return can(user, Capability.OVERBOOK)
