"""Refresh tokens that name their login session, and are recorded without their text.

A login starts a session (a token family): its id, the `fam` claim, is carried by the refresh token, by
every access token made from it and by every refresh token that rotation issues after it. Logout and the
reuse of a rotated refresh token revoke the whole family (hospital.services, hospital.revocation).
"""

import hashlib
import uuid

from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import BlacklistMixin, RefreshToken
from rest_framework_simplejwt.utils import datetime_from_epoch

FAMILY_CLAIM = "fam"


def token_digest(raw_token: str) -> str:
    """What the database keeps instead of a token: its SHA-256, which identifies it but cannot be used.

    Migration 0006 makes PostgreSQL apply the same digest to any other text written to the column.
    """
    return "sha256:" + hashlib.sha256(raw_token.encode()).hexdigest()


def token_family(token) -> str | None:
    """The session a token belongs to. A refresh token issued before sessions were named is its own (its jti);
    an access token from then has none, and simply expires."""
    family = token.get(FAMILY_CLAIM)
    if family is None and token.get(api_settings.TOKEN_TYPE_CLAIM) == RefreshToken.token_type:
        return token.get(api_settings.JTI_CLAIM)
    return family


class SessionRefreshToken(RefreshToken):
    """simplejwt's refresh token, with the session's id, recorded (jti, user, expiry) with a digest of its text.

    The record lets the token be blacklisted once used; simplejwt's own for_user() would store the token
    itself, usable by anyone who can read the table.
    """

    @classmethod
    def for_user(cls, user, *, family: str | None = None) -> "SessionRefreshToken":
        """A token for `user` in session `family`, or in a new session."""
        # Token.for_user (the claims), skipping BlacklistMixin.for_user (the record with the raw token).
        token = super(BlacklistMixin, cls).for_user(user)
        token[FAMILY_CLAIM] = family or uuid.uuid4().hex
        OutstandingToken.objects.create(
            user=user,
            jti=token[api_settings.JTI_CLAIM],
            token=token_digest(str(token)),
            created_at=token.current_time,
            expires_at=datetime_from_epoch(token["exp"]),
        )
        return token
