from decimal import Decimal

from django import forms
from django.conf import settings


class OfferForm(forms.Form):
    """The host's "sell tickets" form on a scheduled space's page: price in major units."""

    price = forms.DecimalField(
        max_digits=5, decimal_places=2, min_value=Decimal("0.01"), help_text="From 1.00 to 999.00."
    )
    currency = forms.ChoiceField(choices=())
    cap = forms.IntegerField(min_value=1, label="Seats")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["currency"].choices = [(c.lower(), c.upper()) for c in settings.SPACES_TICKET_CURRENCIES]

    @property
    def price_minor(self) -> int:
        return int(self.cleaned_data["price"] * 100)
