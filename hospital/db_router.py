"""Reads of list and detail views from the read replica (DATABASE_REPLICA_URL); everything else from the primary.

A view marks the part of a request that may read the replica (ReplicaReadsMixin): a GET or HEAD of a list or a
detail, after authentication and permissions (which read the primary). Writes, logins, throttles, users, audit rows
and idempotency records always go to the primary. A replica lags behind its primary by a moment: a user who has just
written (any successful POST, PUT, PATCH or DELETE) reads from the primary for REPLICA_PIN_SECONDS, pinned by
user id in the security store (shared by every instance), so that nobody fails to see their own change.
"""

import contextlib
from contextvars import ContextVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS
from rest_framework.mixins import ListModelMixin, RetrieveModelMixin
from rest_framework.permissions import SAFE_METHODS

from hospital.redis_store import StoreUnavailable
from hospital.security_store import security_store

REPLICA_DB_ALIAS = "replica"
# The alias this request's reads go to; None: the primary (Django's default).
read_alias: ContextVar[str | None] = ContextVar("read_alias", default=None)


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        return read_alias.get()

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the replica is a copy of the primary: the same rows

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS


def pin_key(user_id) -> str:
    return f"replica-pin:{user_id}"


def pin_to_primary(user_id) -> None:
    # While the store cannot be written, it cannot be read either: every read then goes to the primary anyway.
    with contextlib.suppress(StoreUnavailable):
        security_store().set(pin_key(user_id), True, settings.REPLICA_PIN_SECONDS)


def pinned_to_primary(user_id) -> bool:
    try:
        return security_store().get(pin_key(user_id)) is not None
    except StoreUnavailable:
        return True


class ReplicaReadsMixin:
    """For API views: list and detail reads from the replica, when one is configured (settings.READ_REPLICA)."""

    def dispatch(self, request, *args, **kwargs):
        token = read_alias.set(None)
        try:
            response = super().dispatch(request, *args, **kwargs)
        finally:
            read_alias.reset(token)
        if settings.READ_REPLICA and request.method not in SAFE_METHODS and response.status_code < 400:
            user = getattr(self.request, "_user", None)  # DRF's request, once authenticated
            if user is not None and user.is_authenticated:
                pin_to_primary(user.pk)
        return response

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if (
            settings.READ_REPLICA
            and request.method in ("GET", "HEAD")
            and isinstance(self, ListModelMixin | RetrieveModelMixin)
            and request.user.is_authenticated
            and not pinned_to_primary(request.user.pk)
        ):
            read_alias.set(settings.READ_REPLICA)
