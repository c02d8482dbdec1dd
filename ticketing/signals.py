"""What happens to tickets, announced for the floor above to react to (`workflows.refunds`).

Sent after the change commits, so a reaction never sees (or undoes) a
ticket change that rolled back, and a reaction that fails leaves the ticket
as it is. Ticketing knows nothing of who is in a space; the reaction does.
"""

from django.dispatch import Signal

# A ticket stopped letting its buyer in (paid → refunded). Passes `ticket_id`, `space_id`,
# `buyer_id` and `reason` (the ticket's new state, "refunded").
ticket_pass_ended = Signal()
