"""Recording's switch: whether the media worker records the space's mix.

The recording itself (the file, its replay, clips) belongs to media
(`media.recording`); rooms holds the rule: the host or a co-host turns it on
or off, everyone sees it (`space.recording_enabled` in the snapshot and in a
`space.updated` event), and every change is audited.
"""

from accounts.models import User
from rooms.models import Space
from rooms.services.switches import space_switch


def recording_set(*, actor: User, space_id: int, on: bool) -> Space:
    """The host or a co-host starts or stops recording; the worker follows the `space.updated` event."""
    return space_switch(
        actor=actor,
        space_id=space_id,
        field="recording_enabled",
        on=on,
        permission="recording.set",
        audit="rooms.recording",
    )
