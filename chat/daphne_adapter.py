"""The one place that reaches into daphne, and through it into autobahn and Twisted.

Fan-out writes one frame to many sockets. Through daphne's ASGI `send` that costs a task
switch and a framing per recipient, and daphne never makes a send wait, so a client that
stops reading would grow the server's buffer without bound. With the socket's autobahn
protocol in hand, public APIs do better:

- `factory.prepareMessage` frames a payload once, and its frame is written to each
  socket's transport (autobahn's documented way to broadcast, minus the per-call cost of
  its sendData, see send_prepared);
- `registerProducer` (Twisted's producer/consumer flow control) tells when a socket's
  transport buffer is full and when it has drained.

Finding the protocol behind `send` is the one private step: daphne's `send` is
`functools.partial(server.handle_reply, protocol)`, behind Channels' session wrapper. If a
daphne upgrade changes that, `find_protocol` logs an error once and fan-out falls back to
ASGI sends, still bounded (chat.broadcast.Outbox); chat/tests/test_daphne_adapter.py
fails loudly under the pinned daphne.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any, cast

logger = logging.getLogger(__name__)

# What the fast path uses of autobahn's protocol (and, through it, Twisted's transport).
REQUIRED = ("transport", "factory", "sendMessage", "registerProducer", "unregisterProducer", "sendCloseFrame")
_warned = False


def under_daphne() -> bool:
    """Whether this process is a running daphne server."""
    if "daphne.server" not in sys.modules or "twisted.internet.reactor" not in sys.modules:
        return False
    return bool(getattr(sys.modules["twisted.internet.reactor"], "running", False))


def find_protocol(send: Callable[..., Any]) -> Any:
    """daphne's WebSocket protocol behind a socket's ASGI send, or None under another server."""
    while (wrapper := getattr(send, "__self__", None)) is not None and hasattr(wrapper, "real_send"):
        send = wrapper.real_send
    protocol = send.args[0] if isinstance(send, functools.partial) and send.args else None
    if protocol is not None and all(hasattr(protocol, name) for name in REQUIRED):
        return protocol
    if under_daphne():
        warn_once(f"daphne's protocol was not found behind the socket's send ({send!r})")
    return None


def warn_once(problem: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        logger.error(
            "Fan-out falls back to ASGI sends: %s. Check chat/daphne_adapter.py against this daphne.", problem
        )


def prepare(protocol: Any, text: str) -> Any:
    """A text message framed once, to send on every socket of the same server."""
    return protocol.factory.prepareMessage(text.encode(), isBinary=False)


def send_prepared(protocol: Any, prepared: Any) -> None:
    """Write a prepared message's frame to the socket's transport.

    autobahn's own sendPreparedMessage goes through sendData, which formats its debug log
    line (with click and pprint) on every call, logged or not: that was half of a
    delivery's CPU in a 1,000-member room. The frame is the same bytes either way
    (no compression is negotiated by daphne's factory).
    """
    protocol.transport.write(prepared.payloadHybi)


def is_open(protocol: Any) -> bool:
    return bool(protocol.state == protocol.STATE_OPEN)


class FlowControl:
    """A Twisted push producer for one socket: Twisted pauses it when the socket's
    transport buffer is full and resumes it when the buffer has drained."""

    def __init__(self, on_pause: Callable[[], None], on_resume: Callable[[], None]) -> None:
        self.pauseProducing = on_pause
        self.resumeProducing = on_resume

    def stopProducing(self) -> None:
        """The connection is going away; the consumer's disconnect cleans up."""


def watch(protocol: Any, on_pause: Callable[[], None], on_resume: Callable[[], None]) -> bool:
    """Follow the socket's flow control; False (logged once) if Twisted refuses.

    daphne upgrades an HTTP connection to a WebSocket by handing the transport to the
    WebSocket protocol, and leaves the HTTP channel registered as the transport's
    producer; a transport has one producer, so that leftover makes way for this one.
    """
    transport = protocol.transport
    leftover = getattr(transport, "producer", None)
    if leftover is not None and type(leftover).__name__ == "HTTPChannel":
        transport.unregisterProducer()
    try:
        protocol.registerProducer(FlowControl(on_pause, on_resume), True)
    except RuntimeError as error:
        warn_once(f"the socket's transport refused a producer ({error})")
        return False
    return True


def close_for_restart(protocol: Any) -> None:
    """Close with 1012 (service restart), which browsers' htmx retries. autobahn's
    sendClose allows only 1000 and 3000-4999; daphne itself closes with 1011 this way."""
    protocol.sendCloseFrame(code=1012, isReply=False)


# How long a stopping daphne waits for its close frames to reach the clients.
CLOSE_GRACE_SECONDS = 1.0
# Set once daphne has been told to stop: its event loop will soon run no more.
stopping = threading.Event()


def before_shutdown(callback: Callable[[], None]) -> None:
    """Run `callback` when daphne is told to stop (SIGTERM or SIGINT), before it cancels
    every consumer, and give what it writes a moment to reach the network."""
    from twisted.internet import reactor, task

    def run() -> Any:
        stopping.set()
        callback()
        # The reactor drops connections without flushing them once shutdown goes on.
        return task.deferLater(reactor, CLOSE_GRACE_SECONDS, lambda: None)

    cast(Any, reactor).addSystemEventTrigger("before", "shutdown", run)
