import asyncio
from typing import Any
from unittest import mock

from channels.layers import InMemoryChannelLayer
from django.template.loader import render_to_string
from django.test import SimpleTestCase, TestCase

from chat import broadcast, markdown, services
from chat import hub as hub_module
from chat.models import Event
from chat.tests.factories import SocketListener, general, make_user


class Recorder:
    """A socket's send: records frames, and can be made to stall like a client that stops reading."""

    def __init__(self) -> None:
        self.frames: list[str] = []
        self.flowing = asyncio.Event()
        self.flowing.set()

    async def __call__(self, message: dict[str, Any]) -> None:
        await self.flowing.wait()
        self.frames.append(message["text"])


class OutboxTests(SimpleTestCase):
    async def test_slow_socket_is_let_go_without_slowing_others(self):
        """A socket whose sends stall is closed once its buffer is full; the others get every frame."""
        slow, fast = Recorder(), Recorder()
        slow.flowing.clear()
        overflows: list[str] = []
        slow_box = broadcast.Outbox(slow, on_overflow=lambda: overflows.append("slow"), limit=100, chat_id=1)
        fast_box = broadcast.Outbox(fast, on_overflow=lambda: overflows.append("fast"), limit=100, chat_id=1)
        hub = broadcast.Hub(asyncio.get_running_loop(), layer=None)
        await hub.join(slow_box)
        await hub.join(fast_box)
        for i in range(10):
            hub.deliver(1, f"{i:040d}")
            await asyncio.sleep(0)
        assert overflows == ["slow"]
        assert len(fast.frames) == 10
        assert slow_box.queued_bytes == 0 and not slow_box.queue
        slow.flowing.set()
        await asyncio.sleep(0)
        assert len(slow.frames) == 1  # the one frame that was being written when it stalled

    async def test_frames_keep_their_order(self):
        """Frames reach a socket in the order they were pushed."""
        recorder = Recorder()
        outbox = broadcast.Outbox(recorder, on_overflow=lambda: None, limit=10_000)
        for i in range(50):
            outbox.push(str(i))
        while outbox.writer is not None:
            await asyncio.sleep(0)
        assert recorder.frames == [str(i) for i in range(50)]

    async def test_leaving_forgets_the_room(self):
        """The hub drops a chat once its last socket has left."""
        hub = broadcast.Hub(asyncio.get_running_loop(), layer=None)
        outbox = broadcast.Outbox(Recorder(), on_overflow=lambda: None, chat_id=7)
        await hub.join(outbox)
        await hub.leave(outbox)
        assert hub.rooms == {}


class RenderOnceTests(TestCase):
    def test_one_render_and_no_query_per_recipient(self):
        """A message is rendered once (its fragment, and its chat-list carrier) and reaches many
        sockets without a database query per delivery."""
        chat, user = general(), make_user()
        listeners = [SocketListener(chat) for _ in range(20)]
        message, _ = services.post_message(chat=chat, user=user, text="to everyone")
        frame = Event.objects.get(chat=chat, number=message.event).data
        with (
            self.assertNumQueries(0),
            mock.patch.object(broadcast, "render_to_string", wraps=render_to_string) as render,
        ):
            broadcast.message_posted(message, frame)
        assert render.call_count == 2
        for listener in listeners:
            [html] = listener.pending()
            assert f'id="message-{message.pk}"' in html
            listener.close()

    def test_markdown_and_a_mention_cost_one_render_per_version_whatever_the_room(self):
        """The text's HTML is made once when a version is written, never per recipient: the
        same number of Markdown renders and of template renders for 2 sockets as for 40."""
        chat, author, named = general(), make_user("writer"), make_user("named")
        counts = []
        for size in (2, 40):
            listeners = [SocketListener(chat) for _ in range(size)]
            with (
                mock.patch.object(markdown, "render", wraps=markdown.render) as rendered,
                mock.patch.object(broadcast, "render_to_string", wraps=render_to_string) as templated,
                # Innermost: the pushes run after commit, while the counting goes on.
                self.captureOnCommitCallbacks(execute=True),
            ):
                message, _ = services.post_message(
                    chat=chat, user=author, text=f"**look** @{named.username} {size}"
                )
                services.edit_message(message=message, user=author, text=f"_look_ @{named.username} {size}")
            counts.append((rendered.call_count, templated.call_count))
            for listener in listeners:
                pushed = "".join(listener.pending())
                assert f'<span class="mention" data-mention="{named.pk}">@{named.username}</span>' in pushed
                assert "<em>look</em>" in pushed
                listener.close()
        assert counts[0] == counts[1] == (2, 3)


class LingeringSubscriptionTests(SimpleTestCase):
    """A group stays subscribed a while after its last socket leaves: a reload comes back
    without a round trip to the layer, and a group nobody comes back to is let go."""

    def test_a_socket_that_comes_back_finds_its_groups_subscribed(self):
        asyncio.run(self.comes_back())

    async def comes_back(self) -> None:
        layer = InMemoryChannelLayer()
        hub = broadcast.Hub(asyncio.get_running_loop(), layer)
        adds: list[str] = []
        real_add = layer.group_add

        async def counted_add(group: str, channel: str) -> None:
            adds.append(group)
            await real_add(group, channel)

        layer.group_add = counted_add
        group = hub_module.chat_group(7)

        def page() -> broadcast.Outbox:
            async def send(message: dict[str, Any]) -> None:
                pass

            return broadcast.Outbox(send, on_overflow=lambda: None, chat_id=7)

        with mock.patch.object(hub_module, "UNSUBSCRIBE_AFTER", 0.2):
            first = page()
            await hub.join(first)
            await hub.leave(first)
            assert group in layer.groups  # still subscribed
            again = page()
            await hub.join(again)
            assert adds.count(group) == 1  # no second subscription
            await hub.leave(again)
            await asyncio.sleep(0.3)
            await hub.settle()
        assert group not in layer.groups
        assert not hub.unneeded
