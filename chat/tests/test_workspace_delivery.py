"""The workspace across two daphne processes sharing Redis and PostgreSQL: chat lists,
typing and presence follow a person wherever their sockets are."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from typing import Any

import pytest
import websockets

from chat.tests import test_delivery
from chat.tests.conftest import Processes
from chat.tests.test_delivery import Cluster

pytestmark = pytest.mark.delivery

# The delivery tests' fixture: two daphne processes' worth of PostgreSQL and Redis.
cluster = test_delivery.cluster

CARRIER = re.compile(r'<div id="sidebar-update"[^>]*data-action="(\w+)" data-chat-id="(\d+)"')


async def connect(deployment: Cluster, server: int, name: str, chat_id: int | None) -> Any:
    port = deployment.ports[server]
    path = f"/ws/chats/{chat_id}/" if chat_id is not None else "/ws/chats/"
    return await websockets.connect(
        f"ws://127.0.0.1:{port}{path}",
        additional_headers={
            "Cookie": f"sessionid={deployment.people[name]['session']}",
            "Origin": f"http://127.0.0.1:{port}",
        },
        open_timeout=10,
    )


async def next_matching(socket: Any, pattern: str, *, within: float = 10) -> str:
    async with asyncio.timeout(within):
        while True:
            frame = str(await socket.recv())
            if re.search(pattern, frame):
                return frame


def api(deployment: Cluster, server: int, name: str, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{deployment.ports[server]}{path}",
        data=json.dumps(body).encode(),
        headers={
            "Authorization": f"Token {deployment.people[name]['token']}",
            "Content-Type": "application/json",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


ONLINE = """
import sys
from chat import broadcast
print(sorted(broadcast.online(int(sys.argv[-2]), [int(i) for i in sys.argv[-1].split(",")])))
"""


def online(deployment: Cluster, chat_id: int, user_ids: list[int]) -> str:
    return Processes.python(deployment.env, ONLINE, str(chat_id), ",".join(map(str, user_ids))).strip()


def test_chat_lists_typing_and_presence_cross_processes(cluster):
    """Ann on one process, Ben on the other: Ben's chat list hears Ann's message in General;
    a room Ann creates appears in her chat list on the other process and carries its
    messages there; Ann's typing reaches Ben; Ann's presence is seen from anywhere."""
    a, b = cluster.start(), cluster.start()
    cluster.add_people("ann", "ben")
    general = cluster.chat_id
    ids = {
        name: json.loads(
            urllib.request.urlopen(
                urllib.request.Request(
                    f"http://127.0.0.1:{cluster.ports[a]}/api/users/me/",
                    headers={"Authorization": f"Token {cluster.people[name]['token']}"},
                ),
                timeout=10,
            ).read()
        )["id"]
        for name in ("ann", "ben")
    }

    async def scenario() -> None:
        ann_page = await connect(cluster, a, "ann", general)
        ann_list_elsewhere = await connect(cluster, b, "ann", None)
        ben_list = await connect(cluster, b, "ben", None)
        ben_page = await connect(cluster, b, "ben", general)
        assert online(cluster, general, [ids["ann"], ids["ben"]]) == str(sorted(ids.values()))

        await ann_page.send(json.dumps({"text": "lunch?"}))
        frame = await next_matching(ben_list, "sidebar-update")
        assert CARRIER.search(frame).groups() == ("message", str(general))  # type: ignore[union-attr]
        assert "ann: lunch?" in frame

        room = await asyncio.to_thread(
            api, cluster, a, "ann", "/api/chats/", {"name": "Planning", "visibility": "private"}
        )
        added = await next_matching(ann_list_elsewhere, f'data-action="add" data-chat-id="{room["id"]}"')
        assert "Planning" in added
        await asyncio.to_thread(
            api, cluster, a, "ann", f"/api/chats/{room['id']}/messages/", {"text": "agenda"}
        )
        moved = await next_matching(ann_list_elsewhere, f'data-action="message" data-chat-id="{room["id"]}"')
        assert "ann: agenda" in moved

        await ann_page.send(json.dumps({"action": "typing"}))
        typing = await next_matching(ben_page, "typing-signal")
        assert 'data-username="ann"' in typing

        await ann_page.close()
        await asyncio.sleep(0.5)
        assert online(cluster, general, [ids["ann"], ids["ben"]]) == str([ids["ben"]])
        for socket in (ann_list_elsewhere, ben_list, ben_page):
            await socket.close()

    asyncio.run(scenario())


SIGN_OUT_EVERYWHERE = """
import sys
from django.contrib.auth.models import User
from chat import services
services.sign_out_everywhere(user=User.objects.get(username=sys.argv[-1]))
"""


def test_signing_out_everywhere_closes_sockets_on_every_process(cluster):
    """Ann signs out everywhere (here from a third process): her sockets on both daphne
    processes close with 1012 within seconds, and her old session can't reconnect."""
    a, b = cluster.start(), cluster.start()
    cluster.add_people("ann", "ben")

    async def scenario() -> None:
        sockets = [await connect(cluster, a, "ann", cluster.chat_id), await connect(cluster, b, "ann", None)]
        ben = await connect(cluster, b, "ben", cluster.chat_id)
        await asyncio.to_thread(Processes.python, cluster.env, SIGN_OUT_EVERYWHERE, "ann")
        for socket in sockets:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                async with asyncio.timeout(5):
                    while True:
                        await socket.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
        again = await connect(cluster, a, "ann", cluster.chat_id)
        with pytest.raises(websockets.ConnectionClosed) as refused:
            async with asyncio.timeout(5):
                await again.recv()
        assert refused.value.rcvd is not None and refused.value.rcvd.code == 4003
        # Ben's socket is untouched.
        await ben.send(json.dumps({"text": "still here"}))
        assert "still here" in await next_matching(ben, "still here")
        await ben.close()

    asyncio.run(scenario())
