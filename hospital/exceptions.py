"""Error responses produced outside DRF's views, in DRF's shapes (`{"detail": "..."}`).

DRF's own exception handler already answers validation (400), authentication (401), permission (403),
not found (404), method (405), media type (415) and throttling (429) errors. What remains lives here:
the database being unreachable (503), oversized bodies (413) and Django's 400/404/500 handlers,
which answer JSON under /api/ and keep Django's HTML pages for the admin.
"""

from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.http import JsonResponse
from django.views import defaults
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.views import exception_handler

API_PREFIX = "/api/"
DATABASE_RETRY_AFTER_SECONDS = 5


class Conflict(APIException):
    """409: the request clashes with the records' current state. With a `code`, the body also names the kind of
    conflict for programs ({"detail": ..., "code": "overlap", ...}), with any `extra` keys beside it."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"

    def __init__(self, detail: str, code: str | None = None, **extra):
        super().__init__(detail, code)
        if code is not None:
            self.detail = {"detail": self.detail, "code": code, **extra}


def json_error(detail: str, status: int, **headers: str) -> JsonResponse:
    response = JsonResponse({"detail": detail}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def is_database_unavailable(exc: BaseException) -> bool:
    """Connection-level failures (server down, restarting, unreachable), not errors in a query."""
    return isinstance(exc, (OperationalError, InterfaceError))


def database_unavailable_response() -> JsonResponse:
    return json_error(
        "The database is unavailable. Please retry shortly.",
        503,
        Retry_After=str(DATABASE_RETRY_AFTER_SECONDS),
    )


def violated_constraint(error: IntegrityError) -> str | None:
    """The name of the database constraint an IntegrityError reports, if any."""
    diag = getattr(error.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None)


def save_or_field_error(save, errors_by_constraint: dict[str, dict]):
    """Run `save()` in a transaction; turn a known constraint violation into a 400 naming the field.

    Uniqueness is checked by the database alone, so that two racing requests get one success and one
    400, and the friendly message comes from the same rule that enforces it.
    """
    try:
        with transaction.atomic():
            return save()
    except IntegrityError as error:
        field_error = errors_by_constraint.get(violated_constraint(error))
        if field_error is None:
            raise
        raise serializers.ValidationError(field_error) from None


def is_api_request(request) -> bool:
    return request.path.startswith(API_PREFIX)


def bad_request(request, exception):
    if is_api_request(request):
        return json_error("Bad request.", 400)
    return defaults.bad_request(request, exception)


def page_not_found(request, exception):
    if is_api_request(request):
        return json_error("Not found.", 404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if is_api_request(request):
        return json_error("A server error occurred.", 500)
    return defaults.server_error(request)


def api_exception_handler(exc, context):
    """DRF's handler, plus the headers an exception carries (the current ETag of a 412), and no request log line
    for an exception whose cause is logged once elsewhere (Redis down: hospital.throttles.ThrottleUnavailable)."""
    response = exception_handler(exc, context)
    if response is not None:
        for name, value in getattr(exc, "headers", {}).items():
            response[name] = value
        if getattr(exc, "logged_elsewhere", False):
            # Django's request logger would log every such 5xx; the cause is logged once, where it is found.
            response._has_been_logged = True
    return response
