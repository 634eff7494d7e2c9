"""The chat pages' frames are stored in groups (chat.consumers.GroupCommit, frames.handle_all),
and a burst of new messages reaches each page as one frame (chat.hub): each with the same
order, numbers, idempotency and errors as one frame at a time."""

import asyncio
import json
import uuid
from typing import Any
from unittest import mock

from django.db import DatabaseError, connections
from django.test import SimpleTestCase, TransactionTestCase

from chat import broadcast, consumers, frames, services
from chat.models import Event, Message
from chat.tests.factories import SocketListener, make_room, make_user
from chat.tests.test_broadcast import Recorder


def send(text: str, client_id: uuid.UUID | None = None) -> str:
    return json.dumps({"text": text, "client_id": str(client_id or uuid.uuid4())})


def sent_id(reply: str) -> int | None:
    """The id of the message a composer reply acknowledges, if it does."""
    marker = 'data-sent-id="'
    if marker not in reply:
        return None
    return int(reply.split(marker, 1)[1].split('"', 1)[0])


def acknowledged(reply: str) -> int:
    found = sent_id(reply)
    assert found is not None, reply
    return found


class Commits:
    """Counts the database commits made (the group's outer transaction commits once)."""

    def __init__(self, fail: bool = False) -> None:
        self.count = 0
        self.fail = fail
        self.original = type(connections["default"]).commit

    def __call__(self, wrapper: Any) -> None:
        self.count += 1
        if self.fail:
            raise DatabaseError("the disk is full")
        self.original(wrapper)


class HandleAllTests(TransactionTestCase):
    def setUp(self) -> None:
        self.alice, self.bob = make_user("alice"), make_user("bob")
        self.general = make_room(self.alice, name="First")
        services.join_chat(user=self.bob, chat=self.general)
        self.room = make_room(self.bob, name="Second")
        services.join_chat(user=self.alice, chat=self.room)

    def job(self, user: Any, chat: Any, text_data: str, language: str = "en") -> frames.Job:
        return frames.Job(user=user, chat=chat, text_data=text_data, language=language)

    def test_frames_of_several_sockets_are_stored_in_one_commit_and_each_acknowledged(self):
        jobs = [
            self.job(self.alice, self.general, send("one")),
            self.job(self.bob, self.room, send("two")),
            self.job(self.bob, self.general, send("three")),
            self.job(self.alice, self.room, json.dumps({"action": "read", "up_to": "0"})),
        ]
        listener = SocketListener(self.general)
        commits = Commits()
        with mock.patch.object(type(connections["default"]), "commit", autospec=True, side_effect=commits):
            replies = frames.handle_all(jobs)
        assert commits.count == 1
        stored = {message.pk: message.text for message in Message.objects.all()}
        assert [stored[acknowledged(reply)] for reply in replies[:3]] == ["one", "two", "three"]
        assert replies[3] == ""
        # Each chat's numbers stay gapless, in the order its frames came.
        assert list(Message.objects.filter(chat=self.general).order_by("seq").values_list("text", "seq")) == [
            ("one", 1),
            ("three", 2),
        ]
        events = Event.objects.filter(chat=self.general).order_by("number")
        assert [event.number for event in events] == list(range(1, len(events) + 1))
        # Both new messages of the general chat reach its page, in one frame.
        [pushed] = listener.pending()
        assert pushed.index(">one<") < pushed.index(">three<")
        listener.close()

    def test_a_frame_that_fails_changes_nothing_and_the_others_are_stored(self):
        real = services.post_message

        def post(**kwargs: Any) -> Any:
            if kwargs["text"] == "breaks":
                # After the numbers were taken: the savepoint must give them back.
                real(**{**kwargs, "text": "half-written", "client_id": uuid.uuid4()})
                raise DatabaseError("the index is corrupt")
            return real(**kwargs)

        repeated = uuid.uuid4()
        jobs = [
            self.job(self.alice, self.general, send("before")),
            self.job(self.bob, self.general, send("breaks")),
            self.job(self.alice, self.general, "{not json"),
            self.job(self.alice, self.general, send("after", repeated)),
            self.job(self.alice, self.general, send("after", repeated)),
        ]
        with mock.patch.object(frames.services, "post_message", side_effect=post):
            replies = frames.handle_all(jobs)
        assert sent_id(replies[0]) is not None
        assert "could not be saved" in replies[1]
        assert "not valid JSON" in replies[2]
        # A repeated client id in the same group is one message, acknowledged twice.
        assert sent_id(replies[3]) == sent_id(replies[4]) is not None
        assert list(Message.objects.order_by("seq").values_list("text", "seq")) == [
            ("before", 1),
            ("after", 2),
        ]
        assert self.general.__class__.objects.get(pk=self.general.pk).last_seq == 2

    def test_a_failed_commit_tells_every_sender_and_pushes_nothing(self):
        listener = SocketListener(self.general)
        jobs = [
            self.job(self.alice, self.general, send("lost")),
            self.job(self.bob, self.general, send("also lost"), language="ru"),
        ]
        with mock.patch.object(
            type(connections["default"]), "commit", autospec=True, side_effect=Commits(fail=True)
        ):
            replies = frames.handle_all(jobs)
        assert "Your message could not be saved" in replies[0]
        # Each sender is answered in the language of their page.
        assert "Your message could not be saved" not in replies[1] and sent_id(replies[1]) is None
        assert not Message.objects.exists()
        assert listener.pending() == []
        listener.close()


