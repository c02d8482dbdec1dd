"""Sending deliveries, exactly once.

A send task gets a list of delivery ids. It claims the pending ones with one
conditional UPDATE (pending → claimed, with a fresh token), so a second task
given the same ids, a doubled beat tick or a retried task finds nothing left
to claim. Then, for what it claimed:

- a delivery that no longer holds (a reminder for a space that was
  rescheduled, started or cancelled since) is marked skipped, with the reason;
- in-app: the notifications are created and the deliveries marked sent in one
  transaction, so each exists exactly once (the database also keeps one
  notification per delivery); the live push follows the commit;
- email: each message is sent, then its delivery marked sent. A crash between
  the two is the one window in which a message can go twice.

A worker that dies holding claims leaves them `claimed`; `claims_sweep`
returns claims older than SPACES_DELIVERY_CLAIM_STALE_S to pending (or fails
them after SPACES_DELIVERY_MAX_ATTEMPTS), and `deliveries_requeue` hands
pending deliveries whose task was lost to new tasks.
"""

import logging
import time
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.services import audit_record
from rooms.models import SpaceState
from scheduling import lock_objects, realtime, selectors, tasks, ticker
from scheduling.models import LEAD_KINDS, Channel, Delivery, DeliveryState, Kind, Notification
from scheduling.texts import Wording, wording

log = logging.getLogger(__name__)


