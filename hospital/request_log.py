"""Structured logs: one JSON line per request, and every log line in JSON with the request's id.

A request line holds the method, the route pattern (`api/patients/<int:pk>/`, never the raw path or its
query string, which carries search terms), the status, the duration, the user id and the request id. No
names, emails, tokens or bodies: nothing in a line comes from what the client sent, except a correlation id
that passed validation. Exceptions are logged as their type and stack frames, without their message,
which may quote a database row.
"""

import contextvars
import json
import logging
import re
import time
import traceback
import uuid

from django.core.signals import request_finished
from django.dispatch import receiver

REQUEST_ID_HEADER = "X-Request-ID"
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_request_id", default=None)
current_client_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_client_request_id", default=None
)
request_logger = logging.getLogger("hospital.request")

# Attributes every LogRecord has; anything else on a record was passed with `extra=` and is logged.
STANDARD_RECORD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class RequestLogMiddleware:
    """Outermost middleware: assigns the request id and logs the request once it is answered.

    The request id is always the server's own. A client's well-formed `X-Request-ID` is kept beside it as
    `client_request_id`, a correlation value only: a client could send another request's id, or the same id
    for every request, so nothing may treat it as identifying a request.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        supplied = request.headers.get(REQUEST_ID_HEADER, "")
        request.request_id = uuid.uuid4().hex
        request.client_request_id = supplied if VALID_REQUEST_ID.fullmatch(supplied) else ""
        # Cleared when the response is finished, after Django has logged any error response.
        current_request_id.set(request.request_id)
        current_client_request_id.set(request.client_request_id or None)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request.request_id
        match = request.resolver_match
        user = getattr(request, "user", None)
        request_logger.info(
            "request",
            extra={
                "method": request.method,
                "route": match.route if match else None,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "user_id": user.pk if user is not None and user.is_authenticated else None,
            },
        )
        return response


@receiver(request_finished)
def forget_request_id(**kwargs):
    current_request_id.set(None)
    current_client_request_id.set(None)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request ids, and any `extra=` fields."""

    converter = time.gmtime  # the "Z" in the timestamp

    def format(self, record):
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = current_request_id.get()
        if request_id:
            entry["request_id"] = request_id
        client_request_id = current_client_request_id.get()
        if client_request_id:
            entry["client_request_id"] = client_request_id
        # Plain values only: Django passes the request object itself, whose repr holds the query string.
        entry.update(
            (key, value)
            for key, value in vars(record).items()
            if key not in STANDARD_RECORD_ATTRIBUTES and isinstance(value, str | int | float | bool | None)
        )
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, _exc, tb = record.exc_info
            entry["exception"] = exc_type.__qualname__
            entry["stack"] = [f"{frame.filename}:{frame.lineno} in {frame.name}" for frame in traceback.extract_tb(tb)]
        return json.dumps(entry, default=str)
