"""Errors of the REST API: every one is JSON, and every one is documented.

Every error body has `detail` (words for people) and `code` (a word for programs). A 400
about the request's content keeps the shape clients know, each field naming its messages
(`{"name": ["…"]}`, `non_field_errors` for the request as a whole), and adds `codes`, the
same shape with a code for each message; its `detail` is the first message and its `code`
is `invalid`. So `detail`, `code` and `codes` are never the names of a request's fields.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from django.urls import Resolver404, resolve
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework import status
from rest_framework import views as drf_views
from rest_framework.exceptions import (
    APIException,
    ErrorDetail,
    NotFound,
    PermissionDenied,
    Throttled,
    ValidationError,
)
from rest_framework.response import Response
from rest_framework.serializers import Serializer, as_serializer_error

from chat.errors import Conflict
from chat.limits import RateLimited
from chat.serializers import ErrorSerializer


class ConflictError(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = gettext_lazy("This contradicts an earlier request with the same client_id.")
    default_code = "conflict"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus the services' exceptions; every body has `detail` and `code`."""
    exc = as_api_exception(exc)
    response = drf_views.exception_handler(exc, context)
    if response is not None and isinstance(exc, APIException):
        response.data = error_body(exc)
    return response


def as_api_exception(exc: Exception) -> Exception:
    """The DRF exception for one of Django's or the services', keeping its words and code."""
    if isinstance(exc, DjangoValidationError):
        return ValidationError(detail=as_serializer_error(exc))
    if isinstance(exc, RateLimited):
        throttled = Throttled(wait=exc.retry_after)
        # The service's own words, which the page and the socket show too.
        throttled.detail = ErrorDetail(str(exc), code="throttled")
        return throttled
    if isinstance(exc, Http404):
        return NotFound(str(exc) or None)
    if isinstance(exc, Conflict):
        return ConflictError(str(exc) or None)
    if isinstance(exc, DjangoPermissionDenied):
        # A service may name its refusal (chat.services.accounts.BotSignupClosed).
        return PermissionDenied(str(exc) or None, code=getattr(exc, "code", None))
    return exc


def error_body(exc: APIException) -> dict[str, Any]:
    detail, codes = exc.detail, exc.get_codes()
    if isinstance(detail, list):
        detail, codes = {"non_field_errors": detail}, {"non_field_errors": codes}
    if not isinstance(detail, dict):
        return {"detail": detail, "code": codes}
    messages: dict[str, list[str]] = {}
    field_codes: dict[str, list[str]] = {}
    for field, errors in detail.items():
        pairs = flatten(errors, codes.get(field) if isinstance(codes, dict) else None)
        messages[field] = [message for message, _ in pairs]
        field_codes[field] = [code for _, code in pairs]
    first = next((found[0] for found in messages.values() if found), "")
    return {**messages, "detail": first, "code": "invalid", "codes": field_codes}


