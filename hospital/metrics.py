"""Prometheus metrics, served at /metrics (hospital.views.metrics): what each request did, and a few events.

Labels are route patterns (`api/patients/<int:pk>/`, never the path), methods, statuses, scopes and codes:
no patient data, no user ids, and a bounded number of series whatever clients send.

Under gunicorn every worker writes its values to files in PROMETHEUS_MULTIPROC_DIR (set by gunicorn.conf.py)
and /metrics adds them up (prometheus-client's multiprocess mode); elsewhere (runserver, tests) the process's own
registry is served.
"""

import os
import time

from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, multiprocess

from hospital.query_count import counting_statements

REQUESTS = Counter(
    "healthcare_http_requests", "Requests answered, by route pattern, method and status.", ["route", "method", "status"]
)
REQUEST_SECONDS = Histogram(
    "healthcare_http_request_duration_seconds",
    "Time from the request reaching Django to its response, by route pattern and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
QUERIES_PER_REQUEST = Histogram(
    "healthcare_db_queries_per_request",
    "SQL statements one request ran, on the primary and the replica.",
    buckets=(0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100),
)
AUDIT_WRITE_FAILURES = Counter("healthcare_audit_write_failures", "Audit rows that could not be written.")
THROTTLE_REFUSALS = Counter(
    "healthcare_throttle_refusals", "Requests refused by a throttle (429), by scope.", ["scope"]
)
BOOKING_CONFLICTS = Counter("healthcare_booking_conflicts", "Bookings refused with a 409, by code.", ["code"])

# A client chooses the method: anything else is counted as "other", so that it cannot add series.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        combined = CollectorRegistry()
        multiprocess.MultiProcessCollector(combined)
        return combined
    return REGISTRY


class MetricsMiddleware:
    """Counts and times each request, and counts its SQL statements (on every database alias the app reads)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        aliases = ("default", settings.READ_REPLICA) if settings.READ_REPLICA else ("default",)
        with counting_statements(aliases) as queries:
            response = self.get_response(request)
        match = request.resolver_match
        route = match.route if match else "unmatched"
        method = request.method if request.method in KNOWN_METHODS else "other"
        REQUESTS.labels(route, method, str(response.status_code)).inc()
        REQUEST_SECONDS.labels(route, method).observe(time.perf_counter() - started)
        QUERIES_PER_REQUEST.observe(queries.value)
        return response
