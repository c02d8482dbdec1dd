"""Creators' Stripe Connect Express accounts: create one, send the creator through Stripe's
onboarding, and keep `charges_enabled` as Stripe says (the return page and `account.updated`)."""

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.eligibility import ensure_may_host
from accounts.models import User
from accounts.services import audit_record
from ticketing import lock_objects, selectors
from ticketing.errors import PaymentsUnavailable
from ticketing.models import CreatorAccount
from ticketing.stripe_client import stripe_client

FLAGS = ("charges_enabled", "payouts_enabled", "details_submitted")


def creator_onboarding_link(*, user: User, return_url: str, refresh_url: str) -> str:
    """The address of Stripe's onboarding for `user`, creating their Express account on first use.

    Only people who may host start it. Stripe sends them back to `return_url`
    when they finish or leave, and to `refresh_url` when the link is stale.
    """
    ensure_may_host(user)
    try:
        account = selectors.creator_account_of(user=user) or _creator_account_create(user=user)
        link = stripe_client().v1.account_links.create(
            params={
                "account": account.stripe_account_id,
                "type": "account_onboarding",
                "return_url": return_url,
                "refresh_url": refresh_url,
            }
        )
    except stripe.StripeError as error:
        raise PaymentsUnavailable("Stripe didn't answer, so onboarding can't start now. Please try again.") from error
    return link.url


def _creator_account_create(*, user: User) -> CreatorAccount:
    params = {
        "type": "express",
        "capabilities": {"card_payments": {"requested": True}, "transfers": {"requested": True}},
        "metadata": {"user_id": str(user.pk), "username": user.username},
    }
    if settings.STRIPE_CONNECT_COUNTRY:
        params["country"] = settings.STRIPE_CONNECT_COUNTRY
    if user.email:
        params["email"] = user.email
    # Two clicks at once send the same key, so Stripe makes one account.
    stripe_account = stripe_client().v1.accounts.create(
        params=params, options={"idempotency_key": f"account-{user.pk}-{int(user.date_joined.timestamp())}"}
    )
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
    account = CreatorAccount.objects.filter(stripe_account_id=stripe_account_id).first()
    if account is None:
        return f"ignored: {stripe_account_id} is not a creator's account here"
    stripe_account = stripe_client().v1.accounts.retrieve(stripe_account_id)
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


def creator_account_refresh(*, user: User) -> CreatorAccount | None:
    """The onboarding return page: read the creator's account from Stripe now, without waiting for the webhook."""
    account = selectors.creator_account_of(user=user)
    if account is None:
        return None
    try:
        creator_account_sync(stripe_account_id=account.stripe_account_id)
    except stripe.StripeError as error:
        raise PaymentsUnavailable("Stripe didn't answer; your account's state will update shortly.") from error
    account.refresh_from_db()
    return account
