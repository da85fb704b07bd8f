"""Service endpoints."""

from rest_framework import serializers


class HealthSerializer(serializers.Serializer):
    status = serializers.CharField(help_text='"ok", or "unavailable" while the database is unreachable.')
    database = serializers.CharField(help_text='"ok" or "unavailable".')
