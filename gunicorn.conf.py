"""gunicorn settings for `make run` (behind nginx: scripts/serving.py) and production.

The app's settings are read here, in the master, before it binds or forks: a malformed variable stops gunicorn
with one line naming it, instead of every worker failing to boot with a traceback.
"""

import json
import os
import sys

import gunicorn.util
from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthcare.settings")
from django.conf import settings

try:
    bind = f"[{settings.HOST}]:{settings.PORT}" if ":" in settings.HOST else f"{settings.HOST}:{settings.PORT}"
    workers = settings.WEB_CONCURRENCY
except ImproperlyConfigured as error:
    sys.exit(f"error: {error}")

timeout = 30
graceful_timeout = 10
# No access log: the app writes one JSON line per request (hospital.request_log), with the route pattern
# instead of the path and never the query string, whose search terms are patient names.
accesslog = None
# nginx's limits are lower (deploy/nginx.conf.template), so that nginx answers an oversized request itself.
# A header line may still grow on the way, by the address nginx appends to X-Forwarded-For.
limit_request_line = 8190
limit_request_field_size = 16384
# gunicorn 27's control socket has one default path per user, which several gunicorns (tests, benchmarks,
# several instances) would share; nothing here uses it.
control_socket_disable = True


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's answer to a request it cannot parse, in the API's JSON shape instead of its HTML page.

    Behind nginx this is rare (nginx refuses most such requests first, in JSON too); gunicorn has no setting
    for it, so its one writer of error pages is replaced.
    """
    body = json.dumps({"detail": f"{reason}: {mesg}" if mesg else f"{reason}."}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    gunicorn.util.write_nonblock(sock, head.encode("latin-1") + body)


gunicorn.util.write_error = write_json_error
