"""OpenAPI generation: every operation documents the error responses it can give, in one place."""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import permissions, serializers

from hospital.conditional import ConditionalRecordMixin
from hospital.idempotency import IDEMPOTENCY_HEADER, IdempotentCreateMixin
from hospital.permissions import DoctorWrites, HasCapability, PatientDeletion


class ErrorSerializer(serializers.Serializer):
    """`{"detail": "..."}`: authentication, permission, not found, throttling and server errors."""

    detail = serializers.CharField()


VALIDATION_ERROR_SCHEMA = {
    "type": "object",
    "description": (
        'Each invalid field (or "non_field_errors") mapped to its messages, e.g. {"age": ["Ensure this value '
        'is less than or equal to 150."]}; a body that is not valid JSON gives {"detail": "..."}.'
    ),
    "additionalProperties": {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]},
}

# A body that is a list (a whole week of working hours) is answered by item: the item's index mapped to its
# field errors, beside "non_field_errors" for the list as a whole.
VALIDATION_ERROR_LIST_SCHEMA = {
    "type": "object",
    "description": (
        'Errors of the whole list in "non_field_errors"; those of one item under its index, e.g. '
        '{"1": {"end": ["Use HH:MM, e.g. 09:30."]}}; a body that is not valid JSON gives {"detail": "..."}.'
    ),
    "additionalProperties": {
        "oneOf": [
            {"type": "array", "items": {"type": "string"}},
            {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
            {"type": "string"},
        ]
    },
}

WRITE_METHODS = {"POST", "PUT", "PATCH"}


class ApiAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, response in self.error_responses().items():
            responses.setdefault(code, self._get_response_for_code(response, code, direction=direction))
        return responses

    def error_responses(self) -> dict[str, OpenApiResponse]:
        def error(description):
            return OpenApiResponse(ErrorSerializer, description=description)

        view_permissions = self.view.get_permissions()
        public = all(isinstance(permission, permissions.AllowAny) for permission in view_permissions)
        responses = {}
        if self.method in WRITE_METHODS or self._is_list_view() or getattr(self.view, "validates_query", False):
            validation_error = getattr(self.view, "validation_error_schema", VALIDATION_ERROR_SCHEMA)
            responses["400"] = OpenApiResponse(validation_error, description="Invalid input.")
        # Token endpoints are public but answer 401 for a bad credential; they send a challenge header.
        if not public or self.view.get_authenticate_header(self.view.request):
            responses["401"] = error("Missing, invalid or expired credentials.")
        for permission in view_permissions:
            if self.method not in permissions.SAFE_METHODS and isinstance(permission, (DoctorWrites, PatientDeletion)):
                responses["403"] = error(permission.message)
            if isinstance(permission, HasCapability):
                responses["403"] = error(permission.message)
        for code, description in getattr(self.view, "schema_error_responses", {}).get(self.method, {}).items():
            responses[code] = error(description)
        if "{" in self.path:
            responses["404"] = error("Not found, or not visible to the caller.")
        elif self.method == "GET" and self._is_list_view() and self._get_paginator():
            responses["404"] = error("Invalid page: not a positive whole number, or past the last page.")
        if self.is_conditional() and self.method in permissions.SAFE_METHODS:
            responses["304"] = OpenApiResponse(description="Not modified: If-None-Match matches the current ETag.")
        if self.is_conditional() and self.method not in permissions.SAFE_METHODS:
            responses["412"] = error("If-Match does not match the current ETag (sent in the ETag header).")
        if self.is_idempotent_create():
            responses["422"] = error(f"This {IDEMPOTENCY_HEADER} was already used with a different request.")
        if self.method in WRITE_METHODS:
            responses["413"] = error("Request body over 1 MiB.")
            responses["415"] = error("Request body is not JSON.")
        if self.view.get_throttles():
            responses["429"] = error("Too many requests from this client; see Retry-After.")
        responses["503"] = error("The database is unavailable; see Retry-After.")
        return responses

    def _get_parameters(self):
        parameters = super()._get_parameters()
        if self.method == "GET" and self._is_list_view():
            # Filters, search, ordering and pagination all read `?name=` as if `name` were not sent.
            for parameter in parameters:
                if parameter["in"] == "query" and not parameter.get("required"):
                    parameter["allowEmptyValue"] = True
        return parameters

    def is_conditional(self) -> bool:
        return isinstance(self.view, ConditionalRecordMixin)

    def is_idempotent_create(self) -> bool:
        return isinstance(self.view, IdempotentCreateMixin) and self.method == "POST"

    def get_override_parameters(self):
        parameters = super().get_override_parameters()
        parameters += self.conditional_parameters() + self.idempotency_parameters()
        if self.method == "GET" and self._is_list_view() and self._get_paginator():
            parameters += [
                OpenApiParameter(
                    "Link",
                    OpenApiTypes.STR,
                    OpenApiParameter.HEADER,
                    response=[200],
                    description='RFC 8288 links: rel="first", "prev", "next", "last".',
                ),
                OpenApiParameter(
                    "X-Total-Count",
                    OpenApiTypes.INT,
                    OpenApiParameter.HEADER,
                    response=[200],
                    description="Rows in all pages.",
                ),
            ]
        return parameters

    def conditional_parameters(self) -> list[OpenApiParameter]:
        if not self.is_conditional():
            return []
        etag = OpenApiParameter(
            "ETag",
            OpenApiTypes.STR,
            OpenApiParameter.HEADER,
            response=[200, 304, 412],
            description="Version of the record's representation, for If-None-Match and If-Match.",
        )
        if self.method in permissions.SAFE_METHODS:
            condition = OpenApiParameter(
                "If-None-Match",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="ETag(s) the client holds: 304 with no body if the record still has one of them.",
            )
            return [condition, etag]
        condition = OpenApiParameter(
            "If-Match",
            OpenApiTypes.STR,
            OpenApiParameter.HEADER,
            description="ETag the change is based on: 412 if the record has changed since (lost-update protection).",
        )
        return [condition, etag] if self.method != "DELETE" else [condition]

    def idempotency_parameters(self) -> list[OpenApiParameter]:
        if not self.is_idempotent_create():
            return []
        return [
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description=(
                    "Any unique string (a UUID) to make retries safe: for 24 hours the same key and body return "
                    "the first response again and create nothing; the same key with another body is a 422."
                ),
            ),
            OpenApiParameter(
                "Idempotent-Replayed",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                response=[201],
                description='"true" when this is the stored response to an earlier request with the same key.',
            ),
        ]


def exclude_unslashed_routes(endpoints):
    """Every route is also served without its final slash; document each once, in its slashed form."""
    return [endpoint for endpoint in endpoints if endpoint[0].endswith("/")]
