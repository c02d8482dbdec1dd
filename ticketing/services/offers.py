"""Making a scheduled space ticketed: its price, currency and cap."""

from django.conf import settings
from django.db import transaction

from accounts.models import User
from accounts.services import audit_record
from rooms import lock_objects as rooms_locks
from rooms.models import Space, SpaceState
from spaces_site.errors import NotAllowed
from ticketing import lock_objects, selectors
from ticketing.eligibility import ensure_may_sell_tickets
from ticketing.errors import InvalidOffer, OfferLocked, SalesClosed
from ticketing.models import CreatorAccount, TicketOffer


def _money(minor: int, currency: str) -> str:
    return f"{minor / 100:.2f} {currency.upper()}"


def _clean(*, price_minor: int, currency: str, cap: int) -> tuple[int, str, int]:
    currency = (currency or "").strip().lower()
    allowed = [c.lower() for c in settings.SPACES_TICKET_CURRENCIES]
    if currency not in allowed:
        raise InvalidOffer(
            f"Tickets are sold in {', '.join(c.upper() for c in allowed)}; not in {currency.upper() or 'no currency'}.",
            code="bad_currency",
        )
    low, high = settings.SPACES_TICKET_PRICE_MIN, settings.SPACES_TICKET_PRICE_MAX
    if not isinstance(price_minor, int) or not low <= price_minor <= high:
        raise InvalidOffer(
            f"A ticket costs from {_money(low, currency)} to {_money(high, currency)} "
            f"(price_minor {low} to {high}); {price_minor} is outside.",
            code="bad_price",
        )
    if not isinstance(cap, int) or not 1 <= cap <= settings.SPACES_TICKET_CAP_MAX:
        raise InvalidOffer(f"The ticket cap is from 1 to {settings.SPACES_TICKET_CAP_MAX} seats.", code="bad_cap")
    return price_minor, currency, cap


def space_ticketing_set(*, actor: User, space_id: int, price_minor: int, currency: str, cap: int) -> TicketOffer:
    """The host of a scheduled space sells tickets to it, or changes the offer.

    Only a host eligible for ticketed hosting (followers, spaces hosted,
    Stripe onboarding), only before the space is live. Once a seat is held or
    sold the price and currency stay, and the cap can't go below the seats taken.
    """
    ensure_may_sell_tickets(actor)
    price_minor, currency, cap = _clean(price_minor=price_minor, currency=currency, cap=cap)
    with transaction.atomic():
        space = rooms_locks.space_for_update(space_id)
        if space.host_id != actor.pk:
            raise NotAllowed("Only the host can sell tickets to this space.", code="not_host")
        if space.state != SpaceState.SCHEDULED:
            raise SalesClosed(
                f"Tickets are sold only for a scheduled space, before it goes live; this one is {space.state}.",
                code="not_scheduled",
            )
        offer = lock_objects.offer_for_update(space.pk)
        if offer is None:
            offer = TicketOffer.objects.create(
                space=space,
                seller=CreatorAccount.objects.get(user=actor),
                price_minor=price_minor,
                currency=currency,
                cap=cap,
            )
            Space.objects.filter(pk=space.pk).update(is_ticketed=True)
            space.is_ticketed = True
            action = "ticketing.offer.created"
        else:
            taken = selectors.seats_taken(space_id=space.pk)
            if taken and (price_minor, currency) != (offer.price_minor, offer.currency):
                raise OfferLocked(
                    f"The price can't change once tickets are held or sold ({taken} so far).", seats_taken=taken
                )
            if cap < taken:
                raise InvalidOffer(
                    f"The cap can't go below the {taken} tickets already held or sold.",
                    code="cap_below_taken",
                    seats_taken=taken,
                )
            offer.price_minor, offer.currency, offer.cap = price_minor, currency, cap
            offer.save(update_fields=["price_minor", "currency", "cap", "updated_at"])
            action = "ticketing.offer.updated"
        audit_record(actor=actor, action=action, subject=space, price_minor=price_minor, currency=currency, cap=cap)
    return offer
