"""Service endpoints: the API's index, health (liveness) and readiness."""

from django.conf import settings
from django.core.cache import caches
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from hospital.draining import draining
from hospital.exceptions import DATABASE_RETRY_AFTER_SECONDS
from hospital.redis_store import StoreUnavailable
from hospital.serializers import ApiIndexSerializer, HealthSerializer, ReadySerializer

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


class ReadyView(APIView):
    """Readiness, for a load balancer choosing where to send requests: the database and Redis (when configured)
    answer and every migration is applied. 503 "draining" from the moment the server was told to stop
    (hospital.draining), while it still serves the requests it is sent. No authentication."""

    authentication_classes = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = []
    # Once every migration is applied, it stays so for this process (a new migration comes with new code).
    migrations_applied = False

    @extend_schema(responses={200: ReadySerializer, 503: ReadySerializer})
    def get(self, request):
        if draining():
            return self.not_ready({"status": "draining"})
        checks = {"database": self.check_database()}
        if settings.REDIS_URL:
            checks["redis"] = self.check_redis()
        checks["migrations"] = self.check_migrations() if checks["database"] == "ok" else "unknown"
        if any(value != "ok" for value in checks.values()):
            return self.not_ready({"status": "not ready", **checks})
        return Response({"status": "ready", **checks})

    @staticmethod
    def not_ready(body):
        response = Response(body, status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "1"})
        # Not a fault of the request: no ERROR line per poll (a load balancer polls every second or so).
        response._has_been_logged = True
        return response

    @staticmethod
    def check_database() -> str:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except DatabaseError:
            return "unavailable"
        return "ok"

    @staticmethod
    def check_redis() -> str:
        try:
            caches["security"].ping()
        except StoreUnavailable:
            return "unavailable"
        return "ok"

    @classmethod
    def check_migrations(cls) -> str:
        if not cls.migrations_applied:
            try:
                executor = MigrationExecutor(connection)
                cls.migrations_applied = not executor.migration_plan(executor.loader.graph.leaf_nodes())
            except DatabaseError:
                return "unknown"
        return "ok" if cls.migrations_applied else "pending"
