"""REST endpoints for ticketing: ticketed-hosting eligibility, Stripe onboarding, a space's
offer, buying, my tickets and a creator's sales. Stripe's webhook is a plain view (`views.stripe_webhook`)."""

import threading

from django.http import HttpResponse, JsonResponse
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from rooms import selectors as rooms_selectors
from spaces_site.api_errors import ErrorSerializer, answering, error_responses
from spaces_site.outside import OutsideCall
from ticketing import selectors, services
from ticketing.eligibility import ticketed_hosting_eligibility
from ticketing.errors import NotTicketed
from ticketing.payloads import offer_payload, sales_payload, ticket_payload
from ticketing.serializers import (
    CheckoutSerializer,
    CreatorAccountSerializer,
    OfferInputSerializer,
    OfferSerializer,
    OnboardingLinkSerializer,
    SpaceSalesSerializer,
    TicketedEligibilitySerializer,
    TicketSerializer,
)

UNAVAILABLE = {503: OpenApiResponse(ErrorSerializer, description="Stripe is not set up or did not answer")}


# Django builds its map for reverse() on the first call in a process. When that first call comes
# from a rush of buyers, each of their threads builds a map of its own at the same time (seconds of
# CPU on two cores, measured with bench/ticket_rush.py); one at a time, only the first builds it.
# A reverse() holds the GIL throughout anyway, so taking turns costs nothing afterwards.
_reverse_in_turn = threading.Lock()


def checkout_urls(request: Request, space_id: int) -> dict:
    """Where Stripe sends the buyer back: our success page (with the session id Stripe fills in) or the space."""
    with _reverse_in_turn:
        success, space = reverse("ticket-checkout-success"), reverse("space", kwargs={"space_id": space_id})
    return {
        "success_url": f"{request.build_absolute_uri(success)}?session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": request.build_absolute_uri(space),
    }


def onboarding_urls(request: Request) -> dict:
    return {
        "return_url": request.build_absolute_uri(reverse("ticket-onboarding-return")),
        "refresh_url": request.build_absolute_uri(reverse("ticket-onboarding-refresh")),
    }


class TicketedEligibilityApi(APIView):
    """May I sell tickets? Which conditions fail, with the figures."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: TicketedEligibilitySerializer, **error_responses(401)})
    def get(self, request: Request) -> Response:
        return Response(ticketed_hosting_eligibility(request.user).as_dict())


class StripeOnboardingApi(APIView):
    """GET: my Stripe Connect account's state. POST: a link to Stripe's onboarding (creating the account)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: CreatorAccountSerializer, **error_responses(401, 404)})
    def get(self, request: Request) -> Response:
        account = selectors.creator_account_of(user=request.user)
        if account is None:
            return Response(
                {"code": "no_creator_account", "detail": "You haven't started Stripe onboarding."},
                status=status.HTTP_404_NOT_FOUND,
            )
        return Response(CreatorAccountSerializer(account).data)

    @extend_schema(request=None, responses={200: OnboardingLinkSerializer, **error_responses(401, 403), **UNAVAILABLE})
    def post(self, request: Request) -> HttpResponse:
        start = services.creator_onboarding_begin(user=request.user, **onboarding_urls(request))
        return OutsideCall(
            wait=lambda: services.creator_onboarding_open(start),
            then=answering(
                lambda opened: JsonResponse({"url": services.creator_onboarding_finish(start=start, opened=opened)})
            ),
        )


class SpaceTicketingApi(APIView):
    """A space's ticket offer. PUT (the host, before the space is live) sets price, currency and cap."""

    permission_classes = [permissions.IsAuthenticatedOrReadOnly]

    def _answer(self, space_id: int, *, status_code: int = status.HTTP_200_OK) -> Response:
        space = rooms_selectors.space_get(space_id=space_id)
        box = selectors.ticket_box(space=space, user=self.request.user)
        if box.offer is None:
            raise NotTicketed("This space doesn't sell tickets.")
        return Response(offer_payload(box.offer, seats_left=box.seats_left, on_sale=box.on_sale), status=status_code)

    @extend_schema(responses={200: OfferSerializer, **error_responses(404)})
    def get(self, request: Request, space_id: int) -> Response:
        return self._answer(space_id)

    @extend_schema(
        request=OfferInputSerializer, responses={200: OfferSerializer, **error_responses(400, 401, 403, 404, 409)}
    )
    def put(self, request: Request, space_id: int) -> Response:
        rooms_selectors.space_get(space_id=space_id)
        data = OfferInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.space_ticketing_set(actor=request.user, space_id=space_id, **data.validated_data)
        return self._answer(space_id)


class SpaceTicketBuyApi(APIView):
    """Buy a ticket: holds a seat and answers with Stripe Checkout's address (201).
    Asking again answers 200 with the open checkout, or the ticket once paid."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=None,
        responses={
            201: CheckoutSerializer,
            200: CheckoutSerializer,
            **error_responses(401, 403, 404, 409),
            **UNAVAILABLE,
        },
    )
    def post(self, request: Request, space_id: int) -> HttpResponse:
        # No read of the space first: `checkout_begin` answers 404 for a space that doesn't exist.
        begun = services.checkout_begin(buyer=request.user, space_id=space_id, **checkout_urls(request, space_id))
        if isinstance(begun, services.CheckoutStart):
            return self._answer(begun)
        # The seat is held; Stripe is asked while the request waits holding nothing (spaces_site.outside).
        return OutsideCall(
            wait=lambda: services.checkout_session_open(begun),
            then=answering(lambda session: self._answer(services.checkout_finish(hold=begun, session=session))),
        )

    @staticmethod
    def _answer(start: services.CheckoutStart) -> JsonResponse:
        body = {"created": start.created, "checkout_url": start.checkout_url, "ticket": ticket_payload(start.ticket)}
        return JsonResponse(body, status=status.HTTP_201_CREATED if start.created else status.HTTP_200_OK)


class MyTicketsApi(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: TicketSerializer(many=True), **error_responses(401)})
    def get(self, request: Request) -> Response:
        return Response([ticket_payload(t) for t in selectors.tickets_of(user=request.user)[:200]])


class MySalesApi(APIView):
    """A creator's sales and payout figures, per ticketed space."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: SpaceSalesSerializer(many=True), **error_responses(401)})
    def get(self, request: Request) -> Response:
        return Response([sales_payload(s) for s in selectors.sales_of(user=request.user)])
