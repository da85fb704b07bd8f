"""Guards that run before any view: body size, database outages, and no caching of medical data."""

from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware

from hospital.admin_security import AdminSessionLimitsMiddleware
from hospital.exceptions import database_unavailable_response, is_api_request, is_database_unavailable, json_error


class ApiGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not is_api_request(request):
            return self.get_response(request)
        response = self.reject_body(request)
        if response is None:
            response = self.get_response(request)
        # Responses carry medical records: no shared or browser cache may keep them.
        response.setdefault("Cache-Control", "no-store")
        return response

    @staticmethod
    def reject_body(request):
        """Refuse a body over the limit before anything reads it (DRF's parsers read the raw stream)."""
        raw_length = request.META.get("CONTENT_LENGTH") or "0"
        if not raw_length.isdigit():
            return json_error("Invalid Content-Length header.", 400)
        if int(raw_length) > settings.MAX_REQUEST_BODY_BYTES:
            limit_kib = settings.MAX_REQUEST_BODY_BYTES // 1024
            return json_error(f"Request body too large: the limit is {limit_kib} KiB.", 413)
        return None

    def process_exception(self, request, exception):
        if is_database_unavailable(exception):
            return database_unavailable_response()
        return None


class OutsideApi:
    """For a middleware class: run it for every request but those to the API.

    The session, session-login and messages machinery serves the admin's pages; the API authenticates with
    tokens and never reads a session or a cookie, so its requests skip them (a few percent of a list request).
    Subclasses of the middleware they wrap, so that Django's admin checks still find them. (CSRF keeps Django's
    own middleware, by name, for `check --deploy`; the API's views are exempt from it anyway.)
    """

    def __call__(self, request):
        if is_api_request(request):
            return self.get_response(request)
        return super().__call__(request)


class SessionsOutsideApi(OutsideApi, SessionMiddleware):
    pass


class LoginOutsideApi(OutsideApi, AuthenticationMiddleware):
    pass


class MessagesOutsideApi(OutsideApi, MessageMiddleware):
    pass


class AdminSessionLimitsOutsideApi(OutsideApi, AdminSessionLimitsMiddleware):
    pass
