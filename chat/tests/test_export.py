"""Export: `manage.py export_chat` and the owner's download."""

from __future__ import annotations

import io
import json
import re
import tempfile
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext

from chat import services
from chat.export import messages_of
from chat.models import Chat
from chat.tests.factories import make_messages, make_room, make_user

MARKUP = '<script>alert("x")</script> & <b>bold</b>'

DECLARE_CURSOR = re.compile(r"^DECLARE\s.*?\bCURSOR\b.*?\bFOR\s+", re.IGNORECASE | re.DOTALL)


class ExportCommandTests(TestCase):
    def setUp(self) -> None:
        self.owner = make_user("olga")
        self.member = make_user("max")
        self.room = make_room(self.owner, "Plans")
        services.join_chat(user=self.member, chat=self.room)
        services.post_message(chat=self.room, user=self.owner, text="Hello there")
        services.post_message(chat=self.room, user=self.member, text=MARKUP)
        gone, _ = services.post_message(chat=self.room, user=self.member, text="to be deleted")
        services.delete_message(message=gone, user=self.member)
        self.output = Path(tempfile.mkdtemp(prefix="chat-export-"))

    def export(self, *args: str) -> tuple[str, str]:
        out, err = io.StringIO(), io.StringIO()
        call_command("export_chat", *args, "--output", str(self.output), stdout=out, stderr=err)
        return out.getvalue(), err.getvalue()

    def test_writes_the_chat_as_json(self) -> None:
        """--chat writes the chat's record, members and messages, oldest first, without the
        deleted one."""
        self.export("--chat", str(self.room.pk))
        document = json.loads((self.output / f"chat-{self.room.pk}.json").read_text())
        assert document["format"] == "chat-export"
        (chat,) = document["chats"]
        assert chat["name"] == "Plans"
        assert {(m["username"], m["role"]) for m in chat["members"]} == {("olga", "owner"), ("max", "member")}
        assert [m["text"] for m in chat["messages"]] == ["Hello there", MARKUP]
        assert chat["messages"][1]["user"] == {"id": self.member.pk, "username": "max"}

    def test_writes_a_static_html_archive(self) -> None:
        """The HTML archive is self-contained: inline CSS, no scripts, no links, text escaped."""
        self.export("--chat", str(self.room.pk), "--format", "html")
        page = (self.output / f"chat-{self.room.pk}.html").read_text()
        assert not (self.output / f"chat-{self.room.pk}.json").exists()
        assert "<style>" in page
        assert "<script" not in page.lower()
        assert not re.search(r"\b(src|href)=", page)
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
        assert "Hello there" in page
        assert "to be deleted" not in page
        assert page.rstrip().endswith("</html>")

    def test_exports_every_chat_of_a_user(self) -> None:
        """--user writes every chat the user is a member of, and no other."""
        make_room(self.owner, "Not max's")
        self.export("--user", "max")
        document = json.loads((self.output / "user-max.json").read_text())
        names = {chat["name"] for chat in document["chats"]}
        assert names == {chat.name for chat in Chat.objects.of_member(self.member)}
        assert "Plans" in names and "Not max's" not in names
        assert (self.output / "user-max.html").exists()

    def test_only_reads(self) -> None:
        """An export makes no write to the database."""
        with CaptureQueriesContext(connection) as queries:
            self.export("--chat", str(self.room.pk))
        # On PostgreSQL, reading in batches (QuerySet.iterator) declares a server-side cursor
        # for a SELECT: still a read.
        reads = [DECLARE_CURSOR.sub("", query["sql"].lstrip()) for query in queries.captured_queries]
        statements = [sql.split()[0].upper() for sql in reads]
        assert statements and set(statements) <= {"SELECT"}, statements

    def test_long_export_reads_in_batches_and_shows_progress(self) -> None:
        """Messages come from an iterator (batches, not one list); a long export draws a
        progress bar on stderr."""
        make_messages(self.room, self.owner, 1200)
        assert not isinstance(messages_of(self.room), list)
        out, err = self.export("--chat", str(self.room.pk), "--format", "json")
        assert "1,202/1,202 messages" in err
        assert "100%" in err
        assert "1,202 messages" in out
        document = json.loads((self.output / f"chat-{self.room.pk}.json").read_text())
        assert len(document["chats"][0]["messages"]) == 1202

    def test_unknown_chat_or_user(self) -> None:
        """An unknown chat or user is an error that says which."""
        with self.assertRaisesMessage(CommandError, "No chat with id 999999"):
            self.export("--chat", "999999")
        with self.assertRaisesMessage(CommandError, "No user named 'nobody'"):
            self.export("--user", "nobody")


class ExportViewTests(TestCase):
    def setUp(self) -> None:
        self.owner = make_user("olga")
        self.member = make_user("max")
        self.outsider = make_user("otto")
        self.room = make_room(self.owner, "Plans", visibility=Chat.Visibility.PRIVATE)
        services.add_member(chat=self.room, by=self.owner, user=self.member)
        services.post_message(chat=self.room, user=self.member, text=MARKUP)
        self.url = f"/chats/{self.room.pk}/export/"

    def test_owner_downloads_html(self) -> None:
        """The owner downloads the archive as an HTML attachment, text escaped."""
        self.client.force_login(self.owner)
        response = self.client.get(self.url)
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/html")
        assert response["Content-Disposition"] == f'attachment; filename="chat-{self.room.pk}.html"'
        page = response.getvalue().decode()
        assert "&lt;script&gt;" in page
        assert "<script" not in page

    def test_owner_downloads_json(self) -> None:
        """?format=json gives the same chat as a JSON attachment."""
        self.client.force_login(self.owner)
        response = self.client.get(self.url, {"format": "json"})
        assert response.status_code == 200
        assert response["Content-Disposition"] == f'attachment; filename="chat-{self.room.pk}.json"'
        document = json.loads(response.getvalue())
        assert [m["text"] for m in document["chats"][0]["messages"]] == [MARKUP]

    def test_member_who_is_not_the_owner_is_refused(self) -> None:
        """A member who does not own the room gets 403."""
        self.client.force_login(self.member)
        assert self.client.get(self.url).status_code == 403

    def test_chat_one_cannot_see_does_not_exist(self) -> None:
        """A chat the user may not see answers 404."""
        self.client.force_login(self.outsider)
        assert self.client.get(self.url).status_code == 404

    def test_anonymous_is_sent_to_sign_in(self) -> None:
        response = self.client.get(self.url)
        assert response.status_code == 302
        assert "/accounts/login/" in response["Location"]