def flatten(errors: Any, codes: Any, where: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """A field's messages and their codes as one flat list, whatever the nesting: an item of
    a list field or a field of a nested object is named before its message ("0: …"), so that
    every field keeps the documented shape, a list of strings."""
    if isinstance(errors, dict):
        return [
            pair
            for key, value in errors.items()
            for pair in flatten(
                value, codes.get(key) if isinstance(codes, dict) else None, (*where, str(key))
            )
        ]
    if isinstance(errors, list):
        return [
            pair
            for index, value in enumerate(errors)
            for pair in flatten(
                value, codes[index] if isinstance(codes, list) and index < len(codes) else None, where
            )
        ]
    prefix = f"{'.'.join(where)}: " if where else ""
    return [(f"{prefix}{errors}", str(codes or "invalid"))]


@csrf_exempt
def not_found(request: HttpRequest, path: str) -> JsonResponse:
    """Any other path under /api/: a JSON 404, with a hint when only the trailing slash is missing."""
    detail = gettext("No such API endpoint.")
    if not request.path.endswith("/"):
        try:
            resolve(f"{request.path}/")
        except Resolver404:
            pass
        else:
            detail = gettext("No such API endpoint. Did you mean %(path)s (with the trailing slash)?") % {
                "path": f"{request.path}/"
            }
    return JsonResponse({"detail": detail, "code": "not_found"}, status=404)


CODES = {
    "type": "object",
    "description": "The shape of the messages, with a code for each (`blank`, `max_length`, `invalid`, …).",
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}
FIELD_ERRORS = {
    "type": "object",
    "description": (
        "What is wrong with the request: each field names its messages, and `non_field_errors` "
        "holds those about the request as a whole. `codes` gives the same shape with a code for "
        "each message. `detail` repeats the first message (or says why the body could not be "
        "parsed) and `code` is `invalid` (or `parse_error`)."
    ),
    "properties": {
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "codes": CODES,
        "non_field_errors": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["detail", "code"],
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}


def error_example(status_code: int, detail: str, code: str) -> OpenApiExample:
    return OpenApiExample(
        code, value={"detail": detail, "code": code}, response_only=True, status_codes=[str(status_code)]
    )


ERRORS = {
    400: OpenApiResponse(
        FIELD_ERRORS,
        "The request is not valid; nothing was changed.",
        examples=[
            OpenApiExample(
                "Field errors",
                value={
                    "name": ["Give the room a name."],
                    "detail": "Give the room a name.",
                    "code": "invalid",
                    "codes": {"name": ["invalid"]},
                },
                response_only=True,
                status_codes=["400"],
            )
        ],
    ),
    401: OpenApiResponse(
        ErrorSerializer,
        "No credentials, or wrong ones.",
        examples=[error_example(401, "Authentication credentials were not provided.", "not_authenticated")],
    ),
    403: OpenApiResponse(
        ErrorSerializer,
        "You may see the chat but not do this (for example, only its owner may), "
        "or a session request lacks its CSRF token.",
        examples=[error_example(403, "Only the room's owner can do that.", "permission_denied")],
    ),
    404: OpenApiResponse(
        ErrorSerializer,
        "No such object, or one in a chat you may not see.",
        examples=[error_example(404, "No such chat.", "not_found")],
    ),
    409: OpenApiResponse(
        ErrorSerializer,
        "The client_id was used before for a different request.",
        examples=[
            error_example(409, "This client id was already used for a message with other text.", "conflict")
        ],
    ),
    415: OpenApiResponse(
        ErrorSerializer,
        "The body is neither JSON nor a form.",
        examples=[
            error_example(415, 'Unsupported media type "text/plain" in request.', "unsupported_media_type")
        ],
    ),
    429: OpenApiResponse(
        ErrorSerializer,
        "Too many attempts: wait the seconds that Retry-After says.",
        examples=[error_example(429, "You are sending messages too fast.", "throttled")],
    ),
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
# The headers of an operation that counts against a rate (chat.api.middleware): where the
# rate closest to refusing stands, as in the IETF draft "RateLimit header fields for HTTP".
RATE_LIMITED = [
    RETRY_AFTER,
    OpenApiParameter(
        "RateLimit-Limit",
        OpenApiTypes.INT,
        location=OpenApiParameter.HEADER,
        response=True,
        description="How many attempts the rate allows in its window.",
    ),
    OpenApiParameter(
        "RateLimit-Remaining",
        OpenApiTypes.INT,
        location=OpenApiParameter.HEADER,
        response=True,
        description="How many are left in this window.",
    ),
    OpenApiParameter(
        "RateLimit-Reset",
        OpenApiTypes.INT,
        location=OpenApiParameter.HEADER,
        response=True,
        description="Seconds until the window ends and the count starts afresh.",
    ),
]
LOCATION = OpenApiParameter(
    "Location",
    OpenApiTypes.URI,
    location=OpenApiParameter.HEADER,
    response=[201],
    description="The address of what was created.",
)


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """The error responses of an operation, besides 401 and 403, which any operation may answer."""
    return {code: ERRORS[code] for code in sorted({401, 403, *codes})}


def validated(serializer_class: type[Serializer[Any]], data: Any) -> dict[str, Any]:
    """The validated data of a request body or query, or a 400 naming the fields."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
