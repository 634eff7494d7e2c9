"""The floor: a bare asyncio `websockets` server that broadcasts each frame to its room.

Every text frame a client sends is written to every socket of the same path (the
sender included) with `websockets.broadcast`. No authentication, no persistence, no
rendering: what a Python WebSocket broadcast costs and no more.

    python -m bench.floor --port 8765
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

rooms: dict[str, set[ServerConnection]] = {}


async def handler(connection: ServerConnection) -> None:
    room = connection.request.path if connection.request is not None else "/"
    sockets = rooms.setdefault(room, set())
    sockets.add(connection)
    try:
        async for message in connection:
            if isinstance(message, str):
                broadcast(sockets, message)
    except ConnectionClosed:
        pass  # The load generator ends its sockets without a closing handshake.
    finally:
        sockets.discard(connection)
        if not sockets:
            rooms.pop(room, None)


async def main(host: str, port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(handler, host, port, compression=None):
        await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.host, arguments.port))
