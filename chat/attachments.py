"""Files sent with messages: checked, stored through Django's storage API, and images given
a thumbnail made with Pillow.

A message's files arrive with it in one request and are stored in the transaction that
saves it (chat.services.messages.post_message); everything that can refuse a file is
checked before anything is written. What a file is, the server decides: an image is one
that Pillow reads as PNG, JPEG, GIF or WebP (the only types ever shown inline); any other
file's type comes from its name, for information only, and it is always downloaded.
"""

from __future__ import annotations

import logging
import mimetypes
import unicodedata
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import IO, TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile, File
from django.http import Http404
from django.template.defaultfilters import filesizeformat
from django.utils.formats import number_format
from django.utils.translation import gettext, ngettext
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from chat.models import Attachment, Message

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

# Pillow's name of each image format shown inline, and its type. A phone's JPEG may hold
# more than one picture (MPO): Pillow names it apart, and browsers show its first.
IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
FORMAT_TYPES = {**IMAGE_TYPES, "MPO": "image/jpeg"}
INLINE_TYPES = frozenset(IMAGE_TYPES.values())
OCTET_STREAM = "application/octet-stream"
# A thumbnail fits in this box (width, height), and is never larger than its image.
THUMBNAIL_BOX = (400, 400)
THUMBNAIL_TYPE = "image/webp"
NAME_MAX_LENGTH = 255
# The types a browser might run or render as a page: downloaded as bytes, whatever they are.
ACTIVE_MARKERS = ("html", "xml", "svg", "javascript", "ecmascript")
# Types from the name alone, the same on every machine (not the system's mime.types).
_types = mimetypes.MimeTypes()
# Pillow warns of an image past Image.MAX_IMAGE_PIXELS (and refuses past twice that): here a
# warning refuses it too. Images past the limit are refused before either, by read_image.
warnings.simplefilter("error", Image.DecompressionBombWarning)


@dataclass(frozen=True)
class Upload:
    """A file checked and ready to store: what it is, and its thumbnail if an image."""

    file: File[Any]
    name: str
    size: int
    content_type: str
    thumbnail: bytes | None = None
    width: int | None = None
    height: int | None = None


def check_files(files: Sequence[Any]) -> None:
    """The cheap checks, before anything is read: how many files, and how large each is."""
    limit = settings.ATTACHMENTS_PER_MESSAGE
    if len(files) > limit:
        raise ValidationError(
            {
                "files": ngettext(
                    "A message can have at most %(limit)s file (this one has %(count)s).",
                    "A message can have at most %(limit)s files (this one has %(count)s).",
                    limit,
                )
                % {"limit": limit, "count": len(files)}
            }
        )
    for file in files:
        name = display_name(getattr(file, "name", ""))
        size = file_size(file)
        if size == 0:
            raise ValidationError({"files": gettext("%(name)s is empty.") % {"name": name}})
        if size > settings.ATTACHMENT_MAX_BYTES:
            raise ValidationError(
                {
                    "files": gettext("%(name)s is too large: a file can have at most %(limit)s.")
                    % {"name": name, "limit": filesizeformat(settings.ATTACHMENT_MAX_BYTES)}
                }
            )


def prepare(files: Sequence[Any]) -> list[Upload]:
    """Check the files and make the thumbnails of the images, writing nothing; a file that
    can't be taken is a ValidationError that names it."""
    check_files(files)
    return [prepare_one(file) for file in files]


def prepare_one(file: Any) -> Upload:
    name = display_name(getattr(file, "name", ""))
    if not isinstance(file, File):
        file = File(file, name=name)
    size = file_size(file)
    image = read_image(file, name)
    file.seek(0)
    if image is None:
        return Upload(file=file, name=name, size=size, content_type=type_from_name(file, name))
    content_type, thumbnail, width, height = image
    return Upload(
        file=file,
        name=name,
        size=size,
        content_type=content_type,
        thumbnail=thumbnail,
        width=width,
        height=height,
    )


def file_size(file: Any) -> int:
    size = getattr(file, "size", None)
    if size is None:
        file.seek(0, 2)
        size = file.tell()
        file.seek(0)
    return int(size)


def display_name(name: str | None) -> str:
    """The sender's name for the file, without folders or control characters, at most
    NAME_MAX_LENGTH characters (its extension kept)."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(char for char in name if unicodedata.category(char)[0] != "C").strip()
    if len(name) > NAME_MAX_LENGTH:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 16:
            name = stem[: NAME_MAX_LENGTH - len(extension) - 1] + "." + extension
        else:
            name = name[:NAME_MAX_LENGTH]
    return name or "file"


def type_from_name(file: IO[bytes], name: str) -> str:
    """The type of a file that is not an image we show: from its name (or a PDF's first
    bytes). Never an inline image type: a file that claims to be one but isn't is bytes."""
    file.seek(0)
    head = file.read(8)
    file.seek(0)
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    guessed, encoding = _types.guess_type(name, strict=False)
    if encoding == "gzip":
        return "application/gzip"
    if guessed is None or encoding is not None or guessed in INLINE_TYPES or len(guessed) > 100:
        return OCTET_STREAM
    return guessed


def too_many_pixels(name: str) -> ValidationError:
    return ValidationError(
        {
            "files": gettext("%(name)s is an image too large to show: at most %(limit)s pixels.")
            % {"name": name, "limit": number_format(settings.ATTACHMENT_MAX_PIXELS, force_grouping=True)}
        }
    )


