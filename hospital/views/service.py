"""Service endpoints: the API's index and health."""

from django.conf import settings
from django.db import DatabaseError, connection
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from hospital.exceptions import DATABASE_RETRY_AFTER_SECONDS
from hospital.serializers import ApiIndexSerializer, HealthSerializer

# What a newcomer needs first; each collection's full contract is in the schema.
INDEX_LINKS = {
    "docs": "docs",
    "schema": "schema",
    "health": "health",
}
INDEX_AUTH = {"register": "register", "login": "login", "refresh": "token-refresh", "logout": "logout", "me": "me"}
INDEX_COLLECTIONS = {
    "patients": "patient-list",
    "doctors": "doctor-list",
    "mappings": "mapping-list",
    "audit": "audit-list",
}


class ApiIndexView(APIView):
    """Where everything is: the docs, the schema, health, the token routes and each collection. No authentication."""

    authentication_classes = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: ApiIndexSerializer})
    def get(self, request):
        def link(name):
            return request.build_absolute_uri(reverse(name))

        body = {
            "name": settings.SPECTACULAR_SETTINGS["TITLE"],
            "version": settings.SPECTACULAR_SETTINGS["VERSION"],
            **{key: link(name) for key, name in INDEX_LINKS.items()},
            "auth": {key: link(name) for key, name in INDEX_AUTH.items()},
            "collections": {key: link(name) for key, name in INDEX_COLLECTIONS.items()},
        }
        return Response(body)


class HealthView(APIView):
    """Liveness and database reachability, for load balancers and monitoring. No authentication."""

    authentication_classes = []
    permission_classes = [permissions.AllowAny]
    # Liveness probes poll it from a few addresses, often; it writes nothing.
    throttle_classes = []

    @extend_schema(responses={200: HealthSerializer, 503: HealthSerializer})
    def get(self, request):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except DatabaseError:
            body = {"status": "unavailable", "database": "unavailable"}
            return Response(
                body, status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}
            )
        return Response({"status": "ok", "database": "ok"})
