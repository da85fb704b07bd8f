"""JWT authentication that remembers each token's user instead of querying it on every request.

A list request was three queries, one of them this lookup. Each worker keeps the user in memory, with the
stamp the user had in the security store when it was loaded (hospital.revocation). Every request reads the
current stamp, and whether the token's session has been revoked, in one round trip to the store: a
deactivation, a password change or any other change saved through the ORM (API, admin, shell) therefore
takes effect on the next request in every worker sharing the store, and logout ends the session's access
tokens at once. While the store is unreachable, each request reads the user and its session's revocation from
the database instead (one query), so revocation stays immediate. USER_CACHE_SECONDS bounds how long a copy is
reused in any case: the bound for changes the store cannot see (a raw SQL UPDATE, or another host when the
store is not shared).
"""

import time

from django.conf import settings
from django.core.cache import caches
from django.db.models import Exists
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.utils import get_md5_hash_password

from hospital import revocation
from hospital.access import with_roles
from hospital.models import RevokedTokenFamily, User
from hospital.redis_store import StoreUnavailable
from hospital.tokens import token_family


def worker_cache():
    return caches["users"]


def cache_key(user_id) -> str:
    return f"jwt-user:{user_id}"


# Access tokens whose signature, type and claims this worker has checked, until they expire: checking is pure
# computation on the token's bytes (an HMAC and a JSON decode), the same result every time. Revocation is not
# cached here: every request still asks the security store about the token's user and session (get_user).
VALIDATED_TOKENS_MAX = 4096
validated_tokens: dict[bytes, object] = {}


class CachedUserJWTAuthentication(JWTAuthentication):
    def get_validated_token(self, raw_token):
        token = validated_tokens.get(raw_token)
        if token is not None and token["exp"] > time.time():
            return token
        token = super().get_validated_token(raw_token)
        if len(validated_tokens) >= VALIDATED_TOKENS_MAX:
            validated_tokens.clear()  # simpler than LRU, and refilled by the next request of each client
        validated_tokens[raw_token] = token
        return token

    def get_user(self, validated_token):
        user_id = validated_token.get(api_settings.USER_ID_CLAIM)
        if user_id is None:
            raise InvalidToken("Token contained no recognizable user identification")
        family = token_family(validated_token)
        try:
            stamp, session_revoked = revocation.session_state(user_id, family)
        except StoreUnavailable:
            return self.load_user_from_database(user_id, family, validated_token)
        if session_revoked:
            raise AuthenticationFailed("Token has been revoked", code="token_revoked")
        cached = worker_cache().get(cache_key(user_id))
        if cached is not None:
            cached_stamp, user = cached
            # Current if loaded under the user's present stamp (only active users are cached; a deactivation
            # replaces the stamp) and the token matches its password. A token that does not may be newer than
            # the copy (password changed on a host that does not share the store, then a new login): reload.
            if (
                stamp is not None
                and cached_stamp == stamp
                and validated_token.get(api_settings.REVOKE_TOKEN_CLAIM) == get_md5_hash_password(user.password)
            ):
                return user
        if stamp is None:
            try:
                stamp = revocation.ensure_user_stamp(user_id)
            except StoreUnavailable:
                return self.load_user_from_database(user_id, family, validated_token)
        user = self.load_user(user_id, validated_token)
        worker_cache().set(cache_key(user_id), (stamp, user), settings.USER_CACHE_SECONDS)
        return user

    def load_user_from_database(self, user_id, family, validated_token):
        """Without the store: the user and whether the session was ended, both from the database (RevokedTokenFamily
        keeps every ended session), in one query. This worker's copy is dropped: its stamp cannot be checked."""
        worker_cache().delete(cache_key(user_id))
        users = with_roles(User.objects)
        if family:
            users = users.annotate(session_revoked=Exists(RevokedTokenFamily.objects.filter(family=family)))
        user = self.load_user(user_id, validated_token, users)
        if getattr(user, "session_revoked", False):
            raise AuthenticationFailed("Token has been revoked", code="token_revoked")
        return user

    def load_user(self, user_id, validated_token, users=None):
        """simplejwt's lookup and checks, with the user's roles in the same query (hospital.access reads them on
        every request). A user who fails the checks is not cached."""
        try:
            user = (users if users is not None else with_roles(User.objects)).get(
                **{api_settings.USER_ID_FIELD: user_id}
            )
        except User.DoesNotExist:
            raise AuthenticationFailed("User not found", code="user_not_found") from None
        if not user.is_active:
            raise AuthenticationFailed("User is inactive", code="user_inactive")
        if validated_token.get(api_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(user.password):
            raise AuthenticationFailed("The user's password has been changed.", code="password_changed")
        return user


class CachedUserJWTScheme(SimpleJWTScheme):
    """Documents the bearer scheme for the subclass as drf-spectacular does for simplejwt's own class."""

    target_class = CachedUserJWTAuthentication
