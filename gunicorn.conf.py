"""gunicorn settings for `make run` (behind nginx: scripts/serving.py) and production.

The app's settings are read here, in the master, before it binds or forks: a malformed variable stops gunicorn
with one line naming it, instead of every worker failing to boot with a traceback.
"""

import json
import os
import shutil
import signal
import sys
import tempfile
import threading

import gunicorn.util
from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthcare.settings")
from django.conf import settings

from hospital.draining import drain_marker

try:
    bind = f"[{settings.HOST}]:{settings.PORT}" if ":" in settings.HOST else f"{settings.HOST}:{settings.PORT}"
    workers = settings.WEB_CONCURRENCY
    drain_seconds = settings.DRAIN_SECONDS
except ImproperlyConfigured as error:
    sys.exit(f"error: {error}")

# /metrics adds up the workers' counters from files in this directory (prometheus-client's multiprocess mode).
# Unless PROMETHEUS_MULTIPROC_DIR names one, the master makes a private one, which its workers inherit, and
# removes it at exit; several instances on one host thus never mix their counters.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = private_metrics_dir = tempfile.mkdtemp(prefix="healthcare-metrics-")
else:
    private_metrics_dir = None

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


def when_ready(server):
    """SIGTERM drains before it stops: the first marks this master as draining (hospital.draining, /api/ready/
    answers 503) and sends SIGTERM again after DRAIN_SECONDS; that one, or another sent meanwhile, is gunicorn's
    own graceful stop (requests in flight finish, up to graceful_timeout)."""
    stop = server.handle_term
    marker = drain_marker(os.getpid())
    marker.unlink(missing_ok=True)  # left by a master of the same pid that did not exit cleanly
    draining = threading.Event()

    def handle_term():
        if drain_seconds == 0 or draining.is_set():
            stop()
        draining.set()
        marker.touch()
        server.log.info("draining: /api/ready/ answers 503 for %s s, then the server stops", drain_seconds)
        timer = threading.Timer(drain_seconds, os.kill, (os.getpid(), signal.SIGTERM))
        timer.daemon = True
        timer.start()

    server.handle_term = handle_term


def child_exit(server, worker):
    """A worker's live gauges go with it (prometheus-client multiprocess mode); its counters stay counted."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    drain_marker(os.getpid()).unlink(missing_ok=True)
    if private_metrics_dir is not None:
        shutil.rmtree(private_metrics_dir, ignore_errors=True)
