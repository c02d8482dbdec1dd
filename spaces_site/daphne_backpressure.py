"""Daphne stops reading a websocket whose messages the site hasn't read yet.

Daphne (through autobahn) parses every frame a client sends as fast as the
client sends it and queues each for the socket's consumer, without bound; it
has no setting for this. One client sending pings as fast as it could (80,000
frames a second on this machine) kept the event loop parsing, so its own
consumer got to a few messages a second, never reached the flood limit that
closes it, and every other socket's events waited 0.5-0.7 s
(bench/abuse.py).

Here a socket with `UNREAD_HIGH` messages queued is no longer read (Twisted's
`pauseProducing`: the kernel's buffers fill and TCP slows the sender down)
until its consumer has brought the queue down to `UNREAD_LOW`. A well-behaved
client never gets near: a consumer reads its messages as they come. A flood
is read a buffer at a time, so its consumer refuses it, closes it (4429) and
stops; the socket, never read again, is dropped when its closing handshake
times out.
"""

import logging

log = logging.getLogger(__name__)

UNREAD_HIGH = 64
UNREAD_LOW = 16
# How often a paused socket looks at its queue again.
RECHECK_S = 0.005


def install() -> None:
    """Wrap daphne's websocket protocol (once per process)."""
    from daphne.ws_protocol import WebSocketProtocol

    if getattr(WebSocketProtocol, "unread_bound", False):
        return
    queue_message = WebSocketProtocol.onMessage

    def onMessage(self, payload, isBinary):  # autobahn's names
        queue_message(self, payload, isBinary)
        queue = getattr(self, "application_queue", None)
        if queue is not None and queue.qsize() >= UNREAD_HIGH and not getattr(self, "reading_paused", False):
            _pause(self, queue)

    WebSocketProtocol.onMessage = onMessage
    WebSocketProtocol.unread_bound = True


def _pause(protocol, queue) -> None:
    from twisted.internet import reactor

    protocol.reading_paused = True
    protocol.transport.pauseProducing()
    log.debug("websocket %s: %d messages unread, reading paused", protocol.client_addr, queue.qsize())

    def check() -> None:
        if not protocol.transport.connected:
            return  # gone: nothing to resume
        if queue.qsize() > UNREAD_LOW:
            reactor.callLater(RECHECK_S, check)
            return
        protocol.reading_paused = False
        protocol.transport.resumeProducing()

    reactor.callLater(RECHECK_S, check)
