"""When someone's entry to a live space ends without a ban: what let them in is gone.

A removal (`stage.participant_remove`) keeps a person out for good. Here
nothing is held against them: they leave the space at once, and whether they
may come back is the entry rule's to say afresh (`rooms.selectors.entry_decision`),
as for anyone else. The floors above decide when (a refunded ticket:
`workflows.refunds`); rooms only know how someone leaves.
"""

from django.db import transaction
from django.utils import timezone

from accounts.services import audit_record
from rooms import events, lock_objects
from rooms.models import Participant, SpaceState, is_moderator
from rooms.services.stage import to_audience


def entry_end(*, space_id: int, user_id: int, code: str, detail: str) -> Participant | None:
    """Someone's pass to a live space is gone: they leave it now, off the stage and with their hand down.

    After commit their sockets get an `error` event with `code` and `detail`,
    then `participant.removed` (everyone, and the media worker, which drops
    their microphone) closes them with 4403; a socket that closes tells the
    worker to hang up its audio too. The host and co-hosts need no pass and
    stay. Returns the participant who left, or None when nothing changed (the
    space isn't live, they aren't in it, or they moderate it). The system acts.
    """
    with transaction.atomic():
        space = lock_objects.space_for_update(space_id)
        if space.state != SpaceState.LIVE:
            return None
        participant = lock_objects.participants_for_update(space_id, [user_id]).first()
        if participant is None or participant.left_at is not None or is_moderator(participant.role):
            return None
        to_audience(participant)
        participant.left_at = timezone.now()
        participant.save(update_fields=["left_at"])
        audit_record(
            actor=None, action="rooms.participant.entry_ended", subject=space, user=participant.user.username, code=code
        )
        # The reason first, to their sockets only; the removal that follows closes them.
        reason = events.Event({"type": "error", "space_id": space_id, "code": code, "detail": detail}, about=user_id)
        events.emit(reason, events.people(user_id))
        events.emit(events.participant_removed(space_id, participant.user, reason=code), events.PUBLIC)
    return participant
