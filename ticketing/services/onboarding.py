"""Creators' Stripe Connect Express accounts: create one, send the creator through Stripe's
onboarding, and keep `charges_enabled` as Stripe says (the return page and `account.updated`)."""

from collections.abc import Callable
from dataclasses import dataclass

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.eligibility import ensure_may_host
from accounts.models import User
from accounts.services import audit_record
from ticketing import lock_objects, selectors
from ticketing.models import CreatorAccount
from ticketing.stripe_client import payments_check, payments_unavailable, stripe_client, stripe_client_async

FLAGS = ("charges_enabled", "payouts_enabled", "details_submitted")


@dataclass(frozen=True)
class OnboardingStart:
    """What opening a creator's onboarding link needs: their account if they have one, else how to make it."""

    user_id: int
    account_id: str | None
    account_params: dict
    account_key: str
    link_params: dict


def creator_onboarding_begin(*, user: User, return_url: str, refresh_url: str) -> OnboardingStart:
    """Check that `user` may start onboarding (only people who may host) and say what Stripe is asked.

    Stripe sends them back to `return_url` when they finish or leave, and to
    `refresh_url` when the link is stale.
    """
    ensure_may_host(user)
    payments_check()
    account = selectors.creator_account_of(user=user)
    params = {
        "type": "express",
        "capabilities": {"card_payments": {"requested": True}, "transfers": {"requested": True}},
        "metadata": {"user_id": str(user.pk), "username": user.username},
    }
    if settings.STRIPE_CONNECT_COUNTRY:
        params["country"] = settings.STRIPE_CONNECT_COUNTRY
    if user.email:
        params["email"] = user.email
    return OnboardingStart(
        user_id=user.pk,
        account_id=account.stripe_account_id if account else None,
        account_params=params,
        # Two clicks at once send the same key, so Stripe makes one account.
        account_key=f"account-{user.pk}-{int(user.date_joined.timestamp())}",
        link_params={"type": "account_onboarding", "return_url": return_url, "refresh_url": refresh_url},
    )


async def creator_onboarding_open(start: OnboardingStart) -> tuple[object | None, object]:
    """Make the Express account if there is none, and a link to its onboarding, waiting on the event loop.

    Returns (the new Stripe account or None, the link)."""
    client = stripe_client_async()
    made = None
    account_id = start.account_id
    if account_id is None:
        made = await client.v1.accounts.create_async(
            params=start.account_params, options={"idempotency_key": start.account_key}
        )
        account_id = made.id
    link = await client.v1.account_links.create_async(params={"account": account_id, **start.link_params})
    return made, link


def creator_onboarding_finish(*, start: OnboardingStart, opened: Callable[[], tuple]) -> str:
    """Record a new account (from `opened()`, Stripe's answer) and return the onboarding address."""
    try:
        made, link = opened()
    except stripe.StripeError as error:
        raise payments_unavailable(
            error, "Stripe didn't answer, so onboarding can't start now. Please try again."
        ) from error
    if made is not None:
        _creator_account_record(user=User.objects.get(pk=start.user_id), stripe_account=made)
    return link.url


def creator_onboarding_link(*, user: User, return_url: str, refresh_url: str) -> str:
    """The three steps in a row, blocking: for commands and the demo's seed data, never a request."""
    start = creator_onboarding_begin(user=user, return_url=return_url, refresh_url=refresh_url)

    def opened() -> tuple:
        client = stripe_client()
        made = None
        account_id = start.account_id
        if account_id is None:
            made = client.v1.accounts.create(
                params=start.account_params, options={"idempotency_key": start.account_key}
            )
            account_id = made.id
        return made, client.v1.account_links.create(params={"account": account_id, **start.link_params})

    return creator_onboarding_finish(start=start, opened=opened)


def _creator_account_record(*, user: User, stripe_account) -> CreatorAccount:
    try:
        with transaction.atomic():
            account = CreatorAccount.objects.create(
                user=user,
                stripe_account_id=stripe_account.id,
                synced_at=timezone.now(),
                **{flag: bool(getattr(stripe_account, flag, False)) for flag in FLAGS},
            )
            audit_record(actor=user, action="ticketing.creator_account.created", subject=account)
    except IntegrityError:
        account = CreatorAccount.objects.get(user=user)
    return account


def creator_account_sync(*, stripe_account_id: str) -> str:
    """Read the account's flags from Stripe and keep them; returns what changed, for the event log."""
    if not CreatorAccount.objects.filter(stripe_account_id=stripe_account_id).exists():
        return f"ignored: {stripe_account_id} is not a creator's account here"
    return creator_account_apply(stripe_client().v1.accounts.retrieve(stripe_account_id))


def creator_account_apply(stripe_account) -> str:
    """Keep the flags Stripe gave for an account; returns what changed."""
    stripe_account_id = stripe_account.id
    account = CreatorAccount.objects.filter(stripe_account_id=stripe_account_id).first()
    if account is None:
        return f"ignored: {stripe_account_id} is not a creator's account here"
    with transaction.atomic():
        account = lock_objects.creator_account_for_update(account.pk)
        changes = {
            flag: bool(getattr(stripe_account, flag, False))
            for flag in FLAGS
            if bool(getattr(stripe_account, flag, False)) != getattr(account, flag)
        }
        for flag, value in changes.items():
            setattr(account, flag, value)
        account.synced_at = timezone.now()
        account.save(update_fields=[*changes, "synced_at"])
        if changes:
            audit_record(actor=None, action="ticketing.creator_account.updated", subject=account, **changes)
    if not changes:
        return f"{stripe_account_id}: no change"
    return f"{stripe_account_id}: " + ", ".join(f"{flag}={value}" for flag, value in changes.items())


async def creator_account_fetch(*, stripe_account_id: str):
    """The account as Stripe has it now, waiting on the event loop."""
    return await stripe_client_async().v1.accounts.retrieve_async(stripe_account_id)


def creator_account_refreshed(*, user: User, fetched: Callable[[], object]) -> CreatorAccount:
    """The onboarding return page, after `creator_account_fetch`: keep what Stripe said (`fetched()`)."""
    try:
        creator_account_apply(fetched())
    except stripe.StripeError as error:
        raise payments_unavailable(error, "Stripe didn't answer; your account's state will update shortly.") from error
    return selectors.creator_account_of(user=user)
