"""Space events: every event a space's websockets receive is built here, with who receives it.

The action that causes an event decides its audience where it happens (as
Zulip's `send_event_on_commit(realm, event, user_ids)` does), and the channel
layer delivers it only there: a raised hand reaches the moderators and the one
who raised it, never the thousand listeners. An audience is a set of the
space's groups:

    space.<id>              every socket of the space
    space.<id>.moderators   the sockets of the host and co-hosts
    space.<id>.user.<uid>   one person's sockets in this space
    space.<id>.captions     the sockets that turned captions on
    space.<id>.media        the media worker serving the space

Each event carries its space id. On the channel layer it travels encoded once
(`text`) beside the few fields a receiver acts on: the space, the person it is
about (`user_id`; the media worker follows people by id, never by name) and an
id, so a socket in two of the addressed groups sends it once. `emit` sends
after the transaction commits, so no client sees a change that rolled back;
`send_now` is for what is not stored (reactions, counts, speaking).
The shapes are in `SCHEMAS` (docs/websocket.md); tests hold every event to them.
"""

import itertools
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from rooms.models import Participant, Space
from rooms.payloads import participant_payload, space_payload, user_payload
from spaces_site.outages import REDIS_ERRORS, OutageLog

MESSAGE_TYPE = "space.event"
_outage = OutageLog("channel layer (space events after commit)")
_ids = itertools.count()


# Groups


def space_group(space_id: int) -> str:
    return f"space.{space_id}"


def moderators_group(space_id: int) -> str:
    return f"space.{space_id}.moderators"


def person_group(space_id: int, user_id: int) -> str:
    return f"space.{space_id}.user.{user_id}"


def captions_group(space_id: int) -> str:
    return f"space.{space_id}.captions"


def media_group(space_id: int) -> str:
    return f"space.{space_id}.media"


# Audiences


@dataclass(frozen=True)
class Audience:
    everyone: bool = False
    moderators: bool = False
    users: frozenset[int] = field(default_factory=frozenset)
    captions: bool = False
    media: bool = False

    def __or__(self, other: "Audience") -> "Audience":
        return Audience(
            everyone=self.everyone or other.everyone,
            moderators=self.moderators or other.moderators,
            users=self.users | other.users,
            captions=self.captions or other.captions,
            media=self.media or other.media,
        )

    def groups(self, space_id: int) -> list[str]:
        if self.everyone:
            groups = [space_group(space_id)]  # the moderators' and the people's sockets are in it too
        else:
            groups = [moderators_group(space_id)] if self.moderators else []
            groups += [person_group(space_id, user_id) for user_id in sorted(self.users)]
        if self.captions and not self.everyone:
            groups.append(captions_group(space_id))
        if self.media:
            groups.append(media_group(space_id))
        return groups


EVERYONE = Audience(everyone=True)
# Everyone, and the media worker: what changes the stage, a microphone or the space's switches.
PUBLIC = Audience(everyone=True, media=True)
MODERATORS = Audience(moderators=True)
MEDIA = Audience(media=True)
CAPTIONS = Audience(captions=True)


def people(*user_ids: int) -> Audience:
    return Audience(users=frozenset(user_ids))


def moderators_and(*user_ids: int) -> Audience:
    return MODERATORS | people(*user_ids)


# The events


@dataclass(frozen=True)
class Event:
    """What the clients receive (`data`), and the person it is about, if any."""

    data: dict
    about: int | None = None

    @property
    def kind(self) -> str:
        return self.data["type"]

    @property
    def space_id(self) -> int:
        return self.data["space_id"]


def space_updated(space: Space) -> Event:
    return _event("space.updated", space.pk, space=space_payload(space))


def space_ended(space: Space, reason: str) -> Event:
    return _event("space.ended", space.pk, space=space_payload(space), reason=reason)


def participant_updated(participant: Participant, *, present: bool = True) -> Event:
    payload = participant_payload(participant, present=present)
    return _event("participant.updated", participant.space_id, about=participant.user_id, participant=payload)


def participant_removed(space_id: int, user, *, reason: str = "removed") -> Event:
    """Someone is out of the space: "removed" by a moderator, or another `reason` their entry ended
    for (their own sockets were told it first, as an `error` of that code)."""
    return _event("participant.removed", space_id, about=user.pk, user=user_payload(user), reason=reason)


def reaction(space_id: int, user, emoji: str) -> Event:
    return _event("reaction", space_id, user=user_payload(user), emoji=emoji)


def listeners_count(space_id: int, count: int) -> Event:
    return _event("listeners.count", space_id, count=count)


def speaking(space_id: int, user_id: int, username: str, on: bool) -> Event:
    return _event("speaking", space_id, about=user_id, user={"username": username}, speaking=on)


def media_reset(space_id: int) -> Event:
    return _event("media.reset", space_id, space={"id": space_id})


