"""Service endpoints: health."""

from django.db import DatabaseError, connection
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from hospital.exceptions import DATABASE_RETRY_AFTER_SECONDS
from hospital.serializers import (
    HealthSerializer,
)


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