def read_image(file: IO[bytes], name: str) -> tuple[str, bytes, int, int] | None:
    """For a PNG, JPEG, GIF or WebP image: its type, a thumbnail without metadata, and its
    upright width and height. None for any other file, or an image Pillow can't decode
    (it is stored as a plain file). ValidationError for an image with too many pixels."""
    limit = settings.ATTACHMENT_MAX_PIXELS
    # Pillow refuses past twice this (DecompressionBombError) and warns past it; images with
    # more pixels than the limit are refused below before either could happen.
    Image.MAX_IMAGE_PIXELS = limit
    file.seek(0)
    try:
        # Only the formats shown inline: no other of Pillow's parsers ever sees a file.
        with Image.open(file, formats=list(IMAGE_TYPES)) as probe:
            image_format = str(probe.format)
            if image_format not in FORMAT_TYPES:
                return None
            width, height = probe.size
            # The size the header declares, checked before a pixel is decoded.
            if width * height > limit:
                raise too_many_pixels(name)
            probe.verify()
        # verify() leaves the image unusable: it is opened again to decode it.
        file.seek(0)
        with Image.open(file, formats=list(IMAGE_TYPES)) as image:
            orientation = exif_orientation(image)
            thumbnail = make_thumbnail(image)
    except UnidentifiedImageError:
        return None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise too_many_pixels(name) from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as error:
        logger.info("An image that Pillow could not read is stored as a file: %s", error)
        return None
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return FORMAT_TYPES[image_format], thumbnail, width, height


def exif_orientation(image: Image.Image) -> int | None:
    """The EXIF orientation (1-8), or None when there is none or the EXIF can't be read."""
    try:
        value = image.getexif().get(ExifTags.Base.Orientation)
    except (OSError, SyntaxError, ValueError, EOFError):
        return None
    return value if isinstance(value, int) else None


def make_thumbnail(image: Image.Image) -> bytes:
    """A WebP copy of the image's first frame within THUMBNAIL_BOX, upright, and with no
    metadata: the pixels are copied into a new image, so EXIF (places, cameras), XMP and
    comments stay behind."""
    image.seek(0)
    # For a JPEG, thumbnail() decodes at a reduced scale (draft): a large photo costs little.
    image.thumbnail(THUMBNAIL_BOX)
    upright = ImageOps.exif_transpose(image)
    mode = "RGBA" if upright.has_transparency_data else "RGB"
    pixels = upright.convert(mode)
    clean = Image.new(mode, pixels.size)
    clean.paste(pixels)
    output = BytesIO()
    clean.save(output, "WEBP", quality=80)
    return output.getvalue()


def store(message: Message, uploads: Iterable[Upload]) -> list[Attachment]:
    """Write the files through the storage and save their rows, inside the caller's
    transaction; if anything fails, the files already written are deleted again."""
    stored: list[Attachment] = []
    written: list[str] = []
    try:
        for upload in uploads:
            attachment = Attachment(
                chat_id=message.chat_id,
                message=message,
                uploaded_by_id=message.user_id,
                name=upload.name,
                size=upload.size,
                content_type=upload.content_type,
                width=upload.width,
                height=upload.height,
            )
            attachment.file.save("file", upload.file, save=False)
            written.append(str(attachment.file.name))
            if upload.thumbnail is not None:
                attachment.thumbnail.save("thumbnail.webp", ContentFile(upload.thumbnail), save=False)
                written.append(str(attachment.thumbnail.name))
            attachment.save()
            stored.append(attachment)
    except BaseException:
        delete_files(written)
        raise
    return stored


def remember(message: Message, stored: Sequence[Attachment]) -> None:
    """Give the message its attachments as a prefetch would, so that rendering and
    serializing it read none: the related manager's cache filled as prefetch_related fills
    it (prefetch_related_objects costs a sizeable part of a post even without files)."""
    queryset = message.attachments.all()
    queryset._result_cache = list(stored)
    queryset._prefetch_done = True  # type: ignore[attr-defined]
    message._prefetched_objects_cache = {"attachments": queryset}  # type: ignore[attr-defined]


def stored_names(message: Message) -> list[str]:
    """The storage names of a message's files and thumbnails."""
    names = []
    for file, thumbnail in Attachment.objects.filter(message=message).values_list("file", "thumbnail"):
        names.append(file)
        if thumbnail:
            names.append(thumbnail)
    return names


def delete_files(names: Iterable[str]) -> None:
    """Delete files from the storage (after the commit that forgot them); a failure is
    logged, and the others are still deleted."""
    for name in names:
        try:
            Attachment._meta.get_field("file").storage.delete(name)
        except OSError:
            logger.exception("Could not delete the stored file %s", name)


def get_visible_attachment(*, user: User, attachment_id: int) -> Attachment:
    """An attachment of a message (not deleted) in a chat the user is a member of; else a
    404 (a public room's files too: they are its members')."""
    try:
        return Attachment.objects.get(
            pk=attachment_id,
            message__deleted_at__isnull=True,
            chat__memberships__user=user,
        )
    except Attachment.DoesNotExist:
        raise Http404(gettext("No such file.")) from None


def served_type(attachment: Attachment) -> str:
    """The Content-Type a download is sent with: the stored one, except types a browser
    could run or render as a page (HTML, SVG, XML, scripts), which go as plain bytes."""
    content_type = attachment.content_type.lower()
    if any(marker in content_type for marker in ACTIVE_MARKERS):
        return OCTET_STREAM
    return content_type or OCTET_STREAM


def is_inline(attachment: Attachment) -> bool:
    """Only images Pillow read as PNG, JPEG, GIF or WebP are shown in the browser."""
    return attachment.content_type in INLINE_TYPES and attachment.width is not None
