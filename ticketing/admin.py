"""Staff's view of ticketing: creators' Stripe accounts, offers, tickets (the orders), refunds and
Stripe's webhook events. Actions call services, so they follow the same rules and leave the same audit."""

from django.contrib import admin, messages
from django.db import transaction

from spaces_site.errors import ServiceError
from ticketing import services, tasks
from ticketing.models import (
    CreatorAccount,
    Refund,
    RefundState,
    Ticket,
    TicketOffer,
    TicketState,
    WebhookEvent,
    WebhookEventStatus,
)


def _money(minor: int, currency: str) -> str:
    return f"{minor / 100:.2f} {currency.upper()}"


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows here change only through services (and Stripe); staff read them and use the actions."""

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


@admin.register(CreatorAccount)
class CreatorAccountAdmin(ReadOnlyAdmin):
    list_display = ["user", "stripe_account_id", "charges_enabled", "payouts_enabled", "details_submitted", "synced_at"]
    list_filter = ["charges_enabled", "payouts_enabled", "details_submitted"]
    search_fields = ["user__username", "stripe_account_id"]
    list_select_related = ["user"]
    actions = ["refresh_from_stripe"]

    @admin.action(description="Read the selected accounts from Stripe again")
    def refresh_from_stripe(self, request, queryset):
        # Asked by a task, so the admin's request doesn't wait on Stripe (docs/ticketing.md).
        accounts = list(queryset.values_list("stripe_account_id", flat=True))
        for account_id in accounts:
            transaction.on_commit(lambda account_id=account_id: tasks.creator_account_sync_task.delay(account_id))
        self.message_user(
            request, f"Asked Stripe again for {len(accounts)} account(s); they update in a moment.", messages.SUCCESS
        )


@admin.register(TicketOffer)
class TicketOfferAdmin(ReadOnlyAdmin):
    list_display = ["space", "seller", "price", "cap", "created_at"]
    list_filter = ["currency"]
    search_fields = ["space__title", "seller__user__username"]
    list_select_related = ["space", "seller", "seller__user"]

    @admin.display(description="price", ordering="price_minor")
    def price(self, offer):
        return _money(offer.price_minor, offer.currency)


class RefundInline(admin.StackedInline):
    model = Refund
    fields = ["state", "reason", "requested_by", "stripe_refund_id", "attempts", "last_error", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Ticket)
class TicketAdmin(ReadOnlyAdmin):
    """Tickets are the orders: each checkout buys exactly one."""

    list_display = ["pk", "space", "buyer", "state", "amount", "fee", "created_at", "paid_at", "refunded_at"]
    list_filter = ["state", "currency", "release_reason", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["buyer__username", "buyer__email", "space__title", "checkout_session_id", "payment_intent_id"]
    list_select_related = ["space", "buyer"]
    date_hierarchy = "created_at"
    inlines = [RefundInline]
    actions = ["refund"]

    @admin.display(description="amount", ordering="amount_minor")
    def amount(self, ticket):
        return _money(ticket.amount_minor, ticket.currency)

    @admin.display(description="platform fee", ordering="application_fee_minor")
    def fee(self, ticket):
        return _money(ticket.application_fee_minor, ticket.currency)

    @admin.action(description="Refund the selected paid tickets")
    def refund(self, request, queryset):
        refunded = []
        skipped = queryset.exclude(state=TicketState.PAID).count()
        for ticket in queryset.filter(state=TicketState.PAID):
            try:
                services.ticket_refund(actor=request.user, ticket_id=ticket.pk)
            except ServiceError as error:
                self.message_user(request, f"Ticket {ticket.pk}: {error.detail}", messages.ERROR)
            else:
                refunded.append(str(ticket.pk))
        if refunded:
            self.message_user(
                request, f"Refund requested for ticket(s) {', '.join(refunded)}; see Refunds.", messages.SUCCESS
            )
        if skipped:
            self.message_user(request, f"{skipped} selected ticket(s) were not paid; left alone.", messages.WARNING)


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ["ticket", "state", "reason", "amount", "attempts", "stripe_refund_id", "created_at", "finished_at"]
    list_filter = ["state", "reason"]
    search_fields = ["ticket__buyer__username", "ticket__space__title", "stripe_refund_id", "idempotency_key"]
    list_select_related = ["ticket"]
    actions = ["try_again"]

    @admin.display(description="amount", ordering="amount_minor")
    def amount(self, refund):
        return _money(refund.amount_minor, refund.currency)

    @admin.action(description="Try the selected failed refunds again")
    def try_again(self, request, queryset):
        for refund in queryset.filter(state=RefundState.FAILED):
            try:
                services.ticket_refund(actor=request.user, ticket_id=refund.ticket_id, reason=refund.reason)
            except ServiceError as error:
                self.message_user(request, f"{refund}: {error.detail}", messages.ERROR)
            else:
                self.message_user(request, f"{refund}: asked again.", messages.SUCCESS)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ["stripe_event_id", "type", "status", "outcome", "attempts", "deliveries", "received_at"]
    list_filter = ["status", "type", "livemode"]
    search_fields = ["stripe_event_id", "type", "account", "outcome", "error"]
    date_hierarchy = "received_at"
    actions = ["handle_again"]

    @admin.action(description="Handle the selected failed events again")
    def handle_again(self, request, queryset):
        # Handled by their task, which asks Stripe, so the admin's request doesn't wait on it.
        events = list(queryset.filter(status=WebhookEventStatus.FAILED).values_list("pk", flat=True))
        for event_id in events:
            transaction.on_commit(lambda event_id=event_id: tasks.webhook_event_handle_task.delay(event_id))
        self.message_user(
            request, f"{len(events)} failed event(s) handed to the worker again; see their status.", messages.SUCCESS
        )
