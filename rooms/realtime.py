"""Space events: what services send to a space's websockets, after commit.

Every service that changes a live space calls `emit` inside its transaction;
the event reaches the group `space.<id>` only once the transaction commits, so
no client sees a change that rolled back. `audience` narrows who gets it:
`"all"`, or a dict of `roles` and `users` (user ids) that may see it. The
consumer applies the filter, since only it knows its socket's current role.
"""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from spaces_site.outages import REDIS_ERRORS, OutageLog

ALL = "all"
_outage = OutageLog("channel layer (space events after commit)")


def space_group(space_id: int) -> str:
    return f"space.{space_id}"


def captions_group(space_id: int) -> str:
    """The sockets of a space that turned captions on (`caption.*` events go only there)."""
    return f"space.{space_id}.captions"


def emit(space_id: int, event: dict, *, audience: str | dict = ALL) -> None:
    message = {"type": "space.event", "event": event, "audience": audience}
    transaction.on_commit(lambda: _send_after_commit(space_id, message))


def _send_after_commit(space_id: int, message: dict) -> None:
    """The change is saved whatever happens here: an event lost to a Redis outage is not the
    caller's failure, and every socket gets a fresh snapshot once the layer is back."""
    try:
        send_now(space_id, message)
    except REDIS_ERRORS as error:
        _outage.failed(error)
    else:
        _outage.succeeded()


def send_now(space_id: int, message: dict) -> None:
    """Send to the space's group; the message says which space (its listeners, such as the media worker,
    serve several)."""
    async_to_sync(get_channel_layer().group_send)(space_group(space_id), {**message, "space_id": space_id})


def for_moderators_and(*user_ids: int) -> dict:
    return {"roles": ["host", "cohost"], "users": list(user_ids)}
