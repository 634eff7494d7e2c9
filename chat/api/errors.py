"""Errors of the REST API: every one is JSON, and every one is documented."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, JsonResponse
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import views as drf_views
from rest_framework.exceptions import ErrorDetail, Throttled, ValidationError
from rest_framework.response import Response
from rest_framework.serializers import Serializer, as_serializer_error

from chat.limits import RateLimited
from chat.serializers import ErrorSerializer


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus Django's ValidationError from the services; every body is an object."""
    if isinstance(exc, DjangoValidationError):
        exc = ValidationError(detail=as_serializer_error(exc))
    elif isinstance(exc, RateLimited):
        throttled = Throttled(wait=exc.retry_after)
        # The service's own words, which the page and the socket show too.
        throttled.detail = ErrorDetail(str(exc), code="throttled")
        exc = throttled
    response = drf_views.exception_handler(exc, context)
    if response is not None and isinstance(response.data, list):
        response.data = {"non_field_errors": response.data}
    return response


@csrf_exempt
def not_found(request: HttpRequest, path: str) -> JsonResponse:
    """Any other path under /api/: a JSON 404, with a hint when only the trailing slash is missing."""
    detail = "No such API endpoint."
    if not request.path.endswith("/"):
        try:
            resolve(f"{request.path}/")
        except Resolver404:
            pass
        else:
            detail = f"No such API endpoint. Did you mean {request.path}/ (with the trailing slash)?"
    return JsonResponse({"detail": detail}, status=404)


FIELD_ERRORS = {
    "type": "object",
    "description": (
        "What is wrong with the request: each field names its messages; `non_field_errors` holds "
        "those about the request as a whole, and `detail` a body that could not be parsed."
    ),
    "properties": {
        "detail": {"type": "string"},
        "non_field_errors": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}
ERRORS = {
    400: OpenApiResponse(FIELD_ERRORS, "The request is not valid; nothing was changed."),
    401: OpenApiResponse(ErrorSerializer, "No credentials, or wrong ones."),
    403: OpenApiResponse(
        ErrorSerializer,
        "You may see the chat but not do this (for example, only its owner may), "
        "or a session request lacks its CSRF token.",
    ),
    404: OpenApiResponse(ErrorSerializer, "No such object, or one in a chat you may not see."),
    415: OpenApiResponse(ErrorSerializer, "The body is neither JSON nor a form."),
    429: OpenApiResponse(ErrorSerializer, "Too many attempts: wait the seconds that Retry-After says."),
}
# The errors of an operation that reads a body.
BODY = (400, 415)
RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    OpenApiTypes.INT,
    location=OpenApiParameter.HEADER,
    response=[429],
    description="Seconds to wait before trying again.",
)


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """The error responses of an operation, besides 401 and 403, which any operation may answer."""
    return {code: ERRORS[code] for code in sorted({401, 403, *codes})}


def validated(serializer_class: type[Serializer[Any]], data: Any) -> dict[str, Any]:
    """The validated data of a request body or query, or a 400 naming the fields."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
