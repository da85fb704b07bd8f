"""Throttles, per client address, counted in the security store (never evicted by other traffic).

The address is the one the audit trail records (hospital.audit.client_ip, which trusts X-Forwarded-For
only from NUM_PROXIES proxies). IPv6 clients are counted by their /64, the block one host or one customer
usually holds, so that rotating through addresses does not give a client more attempts.
"""

import ipaddress

from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.throttling import AnonRateThrottle, ScopedRateThrottle

from hospital.metrics import THROTTLE_REFUSALS
from hospital.redis_store import RETRY_AFTER_FAILURE_SECONDS, StoreUnavailable
from hospital.security_store import security_store

IPV6_CLIENT_PREFIX = 64


def client_address_key(request) -> str:
    """What a client is counted by: its IPv4 address, or the /64 network of its IPv6 address."""
    from hospital.audit import client_ip  # here, as hospital.audit imports this module

    ip = client_ip(request)
    if ip is None:
        return "unknown"
    address = ipaddress.ip_address(ip)
    if address.version == 6:
        if address.ipv4_mapped:  # a dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network((address, IPV6_CLIENT_PREFIX), strict=False))
    return str(address)


class ThrottleUnavailable(APIException):
    """503: the shared store that counts login attempts cannot be reached; refusing is safer than not counting."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Logins and registrations are briefly unavailable. Please retry shortly."
    default_code = "throttle_unavailable"
    logged_elsewhere = True  # once per outage, by hospital.redis_store

    def __init__(self):
        super().__init__()
        self.detail = {"detail": self.detail, "code": self.default_code}
        self.headers = {"Retry-After": str(max(1, round(RETRY_AFTER_FAILURE_SECONDS)))}


class SecurityStoreThrottleMixin:
    """DRF's throttles, counting in the security store, per client address.

    While the store is unreachable (Redis down, hospital.redis_store), `fail_closed` throttles refuse every
    request with a 503 (logins and registrations: guessing passwords must stay bounded); the others let it through.
    """

    fail_closed = False

    @property
    def cache(self):
        return security_store()

    def get_ident(self, request):
        return client_address_key(request)

    def allow_request(self, request, view):
        try:
            allowed = super().allow_request(request, view)
        except StoreUnavailable:
            if self.fail_closed:
                raise ThrottleUnavailable from None
            return True
        if not allowed:
            THROTTLE_REFUSALS.labels(self.scope).inc()
        return allowed


class AnonymousRateThrottle(SecurityStoreThrottleMixin, AnonRateThrottle):
    """Requests without a valid token: ANON_THROTTLE_RATE per client address (scope "anon")."""


class ClientScopedRateThrottle(SecurityStoreThrottleMixin, ScopedRateThrottle):
    """The view's `throttle_scope` (login, register): its own rate per client address; refused while unknown."""

    fail_closed = True


class ThrottleBeforePermissionsMixin:
    """Throttles run right after authentication, before permissions, and also when authentication fails.

    DRF checks throttles last: a request without a valid token to a route that needs one is answered 401
    before any throttle counts it, so a client could send any number of them, each leaving an audit row.
    Here every such request counts against the anonymous throttle first, and past it gets a 429.
    """

    def perform_authentication(self, request):
        try:
            super().perform_authentication(request)
        finally:
            super().check_throttles(request)

    def check_throttles(self, request):
        """Already done, by perform_authentication()."""
