"""Ticketing: creators' Stripe accounts, ticket offers, tickets, refunds and Stripe's webhook events.

Money is an integer of minor units (cents) beside a three-letter currency code.
A ticket moves `held → paid → refunded` or `held → released`; the services in
`ticketing.services` make every move, under row locks and from allowed states
only. The database keeps one live (held or paid) ticket per buyer per space.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone


class CreatorAccount(models.Model):
    """A creator's Stripe Connect Express account: where the money for their tickets goes.

    The flags mirror Stripe's account; `account.updated` webhooks and the
    onboarding return page refresh them from Stripe.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="creator_account")
    stripe_account_id = models.CharField(max_length=64, unique=True)
    charges_enabled = models.BooleanField(default=False)
    payouts_enabled = models.BooleanField(default=False)
    details_submitted = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    synced_at = models.DateTimeField(null=True, blank=True, help_text="When the flags were last read from Stripe.")

    def __str__(self) -> str:
        return f"{self.stripe_account_id} (@{self.user})"


class TicketOffer(models.Model):
    """What a ticketed space sells: one price, in one currency, up to `cap` seats, until it goes live.

    `seller` is the creator who set the space up for sale: their Connect
    account receives the money even if hosting is later handed over.
    """

    space = models.OneToOneField("rooms.Space", on_delete=models.PROTECT, related_name="ticket_offer")
    seller = models.ForeignKey(CreatorAccount, on_delete=models.PROTECT, related_name="offers")
    price_minor = models.PositiveIntegerField(help_text="Minor units: 500 is 5.00.")
    currency = models.CharField(max_length=3)
    cap = models.PositiveIntegerField(help_text="Seats for sale.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(price_minor__gt=0), name="offer_price_positive"),
            models.CheckConstraint(condition=Q(cap__gt=0), name="offer_cap_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.cap} x {self.price_minor / 100:.2f} {self.currency.upper()} for space {self.space_id}"


class TicketState(models.TextChoices):
    HELD = "held"
    PAID = "paid"
    RELEASED = "released"
    REFUNDED = "refunded"


# A seat is taken by a ticket in one of these states.
SEAT_TAKING_STATES = (TicketState.HELD, TicketState.PAID)


class Ticket(models.Model):
    """One buyer's seat in one ticketed space, and the one Checkout Session that pays for it.

    Each attempt to buy is its own row: a released ticket stays as a record and
    a new attempt makes a new one. A held seat counts against the cap until it
    is released, which happens only once Stripe says its session can no longer
    be paid (so a late payment can never overfill the space).
    """

    space = models.ForeignKey("rooms.Space", on_delete=models.PROTECT, related_name="tickets")
    buyer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="tickets")
    state = models.CharField(max_length=10, choices=TicketState.choices, default=TicketState.HELD, db_index=True)
    amount_minor = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    application_fee_minor = models.PositiveIntegerField(help_text="The platform's fee, by the tiered rule.")
    checkout_session_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    checkout_url = models.URLField(max_length=2000, blank=True)
    checkout_expires_at = models.DateTimeField(null=True, blank=True)
    payment_intent_id = models.CharField(max_length=255, blank=True, db_index=True)
    held_until = models.DateTimeField(
        null=True, blank=True, help_text="After this the sweep asks Stripe whether the session can still be paid."
    )
    release_reason = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["space", "buyer"],
                condition=Q(state__in=["held", "paid"]),
                name="one_live_ticket_per_buyer_and_space",
            ),
            models.CheckConstraint(
                condition=~Q(state="held") | Q(held_until__isnull=False), name="held_ticket_has_deadline"
            ),
            models.CheckConstraint(condition=~Q(state="paid") | Q(paid_at__isnull=False), name="paid_ticket_has_time"),
            models.CheckConstraint(
                condition=Q(application_fee_minor__lte=F("amount_minor")), name="ticket_fee_within_amount"
            ),
        ]
        indexes = [models.Index(fields=["space", "state"]), models.Index(fields=["state", "held_until"])]

    def __str__(self) -> str:
        return f"Ticket {self.pk} ({self.state}) for space {self.space_id}"

    @property
    def amount(self) -> str:
        return f"{self.amount_minor / 100:.2f} {self.currency.upper()}"

    @property
    def checkout_idempotency_key(self) -> str:
        """One key per attempt (each attempt is a ticket row); the timestamp keeps keys apart across databases."""
        return f"checkout-{self.pk}-{int(self.created_at.timestamp())}"


class RefundState(models.TextChoices):
    REQUESTED = "requested"  # asked of Stripe, or waiting to be retried
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # gave up after the retries; staff can try again from the admin
    SKIPPED = "skipped"  # the charge was refunded already (e.g. in Stripe's dashboard)


class Refund(models.Model):
    """The one refund of a ticket's payment. `idempotency_key` makes every retry the same request to Stripe."""

    ticket = models.OneToOneField(Ticket, on_delete=models.PROTECT, related_name="refund")
    idempotency_key = models.CharField(max_length=100, unique=True)
    state = models.CharField(max_length=10, choices=RefundState.choices, default=RefundState.REQUESTED, db_index=True)
    reason = models.CharField(max_length=40)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    amount_minor = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    stripe_refund_id = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Refund of ticket {self.ticket_id} ({self.state})"


class WebhookEventStatus(models.TextChoices):
    RECEIVED = "received"
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookEvent(models.Model):
    """A Stripe event, stored by its id when its signature checks out, and handled once."""

    stripe_event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100, db_index=True)
    account = models.CharField(max_length=64, blank=True, help_text="The connected account, for Connect events.")
    livemode = models.BooleanField(default=False)
    status = models.CharField(
        max_length=10, choices=WebhookEventStatus.choices, default=WebhookEventStatus.RECEIVED, db_index=True
    )
    outcome = models.CharField(max_length=200, blank=True, help_text="What handling the event did.")
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    deliveries = models.PositiveIntegerField(default=1, help_text="How many times Stripe sent it.")
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(
        null=True,
        blank=True,
        db_index=True,
        help_text="Started: when its handler counts as dead. Failed: when the task tries again. Else empty.",
    )

    class Meta:
        ordering = ["-received_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_event_id}"
