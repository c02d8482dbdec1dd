"""Recording's switch: whether the media worker records the space's mix.

The recording itself (the file, its replay, clips) belongs to media
(`media.recording`); rooms holds the rule: the host or a co-host turns it on
or off, everyone sees it (`space.recording_enabled` in the snapshot and in a
`space.updated` event), and every change is audited.
"""

from django.db import transaction

from accounts.models import User
from accounts.services import audit_record
from rooms import lock_objects, permissions, realtime
from rooms.errors import WrongState
from rooms.models import Space, SpaceState
from rooms.payloads import space_payload
from rooms.services.captions import moderator_role


def recording_set(*, actor: User, space_id: int, on: bool) -> Space:
    """The host or a co-host starts or stops recording; the worker follows the `space.updated` event."""
    with transaction.atomic():
        space = lock_objects.space_for_update(space_id)
        permissions.check("recording.set", moderator_role(space, actor))
        if space.state not in (SpaceState.SCHEDULED, SpaceState.LIVE):
            raise WrongState(f"This space has {space.state}; its recording can't change.")
        if space.recording_enabled == on:
            return space
        space.recording_enabled = on
        space.save(update_fields=["recording_enabled"])
        audit_record(actor=actor, action="rooms.recording." + ("on" if on else "off"), subject=space)
        realtime.emit(space.pk, {"type": "space.updated", "space": space_payload(space)})
    return space
