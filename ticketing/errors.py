"""Ticketing's typed errors; the API answers each with its status and `{"code", "detail"}`."""

from spaces_site.errors import Conflict, InvalidRequest, NotAllowed, NotFound, ServiceError


class InvalidOffer(InvalidRequest):
    code = "invalid_offer"


class NotTicketed(NotFound):
    code = "not_ticketed"


class TicketNotFound(NotFound):
    code = "ticket_not_found"


class SoldOut(Conflict):
    code = "sold_out"


class SalesClosed(Conflict):
    code = "sales_closed"


class OfferLocked(Conflict):
    """Price and currency can't change once someone holds or bought a ticket."""

    code = "offer_locked"


class TicketWrongState(Conflict):
    code = "wrong_state"


class BuyNotAllowed(NotAllowed):
    code = "buy_not_allowed"


class CreatorAccountMissing(Conflict):
    code = "no_creator_account"


class PaymentsUnavailable(ServiceError):
    """Stripe is not configured, or did not answer: nothing was charged, try again later."""

    status = 503
    code = "payments_unavailable"
