"""The platform's fee: 3 % of a creator's lifetime sales up to 50,000.00, 20 % above, per sale across the tier."""

import pytest
from django.db import connection

from ticketing.fees import application_fee_minor, lifetime_fee_minor, lifetime_fee_sql


def test_below_the_tier_the_fee_is_3_percent_rounded_half_up():
    assert application_fee_minor(amount_minor=1000, sold_before_minor=0) == 30
    assert application_fee_minor(amount_minor=1250, sold_before_minor=0) == 38  # 37.5 → 38
    assert application_fee_minor(amount_minor=100, sold_before_minor=0) == 3


def test_above_the_tier_the_fee_is_20_percent():
    assert application_fee_minor(amount_minor=10_000, sold_before_minor=5_000_000) == 2000
    assert application_fee_minor(amount_minor=10_000, sold_before_minor=9_000_000) == 2000


def test_a_sale_across_the_tier_pays_each_rate_on_its_part():
    # 100.00 after 49,950.00: 50.00 at 3 % (1.50) and 50.00 at 20 % (10.00)
    assert application_fee_minor(amount_minor=10_000, sold_before_minor=4_995_000) == 150 + 1000
    # a sale that ends exactly on the tier is all at 3 %
    assert application_fee_minor(amount_minor=10_000, sold_before_minor=4_990_000) == 300


def test_fees_of_all_sales_add_up_to_the_fee_on_lifetime_sales():
    sold, fees = 0, 0
    for amount in [999, 12_345, 99_900, 101] * 180:  # ~204,000.00, well past the tier
        fees += application_fee_minor(amount_minor=amount, sold_before_minor=sold)
        sold += amount

    assert sold > 5_000_000
    # 3 % of 50,000.00 is 1,500.00; 20 % of the rest, rounded half up to a cent
    assert fees == lifetime_fee_minor(sold) == 150_000 + ((sold - 5_000_000) * 20 + 50) // 100


def test_the_rates_and_the_tier_are_settings(settings):
    settings.SPACES_TICKET_FEE_LOW_BPS = 500
    settings.SPACES_TICKET_FEE_HIGH_BPS = 1000
    settings.SPACES_TICKET_FEE_TIER_MINOR = 1000

    assert application_fee_minor(amount_minor=1000, sold_before_minor=500) == 25 + 50


# Around 0, the tier (5,000,000) and rounding's halves, and far past the tier.
SALES = [0, 1, 16, 17, 49, 50, 51, 999, 4_999_983, 4_999_999, 5_000_000, 5_000_001, 5_000_024, 5_000_025, 10**11]


@pytest.mark.django_db
@pytest.mark.parametrize("tier", [5_000_000, 1000])
def test_the_seat_holds_sql_computes_the_same_fee_as_python(settings, tier):
    settings.SPACES_TICKET_FEE_TIER_MINOR = tier
    with connection.cursor() as cursor:
        for sales in SALES:
            cursor.execute(f"SELECT {lifetime_fee_sql('s.v')} FROM (SELECT %s AS v) s", [sales])
            assert cursor.fetchone()[0] == lifetime_fee_minor(sales), sales
