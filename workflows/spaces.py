"""A space's life across the apps: what follows when rooms announce that a space went live, ended,
was cancelled or moved (`rooms.signals`).

Rooms own the space and its stage and know nothing of tickets or
notifications; ticketing and scheduling know spaces but not each other. The
workflows that span them are here, in order, each inside the transaction of
the change that set it off:

- live: followers and reminder holders are told (after commit);
- ended: open checkouts close; paid tickets are refunded only if it never went live;
- cancelled (by its host, staff, or the grace period): reminder holders are told
  and every paid ticket is refunded;
- rescheduled: reminder holders are told and the lead reminders move.
"""

import logging

from django.db import transaction
from django.dispatch import receiver

from rooms import signals
from rooms.models import Space
from scheduling import services as scheduling
from ticketing.services import space_tickets_close

log = logging.getLogger(__name__)


def _log_on_commit(message: str, space: Space) -> None:
    """What a person running the site wants to see in the console, once the change is committed."""
    transaction.on_commit(lambda: log.info(message, space.pk, space.title))


@receiver(signals.space_went_live, sender=Space)
def space_went_live(*, space: Space, actor, **_) -> None:
    _log_on_commit("Space %s is live: %r", space)
    scheduling.space_went_live(space=space)


@receiver(signals.space_ended, sender=Space)
def space_ended(*, space: Space, actor, **_) -> None:
    _log_on_commit("Space %s ended: %r", space)
    if space.is_ticketed:
        space_tickets_close(space=space, actor=actor, refund=space.started_at is None)


@receiver(signals.space_cancelled, sender=Space)
def space_cancelled(*, space: Space, actor, **_) -> None:
    _log_on_commit("Space %s cancelled: %r", space)
    scheduling.space_cancelled(space=space)
    if space.is_ticketed:
        # One Celery task per refund, queued after commit.
        space_tickets_close(space=space, actor=actor, refund=True)


@receiver(signals.space_rescheduled, sender=Space)
def space_rescheduled(*, space: Space, actor, **_) -> None:
    scheduling.space_rescheduled(space=space)
