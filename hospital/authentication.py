"""JWT authentication that remembers each token's user for a short while instead of querying per request.

A list request was three queries, one of them this lookup. The user is cached in the worker's memory for
USER_CACHE_SECONDS (default 60) and dropped at once in the worker that saves the user. So a deactivation
or password change made elsewhere (another worker, the admin on another host) locks the user out within
that time, and immediately in the process that made it.
"""

from django.conf import settings
from django.core.cache import caches
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.utils import get_md5_hash_password

from hospital.models import User

user_cache = caches["users"]


def cache_key(user_id) -> str:
    return f"jwt-user:{user_id}"


class CachedUserJWTAuthentication(JWTAuthentication):
    def get_user(self, validated_token):
        user_id = validated_token.get(api_settings.USER_ID_CLAIM)
        if user_id is None:
            raise InvalidToken("Token contained no recognizable user identification")
        user = user_cache.get(cache_key(user_id))
        # A token that does not match the cached password may be newer than the cached copy (the password
        # was changed elsewhere, then the user logged in again): look the user up afresh.
        if user is None or validated_token.get(api_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(user.password):
            # simplejwt's lookup and checks; a user who fails them is not cached.
            user = super().get_user(validated_token)
            user_cache.set(cache_key(user_id), user, settings.USER_CACHE_SECONDS)
            return user
        # simplejwt's other check, on the cached copy.
        if not user.is_active:
            raise AuthenticationFailed("User is inactive", code="user_inactive")
        return user


@receiver([post_save, post_delete], sender=User)
def forget_cached_user(sender, instance, **kwargs):
    user_cache.delete(cache_key(instance.pk))


class CachedUserJWTScheme(SimpleJWTScheme):
    """Documents the bearer scheme for the subclass as drf-spectacular does for simplejwt's own class."""

    target_class = CachedUserJWTAuthentication
