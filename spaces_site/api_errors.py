"""One shape for every API error: `{"code": ..., "detail": ...}`.

Service errors carry their own status and code; DRF's errors (validation,
authentication, throttling, 404) are reshaped to match, with field errors kept
under `errors`; Django's refusals of a request body (too large, too many fields,
unreadable multipart) too, where they would otherwise be an HTML page.

`ApiSchema` documents, on every operation, the errors the framework answers
wherever it applies (throttling, a bad token, a malformed or oversized body, a
page past the last), so each view's `extend_schema` lists only its own.
"""

from collections.abc import Callable

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.views import defaults as django_defaults
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.mixins import ListModelMixin
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from spaces_site.errors import ServiceError


def exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        return _with_retry_after(Response(exc.as_dict(), status=exc.status), exc)

    # Django refuses these bodies while DRF reads `request.data` (or a CSRF check reads the form);
    # left alone they reach Django's handler and become its HTML 400 page.
    if isinstance(exc, RequestDataTooBig):
        exc = TooLarge()
    elif isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        exc = exceptions.ParseError("The body has more fields or files than allowed.", code="too_many_fields")
    elif isinstance(exc, MultiPartParserError):
        exc = exceptions.ParseError(f"Multipart form parse error - {exc}")

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


class TooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is larger than allowed."
    default_code = "too_large"


def _with_retry_after(response, error: ServiceError):
    if "retry_after" in error.extra:  # as DRF's throttles say it
        response["Retry-After"] = str(error.extra["retry_after"])
    return response


def answering(then: Callable[[Callable], HttpResponse]) -> Callable[[Callable], HttpResponse]:
    """An API view's `OutsideCall` continuation (spaces_site/outside.py), its service errors answered as
    the API answers them (DRF's exception handler is behind it by then)."""

    def answer(outcome: Callable) -> HttpResponse:
        try:
            return then(outcome)
        except ServiceError as error:
            return _with_retry_after(JsonResponse(error.as_dict(), status=error.status), error)

    return answer


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
    413: "The request body is too large",
    415: "Unsupported media type",
    429: "Too many requests",
}


def error_responses(*statuses: int) -> dict:
    """OpenAPI responses for the errors an endpoint answers with."""
    return {code: OpenApiResponse(ErrorSerializer, description=_ERROR_DESCRIPTIONS[code]) for code in statuses}


class ApiSchema(AutoSchema):
    """drf-spectacular's schema, plus the errors that DRF and Django answer on any operation they apply to."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._framework_errors():
            answer = OpenApiResponse(ErrorSerializer, description=_FRAMEWORK_ERROR_DESCRIPTIONS[code])
            responses.setdefault(str(code), self._get_response_for_code(answer, str(code), direction=direction))
        return responses

    def _resolve_path_parameters(self, variables):
        # What Django's converters match (`<int:>` is `[0-9]+`, `<str:>` is `[^/]+`): any other value routes
        # nowhere, so it is not a value of the parameter.
        parameters = super()._resolve_path_parameters(variables)
        for parameter in parameters:
            schema = parameter["schema"]
            if schema.get("type") == "integer":
                schema.setdefault("minimum", 0)
            elif schema.get("type") == "string" and "pattern" not in schema:
                schema["pattern"] = "^[^/]+$"
        return parameters

    def _framework_errors(self) -> list[int]:
        codes = []
        if self.view.get_throttles():
            codes.append(status.HTTP_429_TOO_MANY_REQUESTS)
        if self.view.get_authenticators():
            codes.append(status.HTTP_401_UNAUTHORIZED)  # a token that is wrong or revoked, even where none is needed
        if self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None:
            codes += [status.HTTP_400_BAD_REQUEST, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE]
            codes.append(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE)
        if self.method == "GET" and isinstance(self.view, ListModelMixin) and self.view.pagination_class:
            codes.append(status.HTTP_404_NOT_FOUND)  # `page` before the first or past the last
        return codes


_FRAMEWORK_ERROR_DESCRIPTIONS = {
    **_ERROR_DESCRIPTIONS,
    400: "Invalid request, or a body that can't be parsed",
    401: "Not signed in, or the token is not valid",
    404: "Not found, or a page before the first or past the last",
}


# Django's own answers under /api/ (a path no route matches, a request Django refuses before any
# view): the API's shape too, pages keep Django's templates. Wired in spaces_site/urls.py.


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "not_found", "detail": "No such API path."}, status=404)
    return django_defaults.page_not_found(request, exception)


def bad_request(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "invalid", "detail": "The request could not be read."}, status=400)
    return django_defaults.bad_request(request, exception)
