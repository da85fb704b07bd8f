"""Retry safety for creates: `Idempotency-Key` (the IETF httpapi draft, as Stripe and others use it).

The first request with a key claims it with one INSERT guarded by the unique (user, key) index. A retry
racing the first blocks on that index until the first commits, then replays its stored response; if the
first failed, its claim was rolled back with it and the retry runs afresh. A key is remembered for 24
hours; after that the same key starts a new request.
"""

import hashlib
import json
import re

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.response import Response

from hospital.models import IdempotencyKey

IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_TTL_HOURS = 24
VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII, as in a UUID or a random token

# One statement: claim a new key, or take over one older than the TTL; nothing if it is live elsewhere.
CLAIM_SQL = """
INSERT INTO hospital_idempotencykey (user_id, key, fingerprint, created_at)
VALUES (%(user)s, %(key)s, %(fingerprint)s, now())
ON CONFLICT (user_id, key) DO UPDATE
    SET fingerprint = EXCLUDED.fingerprint, created_at = EXCLUDED.created_at,
        status_code = NULL, response_body = NULL
    WHERE hospital_idempotencykey.created_at < now() - make_interval(hours => %(ttl_hours)s)
RETURNING id
"""


class IdempotencyKeyReused(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was already used with a different request."
    default_code = "idempotency_key_reused"


def request_fingerprint(view, request) -> str:
    """The operation (the view, so that `/patients` and `/patients/` agree) and the body, keys sorted."""
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{type(view).__name__} {request.method}\n{body}".encode()).hexdigest()


class IdempotentCreateMixin:
    """For create views: a POST with an `Idempotency-Key` header is performed at most once per user and key."""

    def create(self, request, *args, **kwargs):
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is None:
            return super().create(request, *args, **kwargs)
        if not VALID_KEY.fullmatch(key):
            raise serializers.ValidationError({IDEMPOTENCY_HEADER: ["Use 1 to 255 visible ASCII characters."]})
        fingerprint = request_fingerprint(self, request)
        # A savepoint: if the create fails, the claim goes with it and a retry may try again.
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    CLAIM_SQL,
                    {
                        "user": request.user.pk,
                        "key": key,
                        "fingerprint": fingerprint,
                        "ttl_hours": IDEMPOTENCY_TTL_HOURS,
                    },
                )
                claimed = cursor.fetchone()
            if claimed is None:
                return self.replay(request.user, key, fingerprint)
            response = super().create(request, *args, **kwargs)
            IdempotencyKey.objects.filter(pk=claimed[0]).update(
                status_code=response.status_code, response_body=json.dumps(response.data, cls=DjangoJSONEncoder)
            )
        return response

    @staticmethod
    def replay(user, key: str, fingerprint: str) -> Response:
        first = IdempotencyKey.objects.get(user=user, key=key)
        if first.fingerprint != fingerprint:
            raise IdempotencyKeyReused()
        body = json.loads(first.response_body)
        return Response(body, status=first.status_code, headers={"Idempotent-Replayed": "true"})
