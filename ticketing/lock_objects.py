"""Row locks for ticketing, always taken in one order: the space (rooms), then its
offer, then the seller's account, then tickets and refunds in `pk` order. A
ticket offer's row is where seat counting is serialised: whoever holds its
lock counts paid and held tickets and may add one."""

from django.db.models import QuerySet

from ticketing.models import CreatorAccount, Refund, Ticket, TicketOffer


def offer_for_update(space_id: int) -> TicketOffer | None:
    return (
        TicketOffer.objects.select_for_update(of=("self",))
        .select_related("space", "space__host", "seller")
        .filter(space_id=space_id)
        .first()
    )


def creator_account_for_update(pk: int) -> CreatorAccount:
    return CreatorAccount.objects.select_for_update().get(pk=pk)


def tickets_for_update(**filters) -> QuerySet[Ticket]:
    return Ticket.objects.filter(**filters).order_by("pk").select_for_update(of=("self",))


def ticket_for_update(pk: int) -> Ticket | None:
    return tickets_for_update(pk=pk).select_related("space", "buyer").first()


def refund_for_update(pk: int) -> Refund | None:
    return Refund.objects.select_for_update(of=("self",)).select_related("ticket").filter(pk=pk).first()