class GroupCommitTests(SimpleTestCase):
    async def test_frames_that_arrive_together_are_handled_as_one_group(self):
        """Frames queued while the writer is busy go in one group; each caller gets its own reply."""
        groups: list[list[str]] = []

        def handle_all(jobs: list[frames.Job]) -> list[str]:
            groups.append([job.text_data or "" for job in jobs])
            return [f"reply to {job.text_data}" for job in jobs]

        writer = consumers.GroupCommit()
        with mock.patch.object(frames, "handle_all", side_effect=handle_all):
            jobs = [frames.Job(user=None, chat=None, text_data=str(i), language="en") for i in range(5)]  # type: ignore[arg-type]
            replies = await asyncio.gather(*(writer.handle(job) for job in jobs))
            assert replies == [f"reply to {i}" for i in range(5)]
            assert groups == [["0", "1", "2", "3", "4"]]
            # The writer is gone until the next frame, which starts one again.
            assert writer.writer is None
            assert await writer.handle(jobs[0]) == "reply to 0"

    async def test_a_group_that_fails_unforeseen_answers_its_callers_and_the_writer_goes_on(self):
        """A bug in handle_all is logged; each sender is told, in their page's language, that it
        could not be done; the next frame is handled as usual."""
        writer = consumers.GroupCommit()
        english = frames.Job(user=None, chat=None, text_data="x", language="en")  # type: ignore[arg-type]
        russian = frames.Job(user=None, chat=None, text_data="x", language="ru")  # type: ignore[arg-type]
        with (
            mock.patch.object(frames, "handle_all", side_effect=RuntimeError("a bug")),
            self.assertLogs("chat.consumers", "ERROR"),
        ):
            replies = await asyncio.gather(writer.handle(english), writer.handle(russian))
        assert replies[0] == frames.failed_in("en") and "That could not be done" in replies[0]
        assert replies[1] == frames.failed_in("ru") and replies[1] != replies[0]
        with mock.patch.object(frames, "handle_all", return_value=["fine"]):
            assert await writer.handle(english) == "fine"


class CoalescingTests(SimpleTestCase):
    async def test_new_messages_reach_a_page_in_one_frame_and_in_order_with_everything_else(self):
        recorder = Recorder()
        hub = broadcast.Hub(asyncio.get_running_loop(), layer=None)
        outbox = broadcast.Outbox(recorder, on_overflow=lambda: None, chat_id=3)
        await hub.join(outbox)
        hub.deliver(3, "<new 1>", "<carrier>", open_pages_too=False)
        hub.deliver(3, "<new 2>", "<carrier>", open_pages_too=False)
        # Anything else written to the page (an edit here) comes after what was held.
        hub.deliver(3, "<edit 1>")
        hub.deliver(3, "<new 3>", open_pages_too=False)
        # A reply to the socket itself: its consumer writes what is held first.
        hub.flush()
        outbox.push("<reply>")
        while outbox.writer is not None or outbox.queue:
            await asyncio.sleep(0)
        assert recorder.frames == ["<new 1><new 2>", "<edit 1>", "<new 3>", "<reply>"]

    async def test_held_messages_are_written_on_the_loops_next_turn(self):
        recorder = Recorder()
        hub = broadcast.Hub(asyncio.get_running_loop(), layer=None)
        outbox = broadcast.Outbox(recorder, on_overflow=lambda: None, chat_id=3)
        await hub.join(outbox)
        hub.deliver(3, "<new 1>", open_pages_too=False)
        hub.deliver(3, "<new 2>", open_pages_too=False)
        assert recorder.frames == []
        for _ in range(3):
            await asyncio.sleep(0)
        assert recorder.frames == ["<new 1><new 2>"]


class HeldPushesTests(TransactionTestCase):
    def test_a_groups_pushes_reach_the_hub_together_at_the_end(self):
        chat = make_room(make_user("alice"))
        listener = SocketListener(chat)

        def new_message(html: str) -> dict[str, Any]:
            return {"type": broadcast.HTML_EVENT, "chat_id": chat.pk, "html": html, "open_pages_too": False}

        with mock.patch.object(broadcast, "hand_over", wraps=broadcast.hand_over) as handed:
            with broadcast.held_pushes():
                broadcast.publish(broadcast.chat_group(chat.pk), new_message("<one>"))
                broadcast.publish(broadcast.chat_group(chat.pk), new_message("<two>"))
                assert handed.call_count == 0
            handed.assert_called_once()
        assert listener.pending() == ["<one><two>"]
        listener.close()
