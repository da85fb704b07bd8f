"""/metrics, for Prometheus: from this host only, or from anywhere with METRICS_TOKEN as a bearer token."""

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hospital import metrics
from hospital.audit import client_ip
from hospital.exceptions import json_error


def metrics_allowed(request) -> bool:
    """With METRICS_TOKEN set, whoever sends it (loopback included); without, loopback clients only. The client
    is the one the audit trail names (X-Forwarded-For only from NUM_PROXIES trusted proxies, such as nginx)."""
    if settings.METRICS_TOKEN:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return hmac.compare_digest(sent.encode(), settings.METRICS_TOKEN.encode())
    address = client_ip(request)
    return address is not None and ipaddress.ip_address(address).is_loopback


def metrics_view(request):
    if request.method not in ("GET", "HEAD"):
        return json_error(f'Method "{request.method}" not allowed.', 405, Allow="GET, HEAD")
    if not metrics_allowed(request):
        return json_error("Metrics are served to this host only, or with the metrics token.", 403)
    return HttpResponse(generate_latest(metrics.registry()), content_type=CONTENT_TYPE_LATEST)
