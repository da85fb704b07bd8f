"""Writes that touch several rows, each under one transaction."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from rest_framework import serializers
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import datetime_from_epoch, get_md5_hash_password

from hospital import revocation
from hospital.access import visible_patients, with_roles
from hospital.exceptions import Conflict, save_or_field_error, violated_constraint
from hospital.metrics import BOOKING_CONFLICTS
from hospital.models import (
    TIME_HOLDING_STATUSES,
    Appointment,
    AppointmentStatus,
    Doctor,
    EmergencyAccessGrant,
    Patient,
    PatientDoctorMapping,
    RevokedTokenFamily,
    TokenFamilyRevocation,
    User,
    WorkingHours,
)
from hospital.scheduling import Interval, clinic_day, within_one, working_intervals
from hospital.tokens import SessionRefreshToken, token_digest, token_family


class UnverifiedBlacklistRefreshToken(RefreshToken):
    """A refresh token whose signature, expiry and type are verified, but not its blacklist entry.

    The blacklist is then checked by `redeem_refresh_token` with an insert that the database makes
    atomic, instead of simplejwt's separate check-then-insert, which lets two concurrent requests
    both redeem the same token.
    """

    def check_blacklist(self):
        pass


class RefreshTokenReused(InvalidToken):
    """A refresh token presented again after it was redeemed: its session must end."""

    def __init__(self, *, family: str, user: User):
        super().__init__("Token is blacklisted")
        self.family = family
        self.user = user


def redeem_refresh_token(raw_token: str, *, user: User | None = None) -> tuple[User, RefreshToken]:
    """Blacklist a refresh token; return its (active) user and the token. A token is redeemed at most once.

    The unique index on the blacklist's token column decides races: exactly one caller's insert
    succeeds; every other caller gets RefreshTokenReused. With `user`, the token must be theirs.
    Only the token's digest is recorded (hospital.tokens).
    """
    try:
        token = UnverifiedBlacklistRefreshToken(raw_token)
    except TokenError as error:
        raise InvalidToken(str(error)) from None

    family = token_family(token)
    owner = (
        User.objects.filter(
            **{api_settings.USER_ID_FIELD: token.payload.get(api_settings.USER_ID_CLAIM)}, is_active=True
        )
        .annotate(session_revoked=Exists(RevokedTokenFamily.objects.filter(family=family)))
        .first()
    )
    if (
        owner is None
        or owner.session_revoked
        or (user is not None and owner.pk != user.pk)
        # Changing the password revokes every token issued before.
        or token.get(api_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(owner.password)
    ):
        raise InvalidToken("Token is invalid or expired")

    try:
        with transaction.atomic():
            outstanding, _created = OutstandingToken.objects.get_or_create(
                jti=token[api_settings.JTI_CLAIM],
                defaults={
                    "user": owner,
                    "token": token_digest(raw_token),
                    "expires_at": datetime_from_epoch(token["exp"]),
                },
            )
            BlacklistedToken.objects.create(token=outstanding)
    except IntegrityError:
        raise RefreshTokenReused(family=family, user=owner) from None
    return owner, token


def revoke_token_families(families, *, user: User, reason: TokenFamilyRevocation) -> None:
    """End these sessions: their refresh tokens in the database, their access tokens once it commits."""
    families = {family for family in families if family}
    expires_at = timezone.now() + api_settings.REFRESH_TOKEN_LIFETIME + timedelta(minutes=1)
    RevokedTokenFamily.objects.bulk_create(
        [RevokedTokenFamily(family=family, user=user, reason=reason, expires_at=expires_at) for family in families],
        ignore_conflicts=True,
    )
    transaction.on_commit(lambda: revocation.deny_families(families))


def rotate_refresh_token(raw_token: str) -> SessionRefreshToken:
    """Redeem a refresh token and issue a new pair in its session (the new refresh token is recorded).

    A token that was already redeemed ends its session (the newer tokens stop working too) and is refused.
    """
    try:
        with transaction.atomic():
            owner, token = redeem_refresh_token(raw_token)
            return SessionRefreshToken.for_user(owner, family=token_family(token))
    except RefreshTokenReused as reuse:
        # Outside the block above, whose writes its exception rolled back; committed with the audit row.
        revoke_token_families([reuse.family], user=reuse.user, reason=TokenFamilyRevocation.REUSE)
        raise


def end_session(raw_refresh_token: str, *, user: User, access_token) -> None:
    """Logout: redeem the caller's refresh token and end its session and that of the access token used."""
    try:
        with transaction.atomic():
            _owner, token = redeem_refresh_token(raw_refresh_token, user=user)
            revoke_token_families(
                [token_family(token), token_family(access_token)], user=user, reason=TokenFamilyRevocation.LOGOUT
            )
    except RefreshTokenReused as reuse:
        revoke_token_families([reuse.family], user=reuse.user, reason=TokenFamilyRevocation.REUSE)
        raise


# ------------------------------------------------------------------------------------------ appointments


