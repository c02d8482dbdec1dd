"""Scheduling: reminders, announcements, deliveries and in-app notifications.

Something happens to a space (its start is near, it went live, it was
cancelled or rescheduled): an `Announcement` records it, in the same
transaction as the change, once per (space, occasion, round). Planning turns
an announcement into `Delivery` rows, one per person, kind and channel, in bulk
batches; workers claim deliveries (pending → claimed, one conditional UPDATE)
before sending, so nothing is sent twice, and a sweep returns claims that never
reached `sent` (a crashed worker) to pending. An in-app delivery becomes a
`Notification`; an email delivery goes through Django's email backend.

A space's *round* counts its reschedules: the lead reminder of round 1 is a
different delivery from round 0's, so a rescheduled space reminds again.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from rooms.models import Space


class Kind(models.TextChoices):
    REMINDER = "reminder", "Before a space you asked to be reminded of"
    LIVE = "live", "When a space you asked to be reminded of goes live"
    CANCELLED = "cancelled", "When a space you asked to be reminded of is cancelled"
    RESCHEDULED = "rescheduled", "When a space you asked to be reminded of gets a new time"
    HOST_LIVE = "host_live", "When someone you follow goes live"
    HOST_REMINDER = "host_reminder", "Before a space you host is due to start"


class Channel(models.TextChoices):
    IN_APP = "in_app", "In the app"
    EMAIL = "email", "By email"


# Deliveries that only make sense before the start, for the round they were planned in.
LEAD_KINDS = (Kind.REMINDER, Kind.HOST_REMINDER)


def preference_field(kind: str, channel: str) -> str:
    """The `NotificationPreference` column for one kind on one channel, e.g. `email_host_live`."""
    return f"{channel}_{kind}"


class Reminder(models.Model):
    """`user` wants to be told before `space` starts and when it goes live."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reminders")
    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="reminders")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["space", "user"], name="reminder_once")]
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.user} → space {self.space_id}"


class NotificationPreference(models.Model):
    """What one person wants to hear about, kind by kind and channel by channel.

    No row means the defaults: everything on except emails about followed
    hosts going live (a busy follow list would flood an inbox; the bell has
    them). A row is made the first time they change something.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    in_app_reminder = models.BooleanField(default=True)
    email_reminder = models.BooleanField(default=True)
    in_app_live = models.BooleanField(default=True)
    email_live = models.BooleanField(default=True)
    in_app_cancelled = models.BooleanField(default=True)
    email_cancelled = models.BooleanField(default=True)
    in_app_rescheduled = models.BooleanField(default=True)
    email_rescheduled = models.BooleanField(default=True)
    in_app_host_live = models.BooleanField(default=True)
    email_host_live = models.BooleanField(default=False)
    in_app_host_reminder = models.BooleanField(default=True)
    email_host_reminder = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Notification settings of {self.user}"

    def allows(self, kind: str, channel: str) -> bool:
        return getattr(self, preference_field(kind, channel))

    @classmethod
    def default(cls, kind: str, channel: str) -> bool:
        return cls._meta.get_field(preference_field(kind, channel)).default


class Occasion(models.TextChoices):
    LEAD = "lead", "Starting soon"
    LIVE = "live", "Went live"
    CANCELLED = "cancelled"
    RESCHEDULED = "rescheduled"


class AnnouncementState(models.TextChoices):
    PENDING = "pending"  # recorded with the change; not planned yet
    PLANNING = "planning"  # a worker is creating its deliveries (claimed at `claimed_at`)
    PLANNED = "planned"  # every delivery exists
    SKIPPED = "skipped"  # overtaken before planning (the space was rescheduled, cancelled or started)


class Announcement(models.Model):
    """Something that happened to a space and must reach everyone it concerns, planned once."""

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="announcements")
    occasion = models.CharField(max_length=12, choices=Occasion.choices)
    round = models.PositiveIntegerField(default=0, help_text="The space's reschedule count when this was made.")
    state = models.CharField(
        max_length=10, choices=AnnouncementState.choices, default=AnnouncementState.PENDING, db_index=True
    )
    deliveries_count = models.PositiveIntegerField(default=0, help_text="Deliveries created by planning.")
    note = models.CharField(max_length=200, blank=True, help_text="Why it was skipped.")
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    planned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["space", "occasion", "round"], name="announcement_once_per_round"),
        ]

    def __str__(self) -> str:
        return f"{self.get_occasion_display()} (round {self.round}) of space {self.space_id}"


class DeliveryState(models.TextChoices):
    PENDING = "pending"  # waiting for a worker (again, after a failed attempt, from `next_attempt_at`)
    CLAIMED = "claimed"  # a worker holds it (`claim_token`); the sweep returns stale claims to pending
    SENT = "sent"
    FAILED = "failed"  # gave up after SPACES_DELIVERY_MAX_ATTEMPTS; `error` says why
    SKIPPED = "skipped"  # no longer true when its turn came (rescheduled, started, cancelled); `error` says why


class Delivery(models.Model):
    """One message to one person about one space, of one kind, on one channel: sent at most once."""

    announcement = models.ForeignKey(Announcement, on_delete=models.CASCADE, related_name="deliveries")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="deliveries")
    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="deliveries")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    round = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=8, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True, help_text="Last handed to a send task.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            # The exactly-once key: (user, space, kind, channel) within one round of the schedule.
            models.UniqueConstraint(fields=["space", "kind", "round", "channel", "user"], name="delivery_once"),
            models.CheckConstraint(
                condition=~Q(state="claimed") | Q(claim_token__isnull=False, claimed_at__isnull=False),
                name="claimed_delivery_has_token",
            ),
            models.CheckConstraint(
                condition=~Q(state="sent") | Q(sent_at__isnull=False), name="sent_delivery_has_time"
            ),
        ]
        indexes = [
            models.Index(fields=["state", "claimed_at"], name="delivery_claims"),
            models.Index(fields=["state", "queued_at"], name="delivery_queue"),
            models.Index(fields=["user", "-created_at"], name="delivery_user"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} by {self.channel} to {self.user_id} about space {self.space_id} ({self.state})"


class Notification(models.Model):
    """An in-app notification: the bell counts the unread ones, the list shows them all."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    space = models.ForeignKey(Space, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    # One notification per in-app delivery, enforced by the database as well as by the claim.
    delivery = models.OneToOneField(
        Delivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="notification"
    )
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True, help_text="A path on this site.")
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="notification_list"),
            models.Index(fields=["user"], condition=Q(read_at__isnull=True), name="notification_unread"),
        ]

    def __str__(self) -> str:
        return f"{self.title} (to {self.user_id})"

    @property
    def is_read(self) -> bool:
        return self.read_at is not None


class ScheduledSpace(Space):
    """Spaces waiting for their start, as staff see them in the admin (a view of `rooms.Space`)."""

    class Meta:
        proxy = True
        verbose_name = "scheduled space"
