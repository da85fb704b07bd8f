"""Small helpers that create rows and authenticated clients for the tests."""

import itertools
from datetime import timedelta

from django.contrib.auth.models import Group
from django.utils import timezone
from rest_framework.test import APIClient

from hospital.models import (
    Appointment,
    Doctor,
    EmergencyAccessGrant,
    Gender,
    Patient,
    PatientDoctorMapping,
    Specialization,
    User,
)
from hospital.tokens import SessionRefreshToken

PASSWORD = "a-long-and-unusual-passphrase"
_sequence = itertools.count(1)


def make_user(username=None, *, is_staff=False, password=PASSWORD, **fields) -> User:
    username = username or f"user{next(_sequence)}"
    return User.objects.create_user(
        username=username, email=f"{username}@example.com", password=password, is_staff=is_staff, **fields
    )


def make_front_desk(username=None) -> User:
    user = make_user(username)
    user.groups.add(Group.objects.get_or_create(name="front_desk")[0])
    return user


def make_clinician(doctor: Doctor, username=None) -> User:
    """An account with the clinician role, acting as `doctor`."""
    user = make_user(username, doctor=doctor)
    user.groups.add(Group.objects.get_or_create(name="clinician")[0])
    return user


def make_grant(
    user: User, patient: Patient, *, minutes: int = 60, reason="Unconscious in the emergency room"
) -> EmergencyAccessGrant:
    """An emergency access grant from now on for `minutes` (negative: one that has already expired)."""
    start = timezone.now() if minutes > 0 else timezone.now() + timedelta(minutes=2 * minutes)
    return EmergencyAccessGrant.objects.create(
        user=user,
        patient=patient,
        reason=reason,
        granted_at=start,
        expires_at=timezone.now() + timedelta(minutes=minutes),
    )


def make_patient(created_by: User, **fields) -> Patient:
    n = next(_sequence)
    values = {"firstname": f"Pat{n}", "lastname": f"Ient{n}", "age": 40, "gender": Gender.FEMALE}
    return Patient.objects.create(created_by=created_by, **{**values, **fields})


def make_doctor(created_by: User, **fields) -> Doctor:
    n = next(_sequence)
    values = {
        "firstname": f"Doc{n}",
        "lastname": f"Tor{n}",
        "specialization": Specialization.CARDIOLOGY,
        "gender": Gender.MALE,
    }
    return Doctor.objects.create(created_by=created_by, **{**values, **fields})


def make_mapping(patient: Patient, doctor: Doctor) -> PatientDoctorMapping:
    return PatientDoctorMapping.objects.create(patient=patient, doctor=doctor)


def make_appointment(patient: Patient, doctor: Doctor, start, minutes: int = 30, **fields) -> Appointment:
    """Straight into the database (its constraints and trigger still apply), not through the booking rules."""
    return Appointment.objects.create(
        patient=patient,
        doctor=doctor,
        start=start,
        end=start + timedelta(minutes=minutes),
        created_by=fields.pop("created_by", patient.created_by),
        **fields,
    )


def client_for(user: User | None) -> APIClient:
    """An API client sending `user`'s access token, issued as /login/ issues it (or no credentials for None)."""
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {SessionRefreshToken.for_user(user).access_token}")
    return client
