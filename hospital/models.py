"""Patients, doctors and their assignments. Every invariant the API promises is also a database constraint."""

from datetime import timedelta

from django.contrib.auth.models import AbstractUser, UserManager
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import (
    ArrayField,
    BigIntegerRangeField,
    DateTimeRangeField,
    IntegerRangeField,
    RangeOperators,
)
from django.contrib.postgres.indexes import GinIndex
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F
from django.db.models.functions import Length, Now
from django.db.models.lookups import GreaterThanOrEqual
from simple_history.models import HistoricalRecords

from hospital.scheduling import MINUTES_PER_DAY
from hospital.usernames import MAX_USERNAME_LENGTH, USERNAME_TAKEN, username_key, validate_username

MAX_PATIENT_AGE = 150
MAX_APPOINTMENTS_PER_DAY = 100
MAX_ID = 2**63 - 1  # PostgreSQL bigint
MIN_GRANT_REASON = 10


class Gender(models.TextChoices):
    MALE = "M", "Male"
    FEMALE = "F", "Female"
    OTHER = "O", "Other"


class Specialization(models.TextChoices):
    GENERAL_PRACTICE = "GEN", "General practice"
    CARDIOLOGY = "CARD", "Cardiology"
    DERMATOLOGY = "DERM", "Dermatology"
    NEUROLOGY = "NEUR", "Neurology"
    PEDIATRICS = "PEDS", "Pediatrics"
    ORTHOPEDICS = "ORTH", "Orthopedics"
    ONCOLOGY = "ONCO", "Oncology"
    PSYCHIATRY = "PSYC", "Psychiatry"
    RADIOLOGY = "RADI", "Radiology"
    ENT = "ENT", "Ear, nose and throat"


class CanonicalUsernameUserManager(UserManager):
    """Looks accounts up by the canonical form of the username (login through the API and the admin)."""

    def get_by_natural_key(self, username):
        return self.get(username_key=username_key(username))


# The name migration 0001 refers to.
CaseInsensitiveUserManager = CanonicalUsernameUserManager


class User(AbstractUser):
    """An account. No two usernames look alike (see hospital.usernames); an email address is required."""

    username = models.CharField(
        "username",
        max_length=MAX_USERNAME_LENGTH,
        unique=True,
        help_text="Required. 150 characters or fewer. Letters, digits and @/./+/-/_ only.",
        validators=[validate_username],
        error_messages={"unique": USERNAME_TAKEN},
    )
    # The username in the form names are compared in; unique, so look-alikes cannot both exist. "C" collation:
    # equality byte for byte, whatever the database's locale (and no index to rebuild when libc's changes).
    username_key = models.TextField(editable=False, db_collation="C")
    email = models.EmailField("email address")
    # The doctor a clinician account acts as: it sees that doctor's assigned patients (hospital.access). PROTECT:
    # a doctor who is someone's identity is not deleted from under the account.
    doctor = models.ForeignKey(
        "Doctor", on_delete=models.PROTECT, null=True, blank=True, related_name="accounts", db_index=False
    )

    objects = CanonicalUsernameUserManager()

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        constraints = [
            models.UniqueConstraint(fields=["username_key"], name="user_username_key_unique"),
            # A doctor is linked to at most one account (NULLs are distinct: any number of unlinked accounts).
            models.UniqueConstraint(fields=["doctor"], name="user_doctor_linked_once"),
        ]

    def clean(self):
        """A look-alike of another account's name is a form error (the admin), not a database error."""
        super().clean()
        if not isinstance(self.username, str):  # the field's own error is reported
            return
        if User.objects.filter(username_key=username_key(self.username)).exclude(pk=self.pk).exists():
            raise ValidationError({"username": USERNAME_TAKEN})

    def save(self, *args, **kwargs):
        """Every way of saving a user (create_user, createsuperuser, the admin, the API) keeps the key in step."""
        self.username_key = username_key(self.username)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "username" in update_fields:
            kwargs["update_fields"] = {*update_fields, "username_key"}
        super().save(*args, **kwargs)


