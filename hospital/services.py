"""Writes that touch several rows, each under one transaction."""

from django.db import IntegrityError, transaction
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import datetime_from_epoch, get_md5_hash_password

from hospital.models import User


class UnverifiedBlacklistRefreshToken(RefreshToken):
    """A refresh token whose signature, expiry and type are verified, but not its blacklist entry.

    The blacklist is then checked by `redeem_refresh_token` with an insert that the database makes
    atomic, instead of simplejwt's separate check-then-insert, which lets two concurrent requests
    both redeem the same token.
    """

    def check_blacklist(self):
        pass


def redeem_refresh_token(raw_token: str, *, user: User | None = None) -> User:
    """Blacklist a refresh token and return its (active) user. A token is redeemed at most once.

    The unique index on the blacklist's token column decides races: exactly one caller's insert
    succeeds, every other caller gets InvalidToken (401). With `user`, the token must be theirs.
    """
    try:
        token = UnverifiedBlacklistRefreshToken(raw_token)
    except TokenError as error:
        raise InvalidToken(str(error)) from None

    owner = User.objects.filter(
        **{api_settings.USER_ID_FIELD: token.payload.get(api_settings.USER_ID_CLAIM)}, is_active=True
    ).first()
    if (
        owner is None
        or (user is not None and owner.pk != user.pk)
        # Changing the password revokes every token issued before.
        or token.get(api_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(owner.password)
    ):
        raise InvalidToken("Token is invalid or expired")

    try:
        with transaction.atomic():
            outstanding, _created = OutstandingToken.objects.get_or_create(
                jti=token[api_settings.JTI_CLAIM],
                defaults={"user": owner, "token": raw_token, "expires_at": datetime_from_epoch(token["exp"])},
            )
            BlacklistedToken.objects.create(token=outstanding)
    except IntegrityError:
        raise InvalidToken("Token is blacklisted") from None
    return owner


def rotate_refresh_token(raw_token: str) -> RefreshToken:
    """Redeem a refresh token and issue a new pair for its user (the new refresh token is recorded)."""
    with transaction.atomic():
        owner = redeem_refresh_token(raw_token)
        return RefreshToken.for_user(owner)
