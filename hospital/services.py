"""Writes that touch several rows, each under one transaction."""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Exists
from django.utils import timezone
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import datetime_from_epoch, get_md5_hash_password

from hospital import revocation
from hospital.models import RevokedTokenFamily, TokenFamilyRevocation, User
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
