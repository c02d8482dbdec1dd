"""A space's switches (captions, recording): who may turn them, and what turning one does."""

from django.db import transaction

from accounts.models import User
from accounts.services import audit_record
from rooms import events, lock_objects, permissions
from rooms.errors import WrongState
from rooms.models import Participant, Role, Space, SpaceState

# How a refusal names each switch.
DESCRIPTIONS = {"captions_enabled": "captions", "recording_enabled": "recording"}


def moderator_role(space: Space, actor: User) -> Role | None:
    """The actor's role in the space as the permission table reads it (the host is always the host)."""
    if space.host_id == actor.pk:
        return Role.HOST
    return (
        Participant.objects.filter(space=space, user=actor, left_at__isnull=True).values_list("role", flat=True).first()
    )


def space_switch(*, actor: User, space_id: int, field: str, on: bool, permission: str, audit: str) -> Space:
    """A moderator turns one of the space's switches (captions, recording) on or off: checked against the
    permission table, audited, and announced to the room as `space.updated` (the media worker follows it)."""
    with transaction.atomic():
        space = lock_objects.space_for_update(space_id)
        permissions.check(permission, moderator_role(space, actor))
        if space.state not in (SpaceState.SCHEDULED, SpaceState.LIVE):
            raise WrongState(f"This space has {space.state}; its {DESCRIPTIONS[field]} can't change.")
        if getattr(space, field) == on:
            return space
        setattr(space, field, on)
        space.save(update_fields=[field])
        audit_record(actor=actor, action=f"{audit}." + ("on" if on else "off"), subject=space)
        events.emit(events.space_updated(space), events.PUBLIC)
    return space
