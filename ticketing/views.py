"""Pages for ticketing (buy, success, my tickets, selling and onboarding) and Stripe's webhook endpoint."""

import contextlib

import stripe
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from rooms import selectors as rooms_selectors
from rooms.errors import SpaceNotFound
from spaces_site.errors import ServiceError
from spaces_site.outside import OutsideCall
from ticketing import selectors, services
from ticketing.api import checkout_urls, onboarding_urls
from ticketing.eligibility import ticketed_hosting_eligibility
from ticketing.forms import OfferForm
from ticketing.models import TicketState


@login_required
@require_POST
def ticket_buy(request: HttpRequest, space_id: int) -> HttpResponse:
    """The space page's Buy button: off to Stripe Checkout (or back, told why not).

    The seat is held here; Stripe is asked for the checkout while the request
    waits holding nothing (`spaces_site.outside`)."""
    try:
        space = rooms_selectors.space_get(space_id=space_id)
        begun = services.checkout_begin(buyer=request.user, space_id=space.pk, **checkout_urls(request, space.pk))
    except SpaceNotFound as error:
        raise Http404(error.detail) from error
    except ServiceError as error:
        messages.error(request, error.detail)
        return redirect("space", space_id=space_id)
    if isinstance(begun, services.CheckoutStart):
        return _checkout_answer(request, begun)

    def then(session) -> HttpResponse:
        try:
            start = services.checkout_finish(hold=begun, session=session)
        except ServiceError as error:
            messages.error(request, error.detail)
            return redirect("space", space_id=space_id)
        return _checkout_answer(request, start)

    return OutsideCall(wait=lambda: services.checkout_session_open(begun), then=then)


def _checkout_answer(request: HttpRequest, start: services.CheckoutStart) -> HttpResponse:
    if start.checkout_url:
        return HttpResponseRedirect(start.checkout_url, status=303)
    messages.success(request, "You have a ticket to this space.")
    return redirect("space", space_id=start.ticket.space_id)


@login_required
@require_POST
def offer_set(request: HttpRequest, space_id: int) -> HttpResponse:
    """The host's "sell tickets" form."""
    form = OfferForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give a price, a currency and a number of seats.")
        return redirect("space", space_id=space_id)
    try:
        offer = services.space_ticketing_set(
            actor=request.user,
            space_id=space_id,
            price_minor=form.price_minor,
            currency=form.cleaned_data["currency"],
            cap=form.cleaned_data["cap"],
        )
    except ServiceError as error:
        messages.error(request, error.detail)
    else:
        messages.success(
            request,
            f"Tickets are on sale: {offer.cap} seats at {offer.price_minor / 100:.2f} {offer.currency.upper()}.",
        )
    return redirect("space", space_id=space_id)


@login_required
@require_GET
def checkout_success(request: HttpRequest) -> HttpResponse:
    """Where Stripe sends the buyer after paying. If the webhook hasn't landed yet, ask Stripe now
    (on the event loop: `spaces_site.outside`)."""
    session_id = request.GET.get("session_id", "")[:255]
    try:
        ticket = selectors.ticket_of_checkout(user=request.user, session_id=session_id)
    except ServiceError as error:
        if error.status == 404:
            raise Http404(error.detail) from error
        messages.error(request, error.detail)
        return redirect("my-tickets")
    if ticket.state != TicketState.HELD:
        return _success_page(request, ticket)

    def then(fetched) -> HttpResponse:
        # Stripe not answering just leaves the page saying it is confirming, and it checks again.
        with contextlib.suppress(stripe.StripeError):
            services.checkout_session_apply(fetched())
        ticket.refresh_from_db()
        return _success_page(request, ticket)

    return OutsideCall(wait=lambda: services.checkout_session_fetch(session_id=session_id), then=then)


def _success_page(request: HttpRequest, ticket) -> HttpResponse:
    return render(request, "ticketing/checkout_success.html", {"ticket": ticket, "space": ticket.space})


@login_required
@require_GET
def my_tickets(request: HttpRequest) -> HttpResponse:
    return render(request, "ticketing/my_tickets.html", {"tickets": selectors.tickets_of(user=request.user)[:200]})


@login_required
@require_GET
def selling(request: HttpRequest) -> HttpResponse:
    """A creator's page: can they sell tickets (and why not), their Stripe account, and each space's sales."""
    context = {
        "eligibility": ticketed_hosting_eligibility(request.user),
        "account": selectors.creator_account_of(user=request.user),
        "sales": selectors.sales_of(user=request.user),
    }
    return render(request, "ticketing/selling.html", context)


@login_required
@require_POST
def onboarding_start(request: HttpRequest) -> HttpResponse:
    """The selling page's button: off to Stripe's onboarding (the account is made on first use)."""
    return _onboarding_redirect(request)


@login_required
@require_GET
def onboarding_refresh(request: HttpRequest) -> HttpResponse:
    """Stripe's `refresh_url`: the link went stale, so make a fresh one (for an account that exists)."""
    if selectors.creator_account_of(user=request.user) is None:
        return redirect("ticket-selling")
    return _onboarding_redirect(request)


def _onboarding_redirect(request: HttpRequest) -> HttpResponse:
    try:
        start = services.creator_onboarding_begin(user=request.user, **onboarding_urls(request))
    except ServiceError as error:
        messages.error(request, error.detail)
        return redirect("ticket-selling")

    def then(opened) -> HttpResponse:
        try:
            url = services.creator_onboarding_finish(start=start, opened=opened)
        except ServiceError as error:
            messages.error(request, error.detail)
            return redirect("ticket-selling")
        return HttpResponseRedirect(url, status=303)

    return OutsideCall(wait=lambda: services.creator_onboarding_open(start), then=then)


@login_required
@require_GET
def onboarding_return(request: HttpRequest) -> HttpResponse:
    """Stripe sends the creator back here when they finish or leave onboarding: read the account now."""
    account = selectors.creator_account_of(user=request.user)
    if account is None:
        return redirect("ticket-selling")

    def then(fetched) -> HttpResponse:
        try:
            refreshed = services.creator_account_refreshed(user=request.user, fetched=fetched)
        except ServiceError as error:
            messages.error(request, error.detail)
        else:
            if refreshed.charges_enabled:
                messages.success(request, "Stripe can pay you now.")
            else:
                messages.warning(request, "Your Stripe onboarding isn't finished yet.")
        return redirect("ticket-selling")

    account_id = account.stripe_account_id
    return OutsideCall(wait=lambda: services.creator_account_fetch(stripe_account_id=account_id), then=then)


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """Stripe's deliveries: a bad signature gets 400 and nothing is stored; a good one is stored
    and handled in Celery."""
    try:
        event = services.webhook_event_receive(payload=request.body, signature=request.headers.get("Stripe-Signature"))
    except ServiceError as error:
        return JsonResponse(error.as_dict(), status=error.status)
    return JsonResponse({"received": True, "id": event.stripe_event_id})
