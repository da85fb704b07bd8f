"""Conditional requests (RFC 9110): ETags on single records, `If-None-Match` -> 304, `If-Match` -> 412.

The ETag is a hash of the record's JSON representation, so it changes exactly when what a client sees
changes. A write locks the row (SELECT ... FOR UPDATE) before comparing `If-Match`, so of two writers
holding the same ETag the second waits for the first, then sees a new ETag and gets 412: exactly one wins.
"""

import hashlib
import json

from django.db import transaction
from django.utils.http import parse_etags
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response


class PreconditionFailed(APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The record has changed since it was read: If-Match does not match its current ETag."
    default_code = "precondition_failed"

    def __init__(self, etag: str):
        super().__init__()
        self.headers = {"ETag": etag}


def etag_for(representation) -> str:
    canonical = json.dumps(representation, sort_keys=True, separators=(",", ":"), default=str)
    return '"' + hashlib.sha256(canonical.encode()).hexdigest()[:32] + '"'


def strip_weak(etag: str) -> str:
    return etag.removeprefix("W/")


def if_match_passes(header: str, current: str) -> bool:
    """Strong comparison: a weak tag never matches; `*` matches any existing record."""
    tags = parse_etags(header)
    return tags == ["*"] or current in tags


def if_none_match_hits(header: str, current: str) -> bool:
    """Weak comparison, as RFC 9110 prescribes for If-None-Match."""
    tags = parse_etags(header)
    return tags == ["*"] or strip_weak(current) in {strip_weak(tag) for tag in tags}


class ConditionalRecordMixin:
    """For single-record views (retrieve, update, destroy): ETag, If-None-Match and If-Match."""

    def filter_queryset(self, queryset):
        """Writes lock the row, within their transaction (AuditedView opens one for every write).

        Here rather than in get_queryset(), which views override. OPTIONS also asks for the object with a
        write method (DRF's metadata checks permissions that way), outside any transaction: no lock then.
        """
        queryset = super().filter_queryset(queryset)
        if self.request.method in SAFE_METHODS or not transaction.get_connection().in_atomic_block:
            return queryset
        return queryset.select_for_update()

    def get_object(self):
        record = super().get_object()
        if_match = self.request.headers.get("If-Match")
        if if_match is not None and self.request.method not in SAFE_METHODS:
            current = etag_for(self.get_serializer(record).data)
            if not if_match_passes(if_match, current):
                raise PreconditionFailed(current)
        return record

    def retrieve(self, request, *args, **kwargs):
        response = super().retrieve(request, *args, **kwargs)
        etag = etag_for(response.data)
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match is not None and if_none_match_hits(if_none_match, etag):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
        response["ETag"] = etag
        return response

    def update(self, request, *args, **kwargs):
        response = super().update(request, *args, **kwargs)
        response["ETag"] = etag_for(response.data)
        return response
