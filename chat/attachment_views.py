"""Downloading the files sent with messages: checked on every request, never a public URL.

Only someone who may see the message's chat gets a file (a 404 for anyone else, as for
every other thing of a chat they may not see); the browser's session or an API token
signs them in. Images Pillow read as PNG, JPEG, GIF or WebP are shown inline; everything
else, SVG and HTML included, is a download. Every answer is sandboxed by its own Content
Security Policy and says `nosniff`, so that no file is ever run as a page of this site.
"""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.db.models.fields.files import FieldFile
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils.translation import gettext
from django.views.decorators.http import require_safe

from chat import attachments
from chat.models import Attachment
from chat.services.accounts import authenticate_token

# What a downloaded file may do if a browser renders it anyway: nothing.
DOWNLOAD_CSP = "default-src 'none'; sandbox"
# A file never changes under its URL; only the reader's own browser keeps it.
CACHE_CONTROL = "private, max-age=86400"


def reader(request: HttpRequest) -> tuple[object | None, bool]:
    """Who is asking (None for nobody), and whether they asked with an API token."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "token" and key.strip():
        token = authenticate_token(key.strip())
        return (token.user if token is not None else None), True
    return (request.user if request.user.is_authenticated else None), False


def visible_attachment(request: HttpRequest, attachment_id: int) -> Attachment | HttpResponse:
    user, with_token = reader(request)
    if user is None:
        if with_token:
            response = HttpResponse(gettext("Invalid token."), status=401, content_type="text/plain")
            response["WWW-Authenticate"] = "Token"
            return response
        return redirect_to_login(request.get_full_path())
    return attachments.get_visible_attachment(user=user, attachment_id=attachment_id)  # type: ignore[arg-type]


def send_file(file: FieldFile, *, name: str, content_type: str, inline: bool) -> FileResponse:
    try:
        handle = file.open("rb")
    except (FileNotFoundError, ValueError):
        # The row is there but the bytes are not (a storage that lost them): nothing to send.
        raise Http404(gettext("No such file.")) from None
    response = FileResponse(handle, as_attachment=not inline, filename=name, content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = DOWNLOAD_CSP
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["Cache-Control"] = CACHE_CONTROL
    return response


@require_safe
def download(request: HttpRequest, attachment_id: int) -> HttpResponseBase:
    """The file as it was sent."""
    attachment = visible_attachment(request, attachment_id)
    if isinstance(attachment, HttpResponse):
        return attachment
    return send_file(
        attachment.file,
        name=attachment.name,
        content_type=attachments.served_type(attachment),
        inline=attachments.is_inline(attachment),
    )


@require_safe
def thumbnail(request: HttpRequest, attachment_id: int) -> HttpResponseBase:
    """An image's thumbnail (WebP, without metadata)."""
    attachment = visible_attachment(request, attachment_id)
    if isinstance(attachment, HttpResponse):
        return attachment
    if not attachment.thumbnail:
        raise Http404(gettext("No such file."))
    stem = attachment.name.rsplit(".", 1)[0] or "thumbnail"
    return send_file(
        attachment.thumbnail, name=f"{stem}.webp", content_type=attachments.THUMBNAIL_TYPE, inline=True
    )
