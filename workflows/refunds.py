"""A refunded or cancelled ticket ends its holder's entry to the space at once.

Ticketing announces that a ticket stopped letting its buyer in
(`ticketing.signals.ticket_pass_ended`, after commit); rooms know how someone
leaves a live space (`rooms.services.entry_end`): off the stage, their sockets
told why and closed, the media worker dropping them. The host and co-hosts need
no ticket and stay; a space not live yet has nobody in it to let go. It is not
a ban: the entry check, which asks for a paid ticket, keeps them out from then on.
"""

from django.dispatch import receiver

from rooms.services import entry_end
from ticketing import signals
from ticketing.models import Ticket


@receiver(signals.ticket_pass_ended, sender=Ticket)
def ticket_pass_ended(*, space_id: int, buyer_id: int, reason: str, **_) -> None:
    entry_end(
        space_id=space_id,
        user_id=buyer_id,
        code=f"ticket_{reason}",
        detail=f"Your ticket was {reason}, so your place in this space has ended.",
    )
