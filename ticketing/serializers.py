from rest_framework import serializers

from ticketing.models import TicketState


class OfferInputSerializer(serializers.Serializer):
    price_minor = serializers.IntegerField(help_text="Minor units: 500 is 5.00 (1.00 to 999.00).")
    currency = serializers.CharField(max_length=3, help_text="Three letters, e.g. usd.")
    cap = serializers.IntegerField(help_text="Seats for sale.")


class OfferSerializer(serializers.Serializer):
    space_id = serializers.IntegerField()
    price_minor = serializers.IntegerField()
    currency = serializers.CharField()
    price = serializers.CharField(help_text="For people, e.g. 5.00 USD.")
    cap = serializers.IntegerField()
    seats_left = serializers.IntegerField()
    on_sale = serializers.BooleanField()
    seller = serializers.CharField(help_text="The username paid for the tickets.")


class TicketSpaceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    state = serializers.CharField()
    url = serializers.CharField()
    scheduled_for = serializers.DateTimeField(allow_null=True)


class TicketSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    space = TicketSpaceSerializer()
    state = serializers.ChoiceField(choices=TicketState.choices)
    amount_minor = serializers.IntegerField()
    currency = serializers.CharField()
    checkout_url = serializers.CharField(allow_null=True, help_text="Where to pay, while the seat is held.")
    held_until = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    paid_at = serializers.DateTimeField(allow_null=True)
    refunded_at = serializers.DateTimeField(allow_null=True)


class CheckoutSerializer(serializers.Serializer):
    created = serializers.BooleanField(help_text="False: the buyer's open checkout or ticket from before.")
    checkout_url = serializers.CharField(allow_null=True, help_text="Send the buyer here; null once paid.")
    ticket = TicketSerializer()


class SpaceSalesSerializer(serializers.Serializer):
    space = TicketSpaceSerializer()
    currency = serializers.CharField()
    price_minor = serializers.IntegerField()
    cap = serializers.IntegerField()
    paid = serializers.IntegerField()
    held = serializers.IntegerField()
    refunded = serializers.IntegerField()
    seats_left = serializers.IntegerField()
    gross_minor = serializers.IntegerField(help_text="Paid tickets.")
    fees_minor = serializers.IntegerField(help_text="The platform's application fee on them.")
    net_minor = serializers.IntegerField(help_text="Transferred to the creator's Stripe account.")
    refunded_minor = serializers.IntegerField()


class TicketedEligibilitySerializer(serializers.Serializer):
    eligible = serializers.BooleanField()
    reason = serializers.CharField()
    detail = serializers.CharField()
    unmet = serializers.ListField(child=serializers.CharField())
    followers_count = serializers.IntegerField()
    required_followers = serializers.IntegerField()
    hosted_count = serializers.IntegerField()
    required_hosted = serializers.IntegerField()
    hosted_window_days = serializers.IntegerField()
    charges_enabled = serializers.BooleanField()


class CreatorAccountSerializer(serializers.Serializer):
    stripe_account_id = serializers.CharField()
    charges_enabled = serializers.BooleanField()
    payouts_enabled = serializers.BooleanField()
    details_submitted = serializers.BooleanField()


class OnboardingLinkSerializer(serializers.Serializer):
    url = serializers.CharField(help_text="Stripe's onboarding: send the creator here.")
