"""Files sent with messages: the rules (chat.attachments), every door that sends them, the
download view, and the live push. Every test stores its files in a temporary folder."""

from __future__ import annotations

import json
import struct
import tempfile
import uuid
import zlib
from io import BytesIO
from pathlib import Path
from typing import Any
from unittest import mock

from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client, TestCase, TransactionTestCase, override_settings
from django.test.utils import CaptureQueriesContext
from PIL import Image

from chat import attachments, broadcast, frames, services
from chat.models import Attachment, Chat, Event, Membership, Message
from chat.serializers import MessageSerializer
from chat.tests.factories import SocketListener, make_room, make_user
from chat.tests.test_api import api
from chat.tests.test_consumers import open_socket
from chat.tests.test_events import api_message, receive, stream

PRIVATE = Chat.Visibility.PRIVATE


# --- Files to send -------------------------------------------------------------------


def image_bytes(
    image_format: str = "PNG", size: tuple[int, int] = (40, 30), colour: Any = (200, 30, 30), **options: Any
) -> bytes:
    output = BytesIO()
    Image.new("RGB", size, colour).save(output, image_format, **options)
    return output.getvalue()


def png(name: str = "picture.png", **options: Any) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, image_bytes(**options), content_type="image/png")


def text_file(name: str = "notes.txt", content: bytes = b"Plans for Monday\n") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/plain")


def photo_with_exif() -> bytes:
    """A JPEG 60 x 40 as stored, with a camera, a place and "rotate 90°" (orientation 6)."""
    image = Image.new("RGB", (60, 40), (10, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "Spy Camera Co."  # Make
    exif[0x0112] = 6  # Orientation: the camera was turned; shown upright it is 40 x 60
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)}  # GPS
    output = BytesIO()
    image.save(output, "JPEG", exif=exif)
    data = output.getvalue()
    assert b"Spy Camera Co." in data
    return data


