"""Daphne reads no faster than the site handles, and the site writes no faster than the client reads.

Reading: daphne stops reading a websocket whose messages the site hasn't read yet.

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

Writing: daphne's `send` hands each chunk of a response body to Twisted at
once, whatever the client has read, so a streamed file (a replay) sent to a
slow reader piled up in the process's memory, all of it. Here a response
with more body to come registers itself with Twisted as a push producer:
when the socket's buffer is full (Twisted's 64 KB) Twisted pauses it, and
`send` waits until Twisted resumes it. A streamed body then costs the
process a buffer and a chunk per reader. A reader that takes nothing for
`WRITE_STALL_S` is disconnected.
"""

import asyncio
import logging

log = logging.getLogger(__name__)

UNREAD_HIGH = 64
UNREAD_LOW = 16
# How often a paused socket looks at its queue again.
RECHECK_S = 0.005
# A response whose reader takes nothing for this long is dropped.
WRITE_STALL_S = 120
# How often a waiting response looks whether its client is gone.
GONE_CHECK_S = 1.0


def install() -> None:
    """Bound what daphne reads ahead of the site and writes ahead of the client (once per process)."""
    _bound_websocket_reads()
    _bound_response_writes()


def _bound_websocket_reads() -> None:
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


class _Writable:
    """Twisted's push producer for one response: paused while the client's socket is full."""

    def __init__(self, *, paused: bool) -> None:
        self.ready = asyncio.Event()
        if not paused:
            self.ready.set()

    def pauseProducing(self) -> None:  # Twisted's names
        self.ready.clear()

    def resumeProducing(self) -> None:
        self.ready.set()

    def stopProducing(self) -> None:
        self.ready.set()


def _bound_response_writes() -> None:
    from daphne.http_protocol import WebRequest
    from daphne.server import Server

    if getattr(Server, "response_writes_bound", False):
        return
    handle_reply = Server.handle_reply

    async def bounded_handle_reply(self, protocol, message):
        if not isinstance(protocol, WebRequest) or message.get("type") != "http.response.body":
            return await handle_reply(self, protocol, message)
        more = message.get("more_body", False)
        writable = protocol.__dict__.get("site_writable")
        if writable is None and more and protocol.channel is not None and not protocol.finished:
            # Paused already if the socket is full from before (a pipelined response).
            writable = protocol.site_writable = _Writable(paused=protocol.channel._waitingForTransport)
            protocol.registerProducer(writable, True)
        elif writable is not None and not more and protocol.producer is writable and protocol.channel is not None:
            protocol.unregisterProducer()  # before daphne finishes the request, as Twisted asks
        await handle_reply(self, protocol, message)
        if more and writable is not None:
            await _until_writable(protocol, writable)

    Server.handle_reply = bounded_handle_reply
    Server.response_writes_bound = True


async def _until_writable(protocol, writable: _Writable) -> None:
    waited = 0.0
    while not writable.ready.is_set():
        if protocol.channel is None or protocol.finished:
            return  # the client is gone: daphne tells the application so
        if waited >= WRITE_STALL_S:
            log.info("response to %s: nothing read for %d s, disconnected", protocol.client_addr, WRITE_STALL_S)
            protocol.channel.transport.abortConnection()
            return
        try:
            await asyncio.wait_for(writable.ready.wait(), GONE_CHECK_S)
        except TimeoutError:
            waited += GONE_CHECK_S
