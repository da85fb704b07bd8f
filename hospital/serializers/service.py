"""Service endpoints."""

from rest_framework import serializers

from hospital.representation import PlannedSerializer


class HealthSerializer(PlannedSerializer):
    status = serializers.CharField(help_text='"ok", or "unavailable" while the database is unreachable.')
    database = serializers.CharField(help_text='"ok" or "unavailable".')


class ReadySerializer(PlannedSerializer):
    status = serializers.CharField(
        help_text='"ready"; "not ready" while a check fails; "draining" from the moment the server was told to stop.'
    )
    database = serializers.CharField(required=False, help_text='"ok" or "unavailable".')
    redis = serializers.CharField(required=False, help_text='"ok" or "unavailable"; only when REDIS_URL is set.')
    migrations = serializers.CharField(
        required=False, help_text='"ok", "pending" (a migration is not applied yet) or "unknown".'
    )


class AuthLinksSerializer(PlannedSerializer):
    register = serializers.URLField()
    login = serializers.URLField()
    refresh = serializers.URLField()
    logout = serializers.URLField()
    me = serializers.URLField()


class CollectionLinksSerializer(PlannedSerializer):
    patients = serializers.URLField()
    doctors = serializers.URLField()
    mappings = serializers.URLField()
    audit = serializers.URLField(help_text="Staff only.")


class ApiIndexSerializer(PlannedSerializer):
    name = serializers.CharField()
    version = serializers.CharField()
    docs = serializers.URLField(help_text="Swagger UI.")
    schema = serializers.URLField(help_text="The OpenAPI 3 schema (JSON).")
    health = serializers.URLField()
    auth = AuthLinksSerializer()
    collections = CollectionLinksSerializer()
