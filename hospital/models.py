"""Patients, doctors and their assignments. Every invariant the API promises is also a database constraint."""

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower

MAX_PATIENT_AGE = 150
MAX_APPOINTMENTS_PER_DAY = 100


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


class CaseInsensitiveUserManager(UserManager):
    """Log in with any case of the username, as it is unique regardless of case."""

    def get_by_natural_key(self, username):
        return self.get(username__iexact=username)


class User(AbstractUser):
    """An account. Usernames are unique regardless of case; an email address is required."""

    email = models.EmailField("email address")

    objects = CaseInsensitiveUserManager()

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        constraints = [
            models.UniqueConstraint(Lower("username"), name="user_username_case_insensitive_unique"),
        ]


class VisibleToQuerySet(models.QuerySet):
    """The privacy rule, in one place: a user sees the rows of their own patients; staff see all."""

    owner_lookup: str

    def visible_to(self, user):
        if not user.is_authenticated:
            return self.none()
        return self if user.is_staff else self.filter(**{self.owner_lookup: user})


class PatientQuerySet(VisibleToQuerySet):
    owner_lookup = "created_by"


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

    objects = PatientQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [
            # The owner's list in default order; also serves the created_by foreign key.
            models.Index(fields=["created_by", "id"], name="patient_owner_id_idx"),
            models.Index(fields=["lastname", "firstname"], name="patient_name_idx"),
            models.Index(fields=["age"], name="patient_age_idx"),
            models.Index(fields=["gender"], name="patient_gender_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(age__gte=0, age__lte=MAX_PATIENT_AGE), name="patient_age_range"),
            models.CheckConstraint(condition=models.Q(gender__in=Gender.values), name="patient_gender_valid"),
        ]

    def __str__(self):
        return self.full_name

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


class PatientDoctorMappingQuerySet(VisibleToQuerySet):
    owner_lookup = "patient__created_by"


class PatientDoctorMapping(models.Model):
    """A doctor assigned to a patient. Deleting either side removes the assignment."""

    # The unique (patient, doctor) index also serves lookups by patient.
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="doctor_mappings", db_index=False)
    doctor = models.ForeignKey(Doctor, on_delete=models.CASCADE, related_name="patient_mappings")
    assigned_at = models.DateTimeField(auto_now_add=True)

    objects = PatientDoctorMappingQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["patient", "doctor"], name="unique_patient_doctor"),
        ]

    def __str__(self):
        return f"{self.patient_id} -> {self.doctor_id}"
