"""Admin login lockout (django-axes, set up in settings) and admin session limits.

Axes counts failed admin logins per account and per client address in the database and refuses further
attempts for a cool-off period. These are the project's pieces of it: the handler that keeps axes to the
admin (the API's login has its own throttle), how an account and a client are named, and the 429 page.
"""

from axes.handlers.database import AxesDatabaseHandler
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import SESSION_KEY, get_user_model, logout
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from hospital.metrics import THROTTLE_REFUSALS
from hospital.usernames import username_key

# When the session's user logged in (a POSIX timestamp), for the absolute session limit.
SESSION_STARTED_KEY = "admin_session_started_at"


class AdminOnlyAxesHandler(AxesDatabaseHandler):
    """Axes' database handler, for admin logins only.

    AXES_ONLY_ADMIN_SITE stops axes from refusing API logins, but its signal handlers would still count the
    API's failed logins (and lock the admin because of them). The API keeps its own throttle instead.
    """

    def user_login_failed(self, sender, credentials, request=None, **kwargs):
        if request is not None and self.is_admin_request(request):
            super().user_login_failed(sender, credentials, request, **kwargs)

    def user_logged_in(self, sender, request, user, **kwargs):
        if request is not None and self.is_admin_request(request):
            super().user_logged_in(sender, request, user, **kwargs)

    def user_logged_out(self, sender, request, user, **kwargs):
        if request is not None and self.is_admin_request(request):
            super().user_logged_out(sender, request, user, **kwargs)


def canonical_login_username(request, credentials) -> str | None:
    """The account a login attempt is for, as the login matches it (hospital.usernames): `Admin`, `admin` and
    `adm\\u0131n` count against one account."""
    field = get_user_model().USERNAME_FIELD
    username = credentials.get(field) if credentials else request.POST.get(field)
    if not isinstance(username, str) or not username:
        return None
    return username_key(username)


def anonymous_client_str(username, ip_address, user_agent, path_info, request) -> str:
    """How axes names a client in its log lines: not by username or address (the line has the request id)."""
    return "an admin login client"


def lockout_response(request, original_response=None, credentials=None):
    """The admin's own page for a locked-out login, 429 with Retry-After (the cool-off, in seconds)."""
    THROTTLE_REFUSALS.labels("admin_login").inc()
    cool_off_seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    context = {
        **admin.site.each_context(request),
        "title": "Too many failed logins",
        "cool_off_minutes": cool_off_seconds // 60,
    }
    response = render(request, "hospital/admin_lockout.html", context, status=429)
    response["Retry-After"] = str(cool_off_seconds)
    return response


class AdminSessionLimitsMiddleware:
    """Ends an admin session after SESSION_COOKIE_AGE without an admin request (Django expires the session;
    each admin request restarts the clock) and ADMIN_SESSION_MAX_AGE after login, however active.

    Only admin pages count as activity: the API authenticates with tokens and never touches the session.
    The admin's login starts the clock (hospital.admin_site); a session logged in some other way is timed
    from the first admin response that finds it logged in.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(reverse("admin:index")):
            return self.get_response(request)
        session = request.session
        if SESSION_KEY in session:
            started = session.get(SESSION_STARTED_KEY)
            now = timezone.now().timestamp()
            if started is not None and now - started > settings.ADMIN_SESSION_MAX_AGE.total_seconds():
                logout(request)
            else:
                session.modified = True  # saved again, so it expires SESSION_COOKIE_AGE from now
        response = self.get_response(request)
        if SESSION_KEY in request.session and SESSION_STARTED_KEY not in request.session:
            request.session[SESSION_STARTED_KEY] = timezone.now().timestamp()
        return response