def deliveries_send(*, delivery_ids: list[int]) -> dict:
    """Claim and send these deliveries; ids already claimed, sent or skipped by anyone are left alone."""
    counts = {"claimed": 0, "sent": 0, "skipped": 0, "retry": 0, "failed": 0, "released": 0}
    if not delivery_ids:
        return counts
    token, now = uuid.uuid4(), timezone.now()
    claimed_clock = time.monotonic()
    counts["claimed"] = (
        Delivery.objects.filter(pk__in=delivery_ids, state=DeliveryState.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(state=DeliveryState.CLAIMED, claim_token=token, claimed_at=now, attempts=F("attempts") + 1)
    )
    if not counts["claimed"]:
        return counts
    rows = list(
        Delivery.objects.filter(claim_token=token, state=DeliveryState.CLAIMED)
        .select_related("space__host", "user")
        .order_by("pk")
    )
    rounds = selectors.schedule_rounds(space_ids=list({row.space_id for row in rows}))
    to_send, skipped = [], {}
    for row in rows:
        reason = _no_longer_holds(row, rounds[row.space_id], now)
        if reason:
            skipped.setdefault(reason, []).append(row.pk)
        else:
            to_send.append(row)
    for reason, ids in skipped.items():
        counts["skipped"] += Delivery.objects.filter(pk__in=ids, claim_token=token, state=DeliveryState.CLAIMED).update(
            state=DeliveryState.SKIPPED, error=reason
        )
    in_app = [row for row in to_send if row.channel == Channel.IN_APP]
    email = [row for row in to_send if row.channel == Channel.EMAIL]
    if in_app:
        counts["sent"] += _send_in_app(in_app, token)
    if email:
        _send_email(email, token, claimed_clock, counts)
    return counts


def _no_longer_holds(delivery: Delivery, current_round: int, now: datetime) -> str:
    """Why this delivery shouldn't go out any more, or ''."""
    space, kind = delivery.space, delivery.kind
    if kind in LEAD_KINDS:
        if space.state != SpaceState.SCHEDULED:
            return f"The space is {space.state}."
        if delivery.round != current_round:
            return "The space was rescheduled."
        if now >= space.scheduled_for:
            return "The start time had passed."
    elif kind in (Kind.LIVE, Kind.HOST_LIVE):
        if space.state != SpaceState.LIVE:
            return f"The space is {space.state}."
    elif kind == Kind.RESCHEDULED:
        if space.state != SpaceState.SCHEDULED:
            return f"The space is {space.state}."
        if delivery.round != current_round:
            return "The space was rescheduled again."
    return ""


def _send_in_app(rows: list[Delivery], token: uuid.UUID) -> int:
    """Create the notifications and mark their deliveries sent, in one transaction."""
    now = timezone.now()
    by_pk = {row.pk: row for row in rows}
    texts = _Texts(now)
    with transaction.atomic():
        mine = list(
            lock_objects.claimed_deliveries_for_update(ids=list(by_pk), token=token).values_list("pk", flat=True)
        )
        notifications = []
        for pk in mine:
            row = by_pk[pk]
            text = texts.wording(row)
            notifications.append(
                Notification(
                    user_id=row.user_id,
                    kind=row.kind,
                    space_id=row.space_id,
                    delivery_id=row.pk,
                    title=text.title[:200],
                    body=text.body,
                    url=text.url,
                    created_at=now,
                )
            )
        Notification.objects.bulk_create(notifications)
        sent = Delivery.objects.filter(pk__in=mine).update(state=DeliveryState.SENT, sent_at=now, error="")
        transaction.on_commit(lambda: realtime.notifications_push(notifications), robust=True)
    return sent


def _send_email(rows: list[Delivery], token: uuid.UUID, claimed_clock: float, counts: dict) -> None:
    """Send each message, then mark it sent. Stops (and releases the rest) before the sweep could reclaim them."""
    budget = settings.SPACES_DELIVERY_CLAIM_STALE_S / 2
    texts = _Texts(timezone.now())
    connection = get_connection()
    try:
        connection.open()
    except OSError as error:  # smtplib's errors are OSErrors too
        for row in rows:
            counts[_attempt_failed(row, token, error)] += 1
        return
    try:
        for index, row in enumerate(rows):
            if time.monotonic() - claimed_clock > budget:
                rest = [r.pk for r in rows[index:]]
                counts["released"] += Delivery.objects.filter(
                    pk__in=rest, claim_token=token, state=DeliveryState.CLAIMED
                ).update(
                    state=DeliveryState.PENDING,
                    claim_token=None,
                    claimed_at=None,
                    queued_at=None,
                    attempts=F("attempts") - 1,
                )
                break
            try:
                _email_message(row, connection, texts).send()
            except OSError as error:
                counts[_attempt_failed(row, token, error)] += 1
                continue
            counts["sent"] += Delivery.objects.filter(pk=row.pk, claim_token=token, state=DeliveryState.CLAIMED).update(
                state=DeliveryState.SENT, sent_at=timezone.now(), error=""
            )
    finally:
        connection.close()


class _Texts:
    """What a batch says, worked out once per (kind, space) rather than once per person."""

    def __init__(self, now: datetime):
        self.now = now
        self._wordings: dict[tuple[str, int], Wording] = {}
        self._links: dict[tuple[str, int], dict] = {}

    def wording(self, row: Delivery) -> Wording:
        key = (row.kind, row.space_id)
        if key not in self._wordings:
            self._wordings[key] = wording(kind=row.kind, space=row.space, now=self.now)
        return self._wordings[key]

    def email_context(self, row: Delivery) -> dict:
        key = (row.kind, row.space_id)
        if key not in self._links:
            text, site = self.wording(row), settings.SITE_URL
            calendar = reverse("space-calendar", kwargs={"space_id": row.space_id})
            self._links[key] = {
                "space": row.space,
                "title": text.title,
                "body": text.body,
                "url": f"{site}{text.url}",
                "calendar_url": f"{site}{calendar}" if row.space.state == SpaceState.SCHEDULED else "",
                "settings_url": f"{site}{reverse('notification-settings')}",
            }
        return {**self._links[key], "user": row.user}


def _email_message(row: Delivery, connection, texts: _Texts) -> EmailMultiAlternatives:
    context = texts.email_context(row)
    message = EmailMultiAlternatives(
        subject=context["title"],
        body=render_to_string("scheduling/email/notification.txt", context),
        to=[row.user.email],
        connection=connection,
    )
    message.attach_alternative(render_to_string("scheduling/email/notification.html", context), "text/html")
    return message


def _attempt_failed(row: Delivery, token: uuid.UUID, error: Exception) -> str:
    """Back to pending with a growing wait, or failed for good after the last attempt. Returns which."""
    message = f"{type(error).__name__}: {error}"[:2000]
    attempts = row.attempts  # loaded after the claim, which counted this attempt
    mine = Delivery.objects.filter(pk=row.pk, claim_token=token, state=DeliveryState.CLAIMED)
    if attempts >= settings.SPACES_DELIVERY_MAX_ATTEMPTS:
        mine.update(state=DeliveryState.FAILED, claim_token=None, claimed_at=None, error=message)
        log.warning("Delivery %s failed for good after %s attempts: %s", row.pk, attempts, message)
        return "failed"
    wait = timedelta(seconds=settings.SPACES_DELIVERY_RETRY_S * 2 ** (attempts - 1))
    mine.update(
        state=DeliveryState.PENDING,
        claim_token=None,
        claimed_at=None,
        queued_at=None,
        next_attempt_at=timezone.now() + wait,
        error=message,
    )
    return "retry"


def claims_sweep(*, now: datetime) -> dict:
    """Return claims older than SPACES_DELIVERY_CLAIM_STALE_S (their worker died) to pending.

    A delivery claimed SPACES_DELIVERY_MAX_ATTEMPTS times without being sent fails instead.
    """
    stale = Delivery.objects.filter(
        state=DeliveryState.CLAIMED,
        claimed_at__lt=now - timedelta(seconds=settings.SPACES_DELIVERY_CLAIM_STALE_S),
    )
    failed = stale.filter(attempts__gte=settings.SPACES_DELIVERY_MAX_ATTEMPTS).update(
        state=DeliveryState.FAILED,
        claim_token=None,
        claimed_at=None,
        error="Claimed by workers that never finished, too many times.",
    )
    returned = stale.update(
        state=DeliveryState.PENDING,
        claim_token=None,
        claimed_at=None,
        queued_at=None,
        error="Its worker claimed it and never finished; returned by the sweep.",
    )
    return {"returned": returned, "failed": failed}


def deliveries_requeue(*, now: datetime, limit: int = 20_000) -> int:
    """Queue pending deliveries whose task was lost, failed ones due for a retry, and swept ones."""
    cutoff = now - timedelta(seconds=settings.SPACES_DELIVERY_REQUEUE_S)
    ids = list(
        Delivery.objects.filter(state=DeliveryState.PENDING)
        .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=cutoff))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    if ids:
        Delivery.objects.filter(pk__in=ids).update(queued_at=now)
        queue_for_sending(ids)
    return len(ids)


