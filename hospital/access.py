"""Who sees and may change what, in one place: the patient visibility rule (as SQL) and the permission checks
every view and serializer reads. Everything hanging off a patient (mappings, history, access log,
appointments) is visible exactly when its patient is."""

from django.db.models import Q, QuerySet

from hospital.models import Patient, PatientDoctorMapping


def patient_scope(user, *, via: str = "") -> Q:
    """The live patients `user` sees, as a filter on a path to a patient (`via="patient__"` for rows that belong
    to one). Staff see every live patient; others the patients they created."""
    live = Q(**{f"{via}deleted_at__isnull": True})
    if not user.is_authenticated:
        return Q(pk__in=[])
    if user.is_staff:
        return live
    return live & Q(**{f"{via}created_by": user})


def visible_patients(user, *, deleted: bool | None = False) -> QuerySet[Patient]:
    """`deleted`: False, live patients; True, deleted ones; None, both. Deleted patients are for staff only: for
    anyone else True finds nothing and None the live ones."""
    if not user.is_authenticated:
        return Patient.objects.none()
    if not user.is_staff:
        return Patient.objects.none() if deleted else Patient.objects.filter(patient_scope(user))
    if deleted is None:
        return Patient.objects.all()
    return Patient.objects.filter(deleted_at__isnull=not deleted)


def visible_mappings(user) -> QuerySet[PatientDoctorMapping]:
    """The assignments of the live patients `user` sees."""
    return PatientDoctorMapping.objects.filter(patient_scope(user, via="patient__"))


def may_overbook(user) -> bool:
    """Whether `user` may book past a doctor's daily limit (never past an overlap)."""
    return user.is_staff


def may_change_doctor(user, doctor) -> bool:
    """A doctor (and its working hours) is changed by its creator or staff."""
    return user.is_staff or doctor.created_by_id == user.pk
