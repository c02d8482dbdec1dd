"""One shape for every API error: `{"code": ..., "detail": ...}`.

Service errors carry their own status and code; DRF's errors (validation,
authentication, throttling, 404) are reshaped to match, with field errors kept
under `errors`.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from spaces_site.errors import ServiceError


def exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        return Response(exc.as_dict(), status=exc.status)

    if isinstance(exc, DjangoValidationError):
        # A model's full_clean() or a password validator inside a service.
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )

    response = drf_exception_handler(exc, context)
    if response is None:
        return None

    if isinstance(exc, exceptions.ValidationError):
        response.data = {
            "code": "invalid",
            "detail": _first_message(exc.detail) or "The request is not valid.",
            "errors": exc.detail,
        }
        return response

    detail = response.data.get("detail") if isinstance(response.data, dict) else None
    code = getattr(detail, "code", None) or _code_for(response.status_code)
    response.data = {"code": code, "detail": str(detail) if detail else "The request failed."}
    return response


def _first_message(detail) -> str:
    """The first human message in a nested DRF error structure, prefixed with its field."""
    if isinstance(detail, list):
        for item in detail:
            message = _first_message(item)
            if message:
                return message
        return ""
    if isinstance(detail, dict):
        for field, value in detail.items():
            message = _first_message(value)
            if message:
                return message if field == "non_field_errors" else f"{field}: {message}"
        return ""
    return str(detail)


def _code_for(status_code: int) -> str:
    return {
        status.HTTP_401_UNAUTHORIZED: "not_authenticated",
        status.HTTP_403_FORBIDDEN: "permission_denied",
        status.HTTP_404_NOT_FOUND: "not_found",
        status.HTTP_405_METHOD_NOT_ALLOWED: "method_not_allowed",
        status.HTTP_429_TOO_MANY_REQUESTS: "throttled",
    }.get(status_code, "error")


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()


_ERROR_DESCRIPTIONS = {
    400: "Invalid request",
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    409: "Conflicts with the current state",
}


def error_responses(*statuses: int) -> dict:
    """OpenAPI responses for the errors an endpoint answers with."""
    return {code: OpenApiResponse(ErrorSerializer, description=_ERROR_DESCRIPTIONS[code]) for code in statuses}