class Patient(models.Model):
    firstname = models.CharField(max_length=100)
    lastname = models.CharField(max_length=100)
    age = models.PositiveSmallIntegerField(validators=[MinValueValidator(0), MaxValueValidator(MAX_PATIENT_AGE)])
    gender = models.CharField(max_length=1, choices=Gender.choices)
    # Not unique: family members often share an address.
    email = models.EmailField(blank=True)
    # PROTECT: deleting an account must never delete medical records.
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="patients", db_index=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Soft delete: a deleted patient keeps its row (and its assignments) and can be restored by staff.
    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["id"]
        indexes = [
            # The owner's list in default order; also serves the created_by foreign key.
            models.Index(fields=["created_by", "id"], name="patient_owner_id_idx"),
            models.Index(fields=["lastname", "firstname"], name="patient_name_idx"),
            models.Index(fields=["age"], name="patient_age_idx"),
            models.Index(fields=["gender"], name="patient_gender_idx"),
            # ?ordering=created_at / updated_at: without them, a sort of every row (32 ms at 100k, EXPLAIN).
            models.Index(fields=["created_at"], name="patient_created_at_idx"),
            models.Index(fields=["updated_at"], name="patient_updated_at_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(age__gte=0, age__lte=MAX_PATIENT_AGE), name="patient_age_range"),
            models.CheckConstraint(condition=models.Q(gender__in=Gender.values), name="patient_gender_valid"),
            models.CheckConstraint(
                condition=models.Q(deleted_at__isnull=True, deleted_by__isnull=True)
                | models.Q(deleted_at__isnull=False, deleted_by__isnull=False),
                name="patient_deleted_by_with_deleted_at",
            ),
        ]

    def __str__(self):
        return self.full_name

    @property
    def is_deleted(self):
        return self.deleted_at is not None

    @property
    def full_name(self):
        return f"{self.firstname} {self.lastname}"


class Doctor(models.Model):
    firstname = models.CharField(max_length=100)
    lastname = models.CharField(max_length=100)
    specialization = models.CharField(max_length=4, choices=Specialization.choices)
    max_appointments_per_day = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(MAX_APPOINTMENTS_PER_DAY)]
    )
    gender = models.CharField(max_length=1, choices=Gender.choices)
    email = models.EmailField(blank=True)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="doctors")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["lastname", "firstname"], name="doctor_name_idx"),
            models.Index(fields=["specialization"], name="doctor_specialization_idx"),
            models.Index(fields=["gender"], name="doctor_gender_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    max_appointments_per_day__gte=1, max_appointments_per_day__lte=MAX_APPOINTMENTS_PER_DAY
                ),
                name="doctor_max_appointments_range",
            ),
            models.CheckConstraint(condition=models.Q(gender__in=Gender.values), name="doctor_gender_valid"),
            models.CheckConstraint(
                condition=models.Q(specialization__in=Specialization.values), name="doctor_specialization_valid"
            ),
        ]

    def __str__(self):
        return f"Dr. {self.firstname} {self.lastname} ({self.specialization})"


class PatientDoctorMapping(models.Model):
    """A doctor assigned to a patient. Deleting the doctor removes the assignment; a patient's soft
    delete hides it, and restoring the patient shows it again."""

    # The unique (patient, doctor) index also serves lookups by patient.
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="doctor_mappings", db_index=False)
    doctor = models.ForeignKey(Doctor, on_delete=models.CASCADE, related_name="patient_mappings")
    assigned_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["assigned_at"], name="mapping_assigned_at_idx")]
        constraints = [
            models.UniqueConstraint(fields=["patient", "doctor"], name="unique_patient_doctor"),
        ]

    def __str__(self):
        return f"{self.patient_id} -> {self.doctor_id}"


