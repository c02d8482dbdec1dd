from django.urls import path

from ticketing import api, views

urlpatterns = [
    path("spaces/<int:space_id>/tickets/buy/", views.ticket_buy, name="ticket-buy"),
    path("spaces/<int:space_id>/tickets/offer/", views.offer_set, name="ticket-offer-set"),
    path("tickets/", views.my_tickets, name="my-tickets"),
    path("tickets/checkout/success/", views.checkout_success, name="ticket-checkout-success"),
    path("tickets/selling/", views.selling, name="ticket-selling"),
    path("tickets/selling/onboarding/", views.onboarding_start, name="ticket-onboarding"),
    path("tickets/selling/onboarding/return/", views.onboarding_return, name="ticket-onboarding-return"),
    path("tickets/selling/onboarding/refresh/", views.onboarding_refresh, name="ticket-onboarding-refresh"),
    path("stripe/webhook/", views.stripe_webhook, name="stripe-webhook"),
]

api_urlpatterns = [
    path("me/ticketed-hosting-eligibility/", api.TicketedEligibilityApi.as_view(), name="api-ticketed-eligibility"),
    path("me/stripe-onboarding/", api.StripeOnboardingApi.as_view(), name="api-stripe-onboarding"),
    path("me/tickets/", api.MyTicketsApi.as_view(), name="api-my-tickets"),
    path("me/sales/", api.MySalesApi.as_view(), name="api-my-sales"),
    path("spaces/<int:space_id>/ticketing/", api.SpaceTicketingApi.as_view(), name="api-space-ticketing"),
    path("spaces/<int:space_id>/tickets/", api.SpaceTicketBuyApi.as_view(), name="api-space-tickets"),
    path("stripe/webhook/", views.stripe_webhook, name="api-stripe-webhook"),
]