class Overlap(Conflict):
    """409 listing every clashing appointment; those of patients the caller may not see, by their times alone."""

    def __init__(self, conflicts: list[dict]):
        BOOKING_CONFLICTS.labels("overlap").inc()
        super().__init__(
            "This time overlaps other appointments of the doctor or the patient.", "overlap", conflicts=conflicts
        )


class FullyBooked(Conflict):
    def __init__(self, doctor: Doctor, day: date):
        BOOKING_CONFLICTS.labels("fully_booked").inc()
        super().__init__(
            f"The doctor is fully booked on {day.isoformat()} ({doctor.max_appointments_per_day} appointments).",
            "fully_booked",
        )


ALLOWED_TRANSITIONS = {
    AppointmentStatus.BOOKED: {AppointmentStatus.ARRIVED, AppointmentStatus.CANCELLED, AppointmentStatus.NOSHOW},
    AppointmentStatus.ARRIVED: {AppointmentStatus.FULFILLED, AppointmentStatus.CANCELLED},
}
OVERLAP_CONSTRAINTS = {"appointment_doctor_no_overlap", "appointment_patient_no_overlap"}
DAILY_LIMIT_CONSTRAINT = "appointment_daily_limit"


def lock_doctor(doctor_id: int) -> Doctor:
    """The doctor's row, locked until the transaction ends: bookings, reschedules and working-hour changes for
    one doctor take turns (the daily-limit trigger takes the same lock). FOR NO KEY UPDATE leaves other tables'
    foreign keys to the doctor unblocked."""
    return Doctor.objects.select_for_update(no_key=True).get(pk=doctor_id)


def doctor_working_intervals(doctor: Doctor, day: date, zone: ZoneInfo) -> list[Interval] | None:
    """The doctor's working hours on a clinic day as instants; None when the doctor has none at all (bookable
    at any time), [] when none fall on that weekday."""
    ranges = list(doctor.working_hours.values_list("weekday", "start_minute", "end_minute"))
    if not ranges:
        return None
    return working_intervals(day, [(start, end) for weekday, start, end in ranges if weekday == day.weekday()], zone)


def check_working_hours(doctor: Doctor, start: datetime, end: datetime) -> None:
    zone = settings.CLINIC_TIME_ZONE
    hours = doctor_working_intervals(doctor, clinic_day(start, zone), zone)
    if hours is not None and not within_one(hours, start, end):
        raise serializers.ValidationError({"start": ["This time is outside the doctor's working hours."]})


def appointment_conflicts(
    *, doctor_id: int, patient_id: int, start: datetime, end: datetime, viewer, exclude: int | None = None
) -> list[dict]:
    """The doctor's and the patient's time-holding appointments overlapping [start, end), in order; the id only of
    those whose patient `viewer` sees."""
    clashing = (
        Appointment.objects.filter(
            Q(doctor_id=doctor_id) | Q(patient_id=patient_id),
            status__in=TIME_HOLDING_STATUSES,
            start__lt=end,
            end__gt=start,
        )
        .exclude(pk=exclude)
        .annotate(visible=Exists(visible_patients(viewer).filter(pk=OuterRef("patient_id"))))
        .order_by("start", "id")
        .values("id", "start", "end", "visible")
    )
    return [{"id": row["id"] if row["visible"] else None, "start": row["start"], "end": row["end"]} for row in clashing]


def save_appointment(appointment: Appointment, *, viewer) -> None:
    """Insert or update the row; a constraint that still fires (a racing writer) becomes the 409 it means."""
    try:
        with transaction.atomic():
            appointment.save()
    except IntegrityError as error:
        constraint = violated_constraint(error)
        if constraint == DAILY_LIMIT_CONSTRAINT:
            zone = settings.CLINIC_TIME_ZONE
            raise FullyBooked(appointment.doctor, clinic_day(appointment.start, zone)) from None
        if constraint in OVERLAP_CONSTRAINTS:
            conflicts = appointment_conflicts(
                doctor_id=appointment.doctor_id,
                patient_id=appointment.patient_id,
                start=appointment.start,
                end=appointment.end,
                viewer=viewer,
                exclude=appointment.pk,
            )
            raise Overlap(conflicts) from None
        raise


def book_appointment(
    *, patient: Patient, doctor: Doctor, start: datetime, end: datetime, reason: str, overbook: bool, by
) -> Appointment:
    """Book a time: within the doctor's working hours, overlapping nothing of the doctor's or the patient's, within
    the doctor's daily limit unless overbooked. Assigns the doctor to the patient if not yet assigned."""
    with transaction.atomic():
        try:
            doctor = lock_doctor(doctor.pk)
        except Doctor.DoesNotExist:
            raise serializers.ValidationError({"doctor": ["This doctor no longer exists."]}) from None
        check_working_hours(doctor, start, end)
        conflicts = appointment_conflicts(doctor_id=doctor.pk, patient_id=patient.pk, start=start, end=end, viewer=by)
        if conflicts:
            raise Overlap(conflicts)
        appointment = Appointment(
            patient=patient, doctor=doctor, start=start, end=end, reason=reason, overbooked=overbook, created_by=by
        )
        save_appointment(appointment, viewer=by)
        PatientDoctorMapping.objects.get_or_create(patient=patient, doctor=doctor)
        return appointment