class EmergencyAccessGrant(models.Model):
    """A clinician's time-boxed, reasoned access to a patient outside their care team ("break the glass").

    Kept for good, for review: staff list them at /api/emergency-access/. While `expires_at` is ahead, the
    patient is visible to the clinician (hospital.access).
    """

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="emergency_grants")
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="emergency_grants", db_index=False)
    reason = models.CharField(max_length=500)
    granted_at = models.DateTimeField(db_default=Now())
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-granted_at", "-id"]
        indexes = [
            # The visibility rule's lookup: this user's live grants.
            models.Index(fields=["user", "expires_at", "patient"], name="grant_user_expires_idx"),
            models.Index(fields=["granted_at"], name="grant_granted_at_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(expires_at__gt=F("granted_at")), name="grant_expires_after"),
            models.CheckConstraint(
                condition=models.Q(GreaterThanOrEqual(Length("reason"), MIN_GRANT_REASON)), name="grant_reason_length"
            ),
        ]

    def __str__(self):
        return f"{self.user_id} -> {self.patient_id} until {self.expires_at:%Y-%m-%d %H:%M}"


class SingletonRange(models.Func):
    """int8range(x, x, '[]'): the range holding one value. Two overlap exactly when the values are equal, so an
    exclusion constraint can say "same doctor and overlapping times" with GiST's built-in range operators alone.
    (btree_gist's `=` would need an extension the embedded PostgreSQL does not ship.)"""

    function = "INT8RANGE"
    template = "%(function)s(%(expressions)s, %(expressions)s, '[]')"
    output_field = BigIntegerRangeField()


class TimeRange(models.Func):
    """tstzrange(start, end, '[)'): half-open, so back-to-back appointments do not overlap."""

    function = "TSTZRANGE"
    template = "%(function)s(%(expressions)s, '[)')"
    output_field = DateTimeRangeField()


class MinuteRange(models.Func):
    """int4range(start_minute, end_minute, '[)'): a working-hours range of one weekday."""

    function = "INT4RANGE"
    template = "%(function)s(%(expressions)s, '[)')"
    output_field = IntegerRangeField()


class WorkingHours(models.Model):
    """One range of a doctor's week, in the clinic's wall-clock minutes (0 = Monday; 1440 = midnight at its end).

    A doctor without any row can be booked at any time.
    """

    doctor = models.ForeignKey(Doctor, on_delete=models.CASCADE, related_name="working_hours")
    weekday = models.PositiveSmallIntegerField()
    start_minute = models.PositiveSmallIntegerField()
    end_minute = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["doctor", "weekday", "start_minute"]
        constraints = [
            models.CheckConstraint(condition=models.Q(weekday__gte=0, weekday__lte=6), name="working_hours_weekday"),
            models.CheckConstraint(
                condition=models.Q(
                    start_minute__gte=0, end_minute__lte=MINUTES_PER_DAY, start_minute__lt=F("end_minute")
                ),
                name="working_hours_range",
            ),
            ExclusionConstraint(
                name="working_hours_no_overlap",
                expressions=[
                    (SingletonRange("doctor"), RangeOperators.OVERLAPS),
                    (SingletonRange("weekday"), RangeOperators.OVERLAPS),
                    (MinuteRange("start_minute", "end_minute"), RangeOperators.OVERLAPS),
                ],
            ),
        ]

    def __str__(self):
        return f"{self.doctor_id} {self.weekday} {self.start_minute}-{self.end_minute}"


class AppointmentStatus(models.TextChoices):
    BOOKED = "booked"
    ARRIVED = "arrived"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    NOSHOW = "noshow"


# The statuses in which an appointment holds its time: no two of a doctor's (or a patient's) may overlap.
TIME_HOLDING_STATUSES = [AppointmentStatus.BOOKED, AppointmentStatus.ARRIVED, AppointmentStatus.FULFILLED]
MIN_APPOINTMENT = timedelta(minutes=5)
MAX_APPOINTMENT = timedelta(hours=8)


class Appointment(models.Model):
    """A patient's appointment with a doctor. Never erased: cancelled instead.

    Two invariants hold whatever writes them (the API, the admin, psql), under any concurrency:
    - no overlap: exclusion constraints on the doctor's and on the patient's time-holding appointments;
    - the daily limit: a trigger (migration `appointment_daily_limit`) counts the doctor's non-cancelled, non-overbooked
      appointments on the clinic day (in `hospital.clinic_time_zone`, which every connection sets) under a lock
      on the doctor's row, and refuses one more than `max_appointments_per_day`.
    """

    # PROTECT: appointments are medical records; neither a patient (soft-deleted anyway) nor a doctor with
    # appointments is erased from under them.
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="appointments")
    doctor = models.ForeignKey(Doctor, on_delete=models.PROTECT, related_name="appointments", db_index=False)
    start = models.DateTimeField()
    end = models.DateTimeField()
    status = models.CharField(max_length=9, choices=AppointmentStatus.choices, default=AppointmentStatus.BOOKED)
    overbooked = models.BooleanField(default=False)
    reason = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+", db_index=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["start", "id"]
        indexes = [
            # A doctor's day (availability, the daily limit, ?doctor=&date=).
            models.Index(fields=["doctor", "start"], name="appointment_doctor_start_idx"),
            models.Index(fields=["start"], name="appointment_start_idx"),
            models.Index(fields=["created_at"], name="appointment_created_at_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(end__gt=F("start")), name="appointment_end_after_start"),
            models.CheckConstraint(
                condition=models.Q(end__gte=F("start") + MIN_APPOINTMENT, end__lte=F("start") + MAX_APPOINTMENT),
                name="appointment_length",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=AppointmentStatus.values), name="appointment_status_valid"
            ),
            ExclusionConstraint(
                name="appointment_doctor_no_overlap",
                expressions=[
                    (SingletonRange("doctor"), RangeOperators.OVERLAPS),
                    (TimeRange("start", "end"), RangeOperators.OVERLAPS),
                ],
                condition=models.Q(status__in=TIME_HOLDING_STATUSES),
            ),
            ExclusionConstraint(
                name="appointment_patient_no_overlap",
                expressions=[
                    (SingletonRange("patient"), RangeOperators.OVERLAPS),
                    (TimeRange("start", "end"), RangeOperators.OVERLAPS),
                ],
                condition=models.Q(status__in=TIME_HOLDING_STATUSES),
            ),
        ]

    def __str__(self):
        return f"{self.start:%Y-%m-%d %H:%M} {self.doctor_id} {self.patient_id} {self.status}"


