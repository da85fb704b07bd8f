"""Revocation that takes effect on the next request, in every worker that shares the security store.

Each worker keeps the users its tokens name (hospital.authentication), so that a request does not query
the user table. To keep those copies honest, every user has a stamp in the security store, a random value
replaced after every commit that saves or deletes the user (password, deactivation, staff flag, any
field). A worker's copy records the stamp it was loaded under; on each request the stamp is read again
(with the session's revocation, in one round trip) and a copy whose stamp differs is loaded afresh.

A missing stamp never makes a copy look fresh: a copy is reused only if the stamp it recorded is the
one in the store now. If the stamp expired (after a day) or the store was emptied, the next request
writes a new one and every worker reloads its copy once. The stamp is read before the user is loaded, so
a change committed in between replaces it and the copy is reloaded on the following request.

Ended sessions (token families, hospital.tokens) are denied in the store for an access token's lifetime,
so their access tokens stop at once; their refresh tokens are refused by the database
(RevokedTokenFamily), which keeps the revocation even if the store is lost.

While the store is unreachable (Redis down, hospital.redis_store), session_state() raises StoreUnavailable and
hospital.authentication checks the user and the session in the database instead. A stamp or a denial that
could not be written is kept by the process and written when the store answers again.
"""

import uuid

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver
from rest_framework_simplejwt.settings import api_settings

from hospital import redis_store
from hospital.models import User
from hospital.redis_store import StoreUnavailable
from hospital.security_store import security_store

USER_STAMP_SECONDS = 24 * 3600
# An access token issued while its session was being revoked (a refresh racing the logout) may outlive
# the revocation's start by the length of that race; a minute's margin covers it.
FAMILY_DENIAL_MARGIN_SECONDS = 60


def user_stamp_key(user_id) -> str:
    return f"user-stamp:{user_id}"


def family_denial_key(family: str) -> str:
    return f"family-revoked:{family}"


def session_state(user_id, family: str | None) -> tuple[str | None, bool]:
    """(the user's current stamp or None, whether the session is revoked), in one round trip."""
    stamp_key = user_stamp_key(user_id)
    keys = [stamp_key, family_denial_key(family)] if family else [stamp_key]
    found = security_store().get_many(keys)
    return found.get(stamp_key), len(keys) > 1 and keys[1] in found


def ensure_user_stamp(user_id) -> str | None:
    """The user's stamp, written first if missing. Read back, as another worker may have written one too."""
    store = security_store()
    store.add(user_stamp_key(user_id), uuid.uuid4().hex, USER_STAMP_SECONDS)
    return store.get(user_stamp_key(user_id))


# Writes the store refused while unreachable, in order, written again when it answers (resend_unsent_writes).
unsent_writes: list = []


def write_or_keep(write) -> None:
    try:
        write()
    except StoreUnavailable:
        unsent_writes.append(write)


def resend_unsent_writes() -> None:
    while unsent_writes:
        write_or_keep(unsent_writes.pop(0))


redis_store.recovery_callbacks.append(resend_unsent_writes)


def replace_user_stamp(user_id) -> None:
    write_or_keep(lambda: security_store().set(user_stamp_key(user_id), uuid.uuid4().hex, USER_STAMP_SECONDS))


def deny_families(families) -> None:
    """Refuse the access tokens of these sessions from now until the last of them has expired."""
    timeout = int(api_settings.ACCESS_TOKEN_LIFETIME.total_seconds()) + FAMILY_DENIAL_MARGIN_SECONDS
    denials = dict.fromkeys(map(family_denial_key, families), True)
    write_or_keep(lambda: security_store().set_many(denials, timeout))


@receiver([post_save, post_delete], sender=User, dispatch_uid="hospital.revocation.user_changed")
def user_changed(sender, instance, **kwargs):
    """Once the change is committed (a worker reloading earlier would cache the old row), replace the stamp."""
    user_id = instance.pk  # a deleted instance loses its pk before the commit
    transaction.on_commit(lambda: replace_user_stamp(user_id))


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="hospital.revocation.roles_changed")
def roles_changed(sender, instance, action, reverse, pk_set, **kwargs):
    """Roles are groups: a change takes effect on the next request, like any change to the user."""
    if not reverse and action in ("post_add", "post_remove", "post_clear"):  # user.groups.set(...)
        user_ids = [instance.pk]
    elif reverse and action in ("post_add", "post_remove"):  # group.user_set.add(...)
        user_ids = list(pk_set or [])
    elif reverse and action == "pre_clear":  # group.user_set.clear(): its members, while still known
        user_ids = list(instance.user_set.values_list("pk", flat=True))
    else:
        return
    transaction.on_commit(lambda: [replace_user_stamp(user_id) for user_id in user_ids])
