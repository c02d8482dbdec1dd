"""The platform's application fee (PRODUCT.md §5): the one place the tiered rule lives.

The fee on a creator's lifetime ticket sales S is
    F(S) = LOW % of min(S, TIER) + HIGH % of max(S - TIER, 0),  rounded half up to a minor unit,
and a sale of `amount` after `sold_before` pays F(sold_before + amount) - F(sold_before).
So a sale that crosses the tier pays the low rate on the part below it and the
high rate on the part above, and the fees of all sales add up to exactly
F(lifetime sales), with no rounding drift.
"""

from django.conf import settings


def lifetime_fee_minor(sales_minor: int) -> int:
    """F(S): the fee due on `sales_minor` of lifetime sales, in minor units."""
    tier = settings.SPACES_TICKET_FEE_TIER_MINOR
    low = min(sales_minor, tier) * settings.SPACES_TICKET_FEE_LOW_BPS
    high = max(sales_minor - tier, 0) * settings.SPACES_TICKET_FEE_HIGH_BPS
    # Integer arithmetic in basis points; (x + 5000) // 10000 rounds half up.
    return (low + high + 5000) // 10000


def lifetime_fee_sql(sales: str) -> str:
    """F(S) in SQL, for a statement that sums S itself (the seat hold, under the seller's lock): the same
    rule as `lifetime_fee_minor` on the integer expression `sales`, in integer arithmetic that SQLite
    and PostgreSQL compute alike (tests/ticketing/test_fees.py holds the two together)."""
    tier = int(settings.SPACES_TICKET_FEE_TIER_MINOR)
    low, high = int(settings.SPACES_TICKET_FEE_LOW_BPS), int(settings.SPACES_TICKET_FEE_HIGH_BPS)
    sales = f"CAST(({sales}) AS BIGINT)"  # S times a rate in basis points passes 32 bits from 214,748.36
    return (
        f"(((CASE WHEN ({sales}) < {tier} THEN ({sales}) ELSE {tier} END) * {low}"
        f" + (CASE WHEN ({sales}) > {tier} THEN ({sales}) - {tier} ELSE 0 END) * {high} + 5000) / 10000)"
    )


def application_fee_minor(*, amount_minor: int, sold_before_minor: int) -> int:
    """The fee on one sale of `amount_minor` by a creator who has sold `sold_before_minor` before it."""
    if amount_minor < 0 or sold_before_minor < 0:
        raise ValueError("amounts are never negative")
    return lifetime_fee_minor(sold_before_minor + amount_minor) - lifetime_fee_minor(sold_before_minor)