def reschedule_appointment(
    *, appointment: Appointment, start: datetime, end: datetime, reason: str, overbook: bool, by
) -> Appointment:
    """New times (and reason) for a booked appointment, every booking rule checked again. `overbook` is decided
    afresh: a move to another day must fit that day's limit unless overbooked again."""
    if appointment.status != AppointmentStatus.BOOKED:
        raise Conflict("Only a booked appointment can be rescheduled.", "not_editable")
    with transaction.atomic():
        doctor = lock_doctor(appointment.doctor_id)
        moved = (start, end) != (appointment.start, appointment.end)
        if moved:
            check_working_hours(doctor, start, end)
            conflicts = appointment_conflicts(
                doctor_id=doctor.pk,
                patient_id=appointment.patient_id,
                start=start,
                end=end,
                viewer=by,
                exclude=appointment.pk,
            )
            if conflicts:
                raise Overlap(conflicts)
            appointment.overbooked = overbook
        appointment.start, appointment.end, appointment.reason = start, end, reason
        appointment.doctor = doctor
        save_appointment(appointment, viewer=by)
        return appointment


def change_appointment_status(*, appointment: Appointment, status: str, now: datetime) -> Appointment:
    """Statuses only move forward: booked -> arrived | cancelled | noshow (once the start has passed);
    arrived -> fulfilled | cancelled."""
    if status == appointment.status:
        return appointment
    allowed = ALLOWED_TRANSITIONS.get(appointment.status, set())
    if status not in allowed or (status == AppointmentStatus.NOSHOW and appointment.start > now):
        when = " before its start" if status == AppointmentStatus.NOSHOW and status in allowed else ""
        raise Conflict(
            f"An appointment cannot go from {appointment.status} to {status}{when}.",
            "invalid_transition",
            allowed=sorted(allowed),
        )
    appointment.status = status
    appointment.save()
    return appointment


def replace_working_hours(*, doctor: Doctor, ranges: list[dict]) -> list[WorkingHours]:
    """The doctor's whole week replaced at once, under the doctor's lock so no booking checks half of it."""
    with transaction.atomic():
        doctor = lock_doctor(doctor.pk)
        doctor.working_hours.all().delete()
        return WorkingHours.objects.bulk_create(
            WorkingHours(doctor=doctor, weekday=item["weekday"], start_minute=item["start"], end_minute=item["end"])
            for item in ranges
        )


def cancel_future_appointments(*, patient: Patient, now: datetime) -> list[int]:
    """A deleted patient keeps no future bookings: each is cancelled (and so recorded in its history)."""
    cancelled = []
    for appointment in patient.appointments.select_for_update().filter(status=AppointmentStatus.BOOKED, start__gte=now):
        appointment.status = AppointmentStatus.CANCELLED
        appointment.save()
        cancelled.append(appointment.pk)
    return cancelled


# ------------------------------------------------------------------------------------------ care team


UNCHANGED = object()


def update_account(*, user: User, roles=UNCHANGED, doctor=UNCHANGED, is_active=UNCHANGED) -> User:
    """Staff change an account's roles (groups), its linked doctor and whether it is active, in one transaction.

    A doctor is linked to at most one account: the database's unique constraint decides between two staff
    linking the same doctor at once (one succeeds, the other gets a 400 naming `doctor`). The change reaches
    every worker on the account's next request (hospital.revocation).
    """
    with transaction.atomic():
        account = User.objects.select_for_update().get(pk=user.pk)
        if doctor is not UNCHANGED:
            account.doctor = doctor
        if is_active is not UNCHANGED:
            account.is_active = is_active
        save_or_field_error(
            lambda: account.save(update_fields=["doctor", "is_active"]),
            {"user_doctor_linked_once": {"doctor": ["This doctor is already linked to another account."]}},
        )
        if roles is not UNCHANGED:
            # get_or_create: the role groups come from a migration, but a group deleted in the admin must not
            # make a granted role silently vanish.
            account.groups.set([Group.objects.get_or_create(name=role)[0] for role in roles])
    return with_roles(User.objects).get(pk=user.pk)


def grant_emergency_access(*, patient: Patient, user: User, reason: str) -> EmergencyAccessGrant:
    """A clinician's access to one patient for EMERGENCY_ACCESS_MINUTES, with the reason kept for review."""
    now = timezone.now()
    return EmergencyAccessGrant.objects.create(
        patient=patient,
        user=user,
        reason=reason,
        granted_at=now,
        expires_at=now + timedelta(minutes=settings.EMERGENCY_ACCESS_MINUTES),
    )