def queue_for_sending(delivery_ids: list[int]) -> None:
    """Hand deliveries to send tasks, SPACES_DELIVERY_BATCH ids per task."""
    batch = settings.SPACES_DELIVERY_BATCH
    for start in range(0, len(delivery_ids), batch):
        tasks.deliveries_send_task.delay(delivery_ids[start : start + batch])


def delivery_retry(*, actor: User, delivery_ids: list[int]) -> int:
    """Staff send failed deliveries again (the admin's action): back to pending with attempts reset,
    then sent off the request (`send_soon`)."""
    with transaction.atomic():
        failed = list(Delivery.objects.filter(pk__in=delivery_ids, state=DeliveryState.FAILED).order_by("pk"))
        Delivery.objects.filter(pk__in=[d.pk for d in failed], state=DeliveryState.FAILED).update(
            state=DeliveryState.PENDING, attempts=0, next_attempt_at=None, queued_at=None
        )
        for delivery in failed:
            audit_record(actor=actor, action="scheduling.delivery.retried", subject=delivery, error=delivery.error)
        ids = [d.pk for d in failed]
        transaction.on_commit(lambda: send_soon(ids), robust=True)
    return len(failed)


def send_soon(delivery_ids: list[int]) -> None:
    """Send pending deliveries off the request, as `plan_soon` plans announcements.

    In the one-command default (no broker) a send task runs where it is called, so a request that
    queued one would wait on the mail server; there the in-process ticker's next pass sends them
    (its `deliveries_requeue` takes pending deliveries never queued). With a broker they go to
    send tasks. With neither a broker nor a ticker in this process (tests, a shell), they are sent
    here.
    """
    if ticker.wake():
        return
    Delivery.objects.filter(pk__in=delivery_ids, state=DeliveryState.PENDING, queued_at__isnull=True).update(
        queued_at=timezone.now()
    )
    queue_for_sending(delivery_ids)
