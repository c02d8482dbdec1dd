"""Ticketing: Stripe Checkout, tickets, refunds and payouts (issue: ticketing)."""
