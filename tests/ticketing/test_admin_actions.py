"""Staff's Stripe actions in the admin are asked by tasks, never inside the admin's request."""

import pytest

from tests.factories import UserFactory
from tests.ticketing.scene import buy, deliver, make_seller, make_ticketed_space
from ticketing import tasks
from ticketing.models import CreatorAccount, WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queued(monkeypatch) -> list:
    """The tasks the admin queues, held back so the test can run them after the request."""
    held = []
    for task in (tasks.creator_account_sync_task, tasks.webhook_event_handle_task):
        monkeypatch.setattr(task, "delay", lambda *args, task=task: held.append((task, args)))
    return held


def test_reading_accounts_again_from_the_admin_goes_through_a_task(stripe_standin, client, queued):
    # given: a creator whose account Stripe now says can't take charges
    seller = make_seller(stripe_standin)
    account = CreatorAccount.objects.get(user=seller)
    stripe_standin.set_account(account.stripe_account_id, charges_enabled=False)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    reads_before = len(stripe_standin.calls("GET", "/v1/accounts/"))

    # when: staff ask for it to be read again
    answer = client.post(
        "/admin/ticketing/creatoraccount/", {"action": "refresh_from_stripe", "_selected_action": [account.pk]}
    )
    reads_in_request = len(stripe_standin.calls("GET", "/v1/accounts/")) - reads_before
    for task, args in queued:
        task.apply(args=args)

    # then: the request asked nothing of Stripe; the task it queued did
    assert answer.status_code == 302
    assert reads_in_request == 0
    assert [task for task, _ in queued] == [tasks.creator_account_sync_task]
    account.refresh_from_db()
    assert account.charges_enabled is False


def test_handling_failed_events_again_from_the_admin_goes_through_their_task(stripe_standin, client, settings, queued):
    # given: a payment whose event failed while Stripe failed
    settings.STRIPE_BREAKER_FAILURES = 100
    start = buy(UserFactory(), make_ticketed_space(stripe_standin))
    event = stripe_standin.pay(start.ticket.checkout_session_id)
    stripe_standin.fail_next("GET", "/v1/checkout/sessions/", times=9)
    deliver(stripe_standin, event)
    for task, args in queued:  # the delivery's own handling, tried until it gives up
        task.apply(args=args)
    queued.clear()
    failed = WebhookEvent.objects.get()
    assert failed.status == "failed"
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    # when
    client.post("/admin/ticketing/webhookevent/", {"action": "handle_again", "_selected_action": [failed.pk]})
    status_after_request = WebhookEvent.objects.get().status
    for task, args in queued:
        task.apply(args=args)

    # then
    assert status_after_request == "failed"
    assert WebhookEvent.objects.get().status == "succeeded"