class AuditAction(models.TextChoices):
    CREATE = "create"
    READ = "read"
    UPDATE = "update"
    DELETE = "delete"
    RESTORE = "restore"
    LIST = "list"
    HISTORY = "history"
    ACCESS_LOG = "access_log"
    LOGIN = "login"
    OVERBOOK = "overbook"
    EMERGENCY_ACCESS = "emergency_access"
    REFRESH = "refresh"
    LOGOUT = "logout"


class AuditResource(models.TextChoices):
    PATIENT = "patient"
    DOCTOR = "doctor"
    MAPPING = "mapping"
    APPOINTMENT = "appointment"
    EMERGENCY_ACCESS = "emergency_access"
    USER = "user"
    AUDIT = "audit"


class AuditEvent(models.Model):
    """One API request touching medical or account records (HIPAA 45 CFR 164.312(b)).

    Ids only, never names, emails or bodies. Append-only: a trigger (migration 0002) rejects UPDATE and
    DELETE. `actor` is a plain id, not a foreign key, so that the trail outlives the accounts it names.
    """

    at = models.DateTimeField(db_default=Now())
    actor = models.BigIntegerField(null=True, blank=True, help_text="User id; null for anonymous requests.")
    action = models.CharField(max_length=16, choices=AuditAction.choices)
    resource_type = models.CharField(max_length=16, choices=AuditResource.choices)
    resource_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    # The patients whose data the request touched (directly or through their assignments).
    patient_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    outcome = models.PositiveSmallIntegerField(help_text="HTTP status code of the response.")
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, help_text="The server's id of the request (X-Request-ID).")
    # What the client sent as X-Request-ID, if well formed: a correlation value only, never trusted as an id.
    client_request_id = models.CharField(max_length=64, blank=True, db_default="")

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["actor", "id"], name="audit_actor_idx"),
            models.Index(fields=["at"], name="audit_at_idx"),
            GinIndex(fields=["resource_ids"], name="audit_resource_ids_idx"),
            GinIndex(fields=["patient_ids"], name="audit_patient_ids_idx"),
        ]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.resource_type} {self.outcome}"


class IdempotencyKey(models.Model):
    """The first response to a POST sent with an `Idempotency-Key`, replayed to retries for 24 hours."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=255)
    # SHA-256 of the operation and JSON body: the same key with another request is refused.
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    # JSON text rather than jsonb, which would reorder the keys: a replay returns the same bytes.
    response_body = models.TextField(null=True)  # noqa: DJ001 (null: no response stored yet)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_at_idx")]

    def __str__(self):
        return f"{self.user_id}: {self.key}"


class TokenFamilyRevocation(models.TextChoices):
    LOGOUT = "logout"
    REUSE = "reuse", "Rotated refresh token reused"


class RevokedTokenFamily(models.Model):
    """A login session that was ended: every refresh token of it is refused (hospital.tokens, services).

    Ended at logout, or when a refresh token of it was presented after it had been rotated: one of the two
    holders is not the user (OAuth 2.0 Security BCP, refresh token rotation). Once `expires_at` has passed,
    every token of the session has expired anyway, and the row may be deleted.
    """

    family = models.UUIDField(primary_key=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=16, choices=TokenFamilyRevocation.choices)
    revoked_at = models.DateTimeField(db_default=Now())
    expires_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "revoked token families"

    def __str__(self):
        return f"{self.family} ({self.reason})"