def caption(space_id: int, *, final: bool, line: str, speaker: dict, text: str, start_ms: int, end_ms: int) -> Event:
    return _event(
        "caption.final" if final else "caption.partial",
        space_id,
        line=line,
        speaker=speaker,
        text=text,
        start_ms=start_ms,
        end_ms=end_ms,
    )


def captions_status(space_id: int, behind: bool) -> Event:
    return _event("captions.status", space_id, behind=behind)


def _event(kind: str, space_id: int, *, about: int | None = None, **payload) -> Event:
    return Event({"type": kind, "space_id": space_id, **payload}, about=about)


# Sending


def emit(event: Event, audience: Audience) -> None:
    """Send once the current transaction commits (at once outside one)."""
    message, groups = envelope(event), audience.groups(event.space_id)
    transaction.on_commit(lambda: _send_after_commit(groups, message))


def send_now(event: Event, audience: Audience) -> None:
    """Send at once, from sync code (nothing stored waits on it)."""
    async_to_sync(asend)(event, audience)


async def asend(event: Event, audience: Audience, *, layer=None) -> None:
    await _group_send(layer or get_channel_layer(), audience.groups(event.space_id), envelope(event))


def envelope(event: Event) -> dict:
    """The channel-layer message of an event: encoded once, whatever the number of sockets."""
    return {
        "type": MESSAGE_TYPE,
        "id": f"{os.getpid()}.{next(_ids)}",
        "space_id": event.space_id,
        "user_id": event.about,
        "kind": event.kind,
        "text": json.dumps(event.data, ensure_ascii=False, separators=(",", ":")),
    }


def event_of(message: dict) -> dict:
    return json.loads(message["text"])


def _send_after_commit(groups: list[str], message: dict) -> None:
    """The change is saved whatever happens here: an event lost to a Redis outage is not the
    caller's failure, and every socket gets a fresh snapshot once the layer is back."""
    try:
        async_to_sync(_group_send)(get_channel_layer(), groups, message)
    except REDIS_ERRORS as error:
        _outage.failed(error)
    else:
        _outage.succeeded()


async def _group_send(layer, groups: Iterable[str], message: dict) -> None:
    for group in groups:
        await layer.group_send(group, message)


def socket_groups(space_id: int, user_id: int | None) -> list[str]:
    """Every group a socket of this space may have joined (to leave them all when it is gone)."""
    groups = [space_group(space_id), moderators_group(space_id), captions_group(space_id)]
    if user_id is not None:
        groups.append(person_group(space_id, user_id))
    return groups


# The shapes, one JSON schema each (docs/websocket.md)

_USER = {
    "type": "object",
    "required": ["username"],
    "properties": {"username": {"type": "string"}, "name": {"type": "string"}, "avatar_url": {"type": "string"}},
}
_SPACE = {"type": "object", "required": ["id", "state", "title", "host"], "properties": {"id": {"type": "integer"}}}
_PARTICIPANT = {
    "type": "object",
    "required": ["user", "role", "muted", "hand_raised", "invited", "present"],
    "properties": {
        "user": _USER,
        "role": {"enum": ["host", "cohost", "speaker", "listener"]},
        "muted": {"type": "boolean"},
        "hand_raised": {"type": "boolean"},
        "invited": {"type": "boolean"},
        "present": {"type": "boolean"},
    },
}


def _schema(kind: str, **properties) -> dict:
    return {
        "type": "object",
        "required": ["type", "space_id", *properties],
        "additionalProperties": False,
        "properties": {"type": {"const": kind}, "space_id": {"type": "integer"}, **properties},
    }


_CAPTION = {
    "line": {"type": "string"},
    "speaker": {"type": "object", "required": ["username", "name"]},
    "text": {"type": "string"},
    "start_ms": {"type": "integer"},
    "end_ms": {"type": "integer"},
}
SCHEMAS = {
    "space.updated": _schema("space.updated", space=_SPACE),
    "space.ended": _schema("space.ended", space=_SPACE, reason={"type": "string"}),
    "participant.updated": _schema("participant.updated", participant=_PARTICIPANT),
    "participant.removed": _schema("participant.removed", user=_USER, reason={"type": "string"}),
    "reaction": _schema("reaction", user=_USER, emoji={"type": "string"}),
    "listeners.count": _schema("listeners.count", count={"type": "integer", "minimum": 0}),
    "speaking": _schema("speaking", user=_USER, speaking={"type": "boolean"}),
    "media.reset": _schema("media.reset", space={"type": "object", "required": ["id"]}),
    "caption.partial": _schema("caption.partial", **_CAPTION),
    "caption.final": _schema("caption.final", **_CAPTION),
    "captions.status": _schema("captions.status", behind={"type": "boolean"}),
}
