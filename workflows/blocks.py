"""What a block means in a live space: the blocker's spaces lose the blocked person at once.

Accounts own blocks and know nothing of spaces; they announce a new one
(`accounts.signals.user_blocked`, inside the block's transaction). Here, in that
same transaction, the blocked person is removed from every live space the
blocker hosts or co-hosts and is in, by `rooms.services.participant_remove`, as
if the blocker had removed them there: their seat and microphone go, a
`SpaceBlock` keeps them out, the audit row says "blocked", and after commit
their sockets get `removed` and close.

The permission table, read under the space's lock, has the last word: a co-host
can't remove the host or another co-host, so there the block stands between the
two people but moves nobody. A space that ended, or a person who left, in the
meantime leaves nothing to remove. None of these refusals undoes the block.
"""

from django.dispatch import receiver

from accounts import signals
from accounts.models import User
from rooms.errors import ActionNotAllowed, ParticipantNotFound, WrongState
from rooms.models import MODERATOR_ROLES, Participant, SpaceState
from rooms.services import participant_remove


@receiver(signals.user_blocked, sender=User)
def user_blocked(*, blocker: User, blocked: User, **_) -> None:
    for space_id in _live_spaces_moderated_with(moderator=blocker, user=blocked):
        try:
            participant_remove(actor=blocker, space_id=space_id, target=blocked, reason="blocked")
        except (ActionNotAllowed, ParticipantNotFound, WrongState):
            continue  # rolled back to its savepoint; the block and the other spaces go on


def _live_spaces_moderated_with(*, moderator: User, user: User) -> list[int]:
    """Ids of the live spaces `moderator` hosts or co-hosts and `user` is in, in id order (the lock order)."""
    moderated = Participant.objects.filter(
        user=moderator, role__in=MODERATOR_ROLES, left_at__isnull=True, space__state=SpaceState.LIVE
    ).values("space_id")
    return list(
        Participant.objects.filter(user=user, left_at__isnull=True, space_id__in=moderated)
        .order_by("space_id")
        .values_list("space_id", flat=True)
    )