def animated_gif() -> bytes:
    """Two frames: green, then blue."""
    frames = [Image.new("RGB", (30, 20), colour) for colour in ((0, 200, 0), (0, 0, 200))]
    output = BytesIO()
    frames[0].save(output, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return output.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A few hundred bytes of PNG whose header declares width x height 1-bit pixels: a
    decompression bomb (30,000 x 30,000 would decode to almost a gigabyte)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + width // 8) * 16, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


# --- Where files go in tests ---------------------------------------------------------


class MediaMixin:
    """A temporary MEDIA_ROOT for each test, so that nothing is left in the repository."""

    media: Path

    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        directory = tempfile.TemporaryDirectory(prefix="chat-media-")
        self.addCleanup(directory.cleanup)  # type: ignore[attr-defined]
        self.media = Path(directory.name)
        override = override_settings(MEDIA_ROOT=directory.name)
        override.enable()
        self.addCleanup(override.disable)  # type: ignore[attr-defined]

    def path(self, file: Any) -> Path:
        assert file.name, "no file"
        return self.media / file.name

    def stored(self) -> list[str]:
        return sorted(str(path.relative_to(self.media)) for path in self.media.rglob("*") if path.is_file())


def content(response: Any) -> bytes:
    return b"".join(response.streaming_content)


# --- The rules ----------------------------------------------------------------------


class AttachmentServiceTests(MediaMixin, TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.alice = make_user("alice")
        self.room = make_room(self.alice, name="Team")

    def post(self, text: str = "", files: list[Any] | None = None) -> Message:
        message, _ = services.post_message(chat=self.room, user=self.alice, text=text, files=files or [])
        return message

    def test_a_catch_up_reads_files_in_one_query_whatever_their_number(self):
        """What a page missed is rendered with its files, reactions and pins loaded at once."""
        first = self.post("first")
        self.post("one", [text_file()])
        with CaptureQueriesContext(connection) as few:
            frames.catch_up(chat=self.room, after=first.pk, since=0)
        for n in range(4):
            self.post(f"more {n}", [text_file(f"n{n}.txt"), text_file(f"m{n}.txt")])
        with CaptureQueriesContext(connection) as many:
            html = frames.catch_up(chat=self.room, after=first.pk, since=0)
        assert html.count('class="attachment ') == 9
        assert len(many) == len(few)

    def test_an_image_is_stored_with_a_thumbnail(self):
        """An image is stored under a random name in its chat's folder, with its type decided
        from its bytes, its size, and a WebP thumbnail."""
        message = self.post("look", [png("../../etc/passwd.png", size=(800, 200))])
        [attachment] = message.attachments.all()
        assert attachment.name == "passwd.png"
        assert attachment.content_type == "image/png"
        assert (attachment.width, attachment.height) == (800, 200)
        assert attachment.uploaded_by == self.alice and attachment.chat == self.room
        assert attachment.size == len(image_bytes(size=(800, 200)))
        names = [str(attachment.file.name), str(attachment.thumbnail.name)]
        for name in names:
            assert name.startswith(f"attachments/{self.room.pk}/")
            assert "passwd" not in name
        assert self.stored() == sorted(names)
        with Image.open(self.path(attachment.thumbnail)) as thumbnail:
            assert thumbnail.format == "WEBP"
            assert thumbnail.size == attachment.thumbnail_size == (400, 100)

    def test_the_thumbnail_carries_no_metadata_and_stands_upright(self):
        """EXIF (the camera, the place) is not in the thumbnail; the image is turned as its
        orientation says, and its size is given upright."""
        upload = SimpleUploadedFile("IMG_0001.JPG", photo_with_exif(), content_type="image/jpeg")
        [attachment] = self.post("", [upload]).attachments.all()
        assert attachment.content_type == "image/jpeg"
        assert (attachment.width, attachment.height) == (40, 60)
        data = self.path(attachment.thumbnail).read_bytes()
        assert b"Spy Camera Co." not in data and b"Exif" not in data
        with Image.open(BytesIO(data)) as thumbnail:
            assert thumbnail.size == (40, 60)
            assert dict(thumbnail.getexif()) == {}
            assert not {"exif", "xmp", "icc_profile"} & set(thumbnail.info)

    def test_a_phones_multi_picture_jpeg_is_a_jpeg(self):
        output = BytesIO()
        first, second = Image.new("RGB", (30, 20), (0, 200, 0)), Image.new("RGB", (30, 20))
        first.save(output, "MPO", save_all=True, append_images=[second])
        upload = SimpleUploadedFile("IMG_0002.JPG", output.getvalue())
        [attachment] = self.post("", [upload]).attachments.all()
        assert (attachment.content_type, attachment.width, bool(attachment.thumbnail)) == (
            "image/jpeg",
            30,
            True,
        )

    def test_an_animated_gif_shows_its_first_frame(self):
        upload = SimpleUploadedFile("party.gif", animated_gif(), content_type="image/gif")
        [attachment] = self.post("", [upload]).attachments.all()
        assert attachment.content_type == "image/gif"
        with Image.open(self.path(attachment.thumbnail)) as thumbnail:
            _red, green, blue = thumbnail.convert("RGB").getpixel((5, 5))  # type: ignore[misc]
        assert green > 150 and blue < 60

    def test_other_files_are_typed_by_the_server(self):
        """A file that is not an image we show gets a type from its name at most, never an
        inline image type, whatever the client said; it has no thumbnail."""
        cases = [
            (text_file(), "text/plain"),
            (
                SimpleUploadedFile("fake.png", b"<script>alert(1)</script>", content_type="image/png"),
                "application/octet-stream",
            ),
            (
                SimpleUploadedFile(
                    "drawing.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", content_type="image/png"
                ),
                "image/svg+xml",
            ),
            (SimpleUploadedFile("report", b"%PDF-1.7\n...", content_type="text/html"), "application/pdf"),
            (
                SimpleUploadedFile("data.bin", b"\x00\x01", content_type="image/jpeg"),
                "application/octet-stream",
            ),
        ]
        message = self.post("files", [upload for upload, _ in cases])
        found = [(a.name, a.content_type, bool(a.thumbnail), a.width) for a in message.attachments.all()]
        assert found == [(upload.name, expected, False, None) for upload, expected in cases]

    def test_a_decompression_bomb_is_refused_and_nothing_is_stored(self):
        """An image whose header declares more pixels than ATTACHMENT_MAX_PIXELS is refused
        before it is decoded; the message and its other files are not stored."""
        data = png_declaring(30_000, 30_000)
        assert len(data) < 2000
        bomb = SimpleUploadedFile("bomb.png", data, content_type="image/png")
        with self.assertRaisesMessage(ValidationError, "bomb.png is an image too large to show"):
            self.post("boom", [text_file(), bomb])
        assert not Message.objects.filter(chat=self.room).exists()
        assert not Attachment.objects.exists()
        assert self.stored() == []

    def test_the_pixel_limit_comes_from_the_settings(self):
        with (
            override_settings(ATTACHMENT_MAX_PIXELS=40 * 30 - 1),
            self.assertRaisesMessage(ValidationError, "at most 1,199 pixels"),
        ):
            self.post("", [png()])
        with override_settings(ATTACHMENT_MAX_PIXELS=40 * 30):
            assert self.post("", [png()]).attachments.count() == 1

    @override_settings(ATTACHMENT_MAX_BYTES=100)
    def test_a_file_too_large_is_refused(self):
        with self.assertRaisesMessage(ValidationError, "big.txt is too large: a file can have at most 100"):
            self.post("hi", [text_file(), text_file("big.txt", b"x" * 101)])
        assert self.post("hi", [text_file("fits.txt", b"x" * 100)]).attachments.count() == 1
        assert self.stored() and Attachment.objects.count() == 1

    @override_settings(ATTACHMENTS_PER_MESSAGE=2)
    def test_at_most_so_many_files(self):
        with self.assertRaisesMessage(ValidationError, "at most 2 files (this one has 3)"):
            self.post("hi", [text_file(f"{n}.txt") for n in range(3)])
        assert self.stored() == []
        assert self.post("hi", [text_file(f"{n}.txt") for n in range(2)]).attachments.count() == 2

    def test_an_empty_file_is_refused(self):
        with self.assertRaisesMessage(ValidationError, "empty.txt is empty."):
            self.post("hi", [text_file("empty.txt", b"")])

    def test_with_files_the_text_may_be_empty(self):
        message = self.post("  ", [text_file()])
        assert message.text == "" and message.attachments.count() == 1
        with self.assertRaisesMessage(ValidationError, "Write a message first."):
            self.post("  ")

    def test_files_written_before_a_failure_are_deleted(self):
        """If storing fails half-way, the files already written are deleted again and the
        message is not saved."""
        real_save = Attachment.save
        calls = []

        def fail_second(attachment: Attachment, *args: Any, **kwargs: Any) -> None:
            calls.append(attachment)
            if len(calls) == 2:
                raise OSError("disk full")
            real_save(attachment, *args, **kwargs)

        with mock.patch.object(Attachment, "save", fail_second), self.assertRaises(OSError):
            self.post("two", [png(), text_file()])
        assert self.stored() == []
        assert not Message.objects.filter(chat=self.room).exists()

    def test_deleting_the_message_deletes_its_files(self):
        message = self.post("soon gone", [png(), text_file()])
        assert len(self.stored()) == 3
        with self.captureOnCommitCallbacks(execute=True):
            services.delete_message(message=message, user=self.alice)
        assert self.stored() == []
        assert not Attachment.objects.exists()
        message = Message.objects.get(pk=message.pk)
        assert MessageSerializer(message).data["attachments"] == []

    def test_a_new_message_renders_and_serializes_without_queries(self):
        """The message a post returns carries its files: its push renders once and reads
        nothing from the database, as a message without files."""
        message = self.post("look", [png(), text_file()])
        frame = Event.objects.get(chat=self.room, number=message.event).data
        listener = SocketListener(self.room)
        try:
            with self.assertNumQueries(0):
                broadcast.message_posted(message, frame)
                MessageSerializer(message).data  # noqa: B018
            [html] = listener.pending()
        finally:
            listener.close()
        first, _second = message.attachments.all()
        assert f'src="/files/{first.pk}/thumbnail/"' in html
        assert "notes.txt" in html

    def test_the_api_shape_of_attachments(self):
        message = self.post("", [png(size=(10, 8)), text_file()])
        image, notes = message.attachments.all()
        data = json.loads(json.dumps(MessageSerializer(message).data))
        assert data["attachments"] == [
            {
                "id": image.pk,
                "name": "picture.png",
                "size": image.size,
                "content_type": "image/png",
                "url": f"/files/{image.pk}/",
                "thumbnail_url": f"/files/{image.pk}/thumbnail/",
                "width": 10,
                "height": 8,
            },
            {
                "id": notes.pk,
                "name": "notes.txt",
                "size": 17,
                "content_type": "text/plain",
                "url": f"/files/{notes.pk}/",
                "thumbnail_url": None,
                "width": None,
                "height": None,
            },
        ]
        event = json.loads(Event.objects.get(chat=self.room, number=message.event).data)
        assert event["message"]["attachments"] == data["attachments"]

    def test_an_edit_keeps_the_files(self):
        message = self.post("first", [text_file()])
        with self.captureOnCommitCallbacks(execute=True):
            edited = services.edit_message(message=message, user=self.alice, text="second")
        event = json.loads(Event.objects.get(chat=self.room, number=edited.event).data)
        assert event["type"] == "message.updated"
        assert [a["name"] for a in event["message"]["attachments"]] == ["notes.txt"]
        assert len(self.stored()) == 1

    def test_sizes_read_the_same_in_every_language(self):
        sizes = {
            0: "0 B",
            999: "999 B",
            1000: "1.0 kB",
            1536: "1.5 kB",
            99_949: "99.9 kB",
            150_000: "150 kB",
            999_600: "1.0 MB",
            10 * 1024 * 1024: "10.5 MB",
            3 * 10**9: "3.0 GB",
        }
        assert {size: Attachment(size=size).size_text for size in sizes} == sizes

    def test_display_names(self):
        assert attachments.display_name("C:\\Users\\me\\report.pdf") == "report.pdf"
        assert attachments.display_name("a\x00b\u202e.txt") == "ab.txt"
        assert attachments.display_name("") == "file"
        long = attachments.display_name("x" * 300 + ".jpeg")
        assert len(long) == 255 and long.endswith(".jpeg")


# --- The page, without and with JavaScript ---------------------------------------------


class PageTests(MediaMixin, TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.alice = make_user("alice")
        self.room = make_room(self.alice, name="Team")
        self.client = Client()
        self.client.force_login(self.alice)
        self.url = f"/chats/{self.room.pk}/messages/"

    def test_the_composer_takes_files(self):
        page = self.client.get(f"/chats/{self.room.pk}/").content.decode()
        assert 'enctype="multipart/form-data"' in page
        assert '<label for="composer-files"' in page and "Attach files</label>" in page
        assert '<input type="file" name="files" id="composer-files" multiple' in page

    def test_a_plain_multipart_post_sends_files(self):
        """Without JavaScript the composer is a multipart form: Post/Redirect/Get, and the page
        shows the image's thumbnail (linking to the image) and the other file's card."""
        client_id = uuid.uuid4()
        response = self.client.post(
            self.url, {"text": "the plan", "client_id": client_id, "files": [png(), text_file()]}
        )
        assert response.status_code == 302 and response["Location"] == f"/chats/{self.room.pk}/"
        message = Message.objects.get(client_id=client_id)
        image, notes = message.attachments.all()
        page = self.client.get(response["Location"]).content.decode()
        assert f'<a href="/files/{image.pk}/" target="_blank" rel="noopener"' in page
        assert f'<img src="/files/{image.pk}/thumbnail/" alt="picture.png"' in page
        assert 'width="40" height="30" loading="lazy"' in page
        assert f'<a href="/files/{notes.pk}/" download' in page
        assert ">notes.txt</span>" in page and '<data class="attachment-size' in page
        assert 'value="17">17 B</data>' in page

    @override_settings(ATTACHMENT_MAX_BYTES=10)
    def test_a_refused_file_keeps_the_text(self):
        response = self.client.post(self.url, {"text": "keep me", "files": [text_file()]})
        assert response.status_code == 400
        page = response.content.decode()
        assert "notes.txt is too large" in page
        assert ">keep me</textarea>" in page
        assert not Message.objects.filter(chat=self.room).exists()
        assert self.stored() == []

    def test_htmx_posts_files_and_gets_a_fresh_composer(self):
        """chat.js posts the composer over HTTP when it has files: the answer is the composer."""
        response = self.client.post(self.url, {"text": "", "files": [png()]}, headers={"HX-Request": "true"})
        assert response.status_code == 200
        html = response.content.decode()
        assert html.lstrip().startswith('<form id="composer"')
        assert "></textarea>" in html
        message = Message.objects.get(chat=self.room)
        assert message.text == "" and message.attachments.get().content_type == "image/png"

    def test_htmx_refusal_shows_in_the_composer(self):
        with override_settings(ATTACHMENTS_PER_MESSAGE=1):
            response = self.client.post(
                self.url, {"text": "two", "files": [png(), text_file()]}, headers={"HX-Request": "true"}
            )
        assert response.status_code == 200
        assert "at most 1 file (this one has 2)" in response.content.decode()
        assert ">two</textarea>" in response.content.decode()
        assert not Message.objects.filter(chat=self.room).exists()

    def test_a_room_page_costs_the_same_queries_whatever_its_files(self):
        """The page reads all its messages' files in one query, however many there are."""

        def queries() -> tuple[int, int]:
            with CaptureQueriesContext(connection) as captured:
                assert self.client.get(f"/chats/{self.room.pk}/").status_code == 200
            reading_files = [q for q in captured.captured_queries if '"chat_attachment"' in q["sql"]]
            return len(captured.captured_queries), len(reading_files)

        services.post_message(chat=self.room, user=self.alice, text="one", files=[png()])
        services.post_message(chat=self.room, user=self.alice, text="plain")
        few = queries()
        for n in range(6):
            services.post_message(
                chat=self.room,
                user=self.alice,
                text=f"more {n}",
                files=[png(), text_file(), text_file("b.txt")],
            )
        assert queries() == few
        assert few[1] == 1


# --- The API ------------------------------------------------------------------------


class ApiTests(MediaMixin, TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.alice = make_user("alice")
        self.room = make_room(self.alice, name="Team")

    def test_a_multipart_post_sends_files(self):
        response = api(self.alice).post(
            f"/api/chats/{self.room.pk}/messages/",
            {"text": "", "files": [png(), text_file()]},
            format="multipart",
        )
        assert response.status_code == 201, response.content
        body = response.json()
        assert [a["name"] for a in body["attachments"]] == ["picture.png", "notes.txt"]
        assert body["attachments"][0]["thumbnail_url"].endswith("/thumbnail/")
        shown = api(self.alice).get(f"/api/messages/{body['id']}/").json()
        assert shown["attachments"] == body["attachments"]
        listed = api(self.alice).get(f"/api/chats/{self.room.pk}/messages/").json()
        assert listed["results"][0]["attachments"] == body["attachments"]

    def test_the_flat_route_takes_files_too(self):
        response = api(self.alice).post(
            "/api/messages/", {"chat": self.room.pk, "text": "hi", "files": [text_file()]}, format="multipart"
        )
        assert response.status_code == 201, response.content
        assert response.json()["attachments"][0]["content_type"] == "text/plain"

    def test_a_refused_file_is_a_400_naming_files(self):
        with override_settings(ATTACHMENT_MAX_BYTES=5):
            response = api(self.alice).post(
                f"/api/chats/{self.room.pk}/messages/",
                {"text": "hi", "files": [text_file()]},
                format="multipart",
            )
        assert response.status_code == 400
        assert "notes.txt is too large" in response.json()["files"][0]
        assert not Message.objects.filter(chat=self.room).exists()

    def test_json_posts_are_as_before(self):
        response = api(self.alice).post(f"/api/chats/{self.room.pk}/messages/", {"text": "hi"}, format="json")
        assert response.status_code == 201
        assert response.json()["attachments"] == []


# --- Downloads ----------------------------------------------------------------------


class DownloadTests(MediaMixin, TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.alice, self.bob, self.mallory = make_user("alice"), make_user("bob"), make_user("mallory")
        self.room = make_room(self.alice, name="Secret", visibility=PRIVATE)
        services.add_member(chat=self.room, by=self.alice, user=self.bob)
        self.image_bytes = image_bytes()
        self.message, _ = services.post_message(
            chat=self.room,
            user=self.alice,
            text="files",
            files=[
                SimpleUploadedFile("café photo.png", self.image_bytes),
                text_file(),
                SimpleUploadedFile(
                    "x.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
                ),
                SimpleUploadedFile("page.html", b"<html><script>alert(1)</script></html>"),
            ],
        )
        self.image, self.notes, self.svg, self.html = self.message.attachments.all()

    def get(self, url: str, user: Any = None, **headers: str) -> Any:
        client = Client()
        if user is not None:
            client.force_login(user)
        return client.get(url, headers=headers)

    def assert_safe(self, response: Any) -> None:
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
        assert response["Cross-Origin-Resource-Policy"] == "same-origin"
        assert response["Cache-Control"].startswith("private")

    def test_a_member_gets_the_image_inline(self):
        response = self.get(f"/files/{self.image.pk}/", self.bob)
        assert response.status_code == 200
        assert response["Content-Type"] == "image/png"
        assert response["Content-Disposition"] == "inline; filename*=utf-8''caf%C3%A9%20photo.png"
        assert content(response) == self.image_bytes
        self.assert_safe(response)
        thumbnail = self.get(f"/files/{self.image.pk}/thumbnail/", self.bob)
        assert thumbnail.status_code == 200 and thumbnail["Content-Type"] == "image/webp"
        assert thumbnail["Content-Disposition"].startswith("inline;")
        assert content(thumbnail)[8:12] == b"WEBP"
        self.assert_safe(thumbnail)

    def test_other_files_are_downloaded(self):
        response = self.get(f"/files/{self.notes.pk}/", self.bob)
        assert response.status_code == 200
        assert response["Content-Type"] == "text/plain"
        assert response["Content-Disposition"] == 'attachment; filename="notes.txt"'
        assert content(response) == b"Plans for Monday\n"
        self.assert_safe(response)

    def test_svg_and_html_are_never_inline(self):
        """SVG and HTML could run script as a page of this site: they are bytes to download."""
        for attachment in (self.svg, self.html):
            response = self.get(f"/files/{attachment.pk}/", self.bob)
            assert response.status_code == 200
            assert response["Content-Type"] == "application/octet-stream"
            assert response["Content-Disposition"].startswith("attachment;")
            self.assert_safe(response)
            assert self.get(f"/files/{attachment.pk}/thumbnail/", self.bob).status_code == 404

    def test_only_those_who_may_see_the_chat_get_a_file(self):
        """A non-member of a private room gets a 404, as for its messages; nobody signed in is
        sent to log in; an API token signs in too."""
        for url in (f"/files/{self.image.pk}/", f"/files/{self.image.pk}/thumbnail/"):
            assert self.get(url, self.mallory).status_code == 404
            anonymous = self.get(url)
            assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/?next=")
            assert api(self.mallory).get(url).status_code == 404
            assert api(self.bob).get(url).status_code == 200
            assert api().get(url, HTTP_AUTHORIZATION="Token wrong").status_code == 401
        assert self.get("/files/999999/", self.bob).status_code == 404

    def test_a_removed_member_no_longer_gets_files(self):
        services.remove_member(chat=self.room, by=self.alice, user=self.bob)
        assert self.get(f"/files/{self.image.pk}/", self.bob).status_code == 404

    def test_only_members_of_a_public_room_get_its_files(self):
        """A public room's messages are readable by anyone signed in; its files are its members'."""
        public = make_room(self.alice, name="Open")
        message, _ = services.post_message(chat=public, user=self.alice, text="", files=[text_file()])
        url = f"/files/{message.attachments.get().pk}/"
        assert not Membership.objects.filter(chat=public, user=self.mallory).exists()
        assert self.get(url, self.mallory).status_code == 404
        services.join_chat(user=self.mallory, chat=public)
        assert self.get(url, self.mallory).status_code == 200

    def test_files_of_a_deleted_message_are_gone(self):
        with self.captureOnCommitCallbacks(execute=True):
            services.delete_message(message=self.message, user=self.alice)
        assert self.get(f"/files/{self.image.pk}/", self.bob).status_code == 404
        assert self.stored() == []

    def test_head_and_no_other_method(self):
        client = Client()
        client.force_login(self.bob)
        assert client.head(f"/files/{self.notes.pk}/").status_code == 200
        assert client.post(f"/files/{self.notes.pk}/").status_code == 405


# --- Live ---------------------------------------------------------------------------


@override_settings(ALLOWED_HOSTS=["127.0.0.1", "testserver"])
class LiveTests(MediaMixin, TransactionTestCase):
    def setUp(self) -> None:
        super().setUp()
        Chat.objects.get_or_create(name="General", auto_join=True)
        self.alice, self.bob = make_user("alice"), make_user("bob")
        self.room = make_room(self.alice, name="Team")
        services.add_member(chat=self.room, by=self.alice, user=self.bob)

    def post_form(self, text: str) -> Message:
        client = Client()
        client.force_login(self.alice)
        response = client.post(
            f"/chats/{self.room.pk}/messages/", {"text": text, "files": [png(), text_file()]}
        )
        assert response.status_code == 302
        return Message.objects.get(text=text)

    async def test_files_reach_the_other_members_pages_live(self):
        """A message posted with files by the form appears in another member's open page
        with its thumbnail and its card."""
        socket = await open_socket(self.room, self.bob)
        message = await sync_to_async(self.post_form)("with files")
        pushed = await socket.receive_from(timeout=5)
        image, notes = [a async for a in message.attachments.all()]
        assert f'<article id="message-{message.pk}"' in pushed
        assert f'<img src="/files/{image.pk}/thumbnail/"' in pushed
        assert f'<a href="/files/{notes.pk}/" download' in pushed
        await socket.disconnect()

    async def test_files_are_in_the_event_stream(self):
        """The event stream's message.created shows the files as the REST API does."""
        socket, _ = await stream(self.bob)
        message = await sync_to_async(self.post_form)("for programs")
        event = await receive(socket)
        assert event["type"] == "message.created"
        assert event["message"] == await sync_to_async(api_message)(message.pk)
        assert [a["name"] for a in event["message"]["attachments"]] == ["picture.png", "notes.txt"]
        await socket.disconnect()
