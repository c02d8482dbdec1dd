from django.conf import settings
from django.core.validators import MinLengthValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse

TITLE_MAX = 70
TOPICS_MAX = 3
TOPIC_MAX_LENGTH = 30


class SpaceState(models.TextChoices):
    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"
    CANCELLED = "cancelled"


class SpeakPolicy(models.TextChoices):
    EVERYONE = "everyone", "Everyone"
    FOLLOWED = "followed", "People the host follows"
    INVITED = "invited", "Only people the host invites"


class Role(models.TextChoices):
    HOST = "host"
    COHOST = "cohost", "Co-host"
    SPEAKER = "speaker"
    LISTENER = "listener"


STAGE_ROLES = (Role.HOST, Role.COHOST, Role.SPEAKER)
MODERATOR_ROLES = (Role.HOST, Role.COHOST)


def is_moderator(role: str | None) -> bool:
    """The host and co-hosts moderate: they see hands and invites and run the stage."""
    return role in MODERATOR_ROLES


class Space(models.Model):
    """A live audio conversation. `host` is whoever hosts now; hosting can be handed over."""

    host = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="hosted_spaces")
    title = models.CharField(max_length=TITLE_MAX, validators=[MinLengthValidator(1)])
    # Lower-case topics joined by commas: portable to SQLite and searchable with icontains.
    topics = models.CharField(max_length=(TOPIC_MAX_LENGTH + 1) * TOPICS_MAX, blank=True)
    pinned_link = models.URLField(blank=True)
    state = models.CharField(max_length=10, choices=SpaceState.choices, default=SpaceState.LIVE, db_index=True)
    speak_policy = models.CharField(max_length=10, choices=SpeakPolicy.choices, default=SpeakPolicy.EVERYONE)
    captions_enabled = models.BooleanField(default=True)
    # The host keeps the transcript past SPACES_RECORDING_RETENTION_D (else it is deleted then).
    transcript_kept = models.BooleanField(default=False)
    recording_enabled = models.BooleanField(default=False)
    is_ticketed = models.BooleanField(default=False)
    scheduled_for = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=40, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["host"], condition=Q(state="live"), name="one_live_space_per_host"),
            models.CheckConstraint(condition=~Q(title=""), name="space_title_not_empty"),
            models.CheckConstraint(
                condition=~Q(state="live") | Q(started_at__isnull=False), name="live_space_has_started_at"
            ),
        ]
        indexes = [models.Index(fields=["state", "-started_at"])]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("space", kwargs={"space_id": self.pk})

    @property
    def topic_list(self) -> list[str]:
        return [t for t in self.topics.split(",") if t]

    @property
    def is_live(self) -> bool:
        return self.state == SpaceState.LIVE


class Participant(models.Model):
    """A signed-in person's place in one space: their role survives a dropped connection.

    `absent_since` is set when their last connection closes and cleared when one
    opens; the presence sweep moves a speaker who stays away past the grace
    period back to the audience and ends (or hands over) a space whose host is gone.
    """

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="participations")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.LISTENER)
    muted = models.BooleanField(default=True)
    hand_raised_at = models.DateTimeField(null=True, blank=True)
    invited_at = models.DateTimeField(null=True, blank=True, help_text="Invited to speak, not yet accepted.")
    joined_at = models.DateTimeField(auto_now_add=True)
    absent_since = models.DateTimeField(null=True, blank=True)
    left_at = models.DateTimeField(null=True, blank=True)
    # Ever on the stage of this space (the host's "speakers" figure counts each person once).
    was_on_stage = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["space", "user"], name="participant_once_per_space"),
            models.UniqueConstraint(fields=["space"], condition=Q(role="host"), name="one_host_per_space"),
        ]
        indexes = [models.Index(fields=["space", "role"])]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.space_id}"

    @property
    def on_stage(self) -> bool:
        return self.role in STAGE_ROLES


class Connection(models.Model):
    """One open websocket to a space. Presence is the set of these rows.

    Anonymous listeners have no participant. Rows whose `last_seen_at` is older
    than the presence timeout belong to sockets that died without closing;
    the presence sweep deletes them. `process` names the web process that
    holds the socket (`SPACES_PROCESS_NAME`), so that process, restarted,
    drops at once what its previous life left (`rooms.presence_loop`).
    """

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="connections")
    participant = models.ForeignKey(Participant, null=True, blank=True, on_delete=models.CASCADE)
    channel_name = models.CharField(max_length=200, unique=True)
    process = models.CharField(max_length=100, blank=True, default="")
    opened_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.channel_name


class SpaceBlock(models.Model):
    """Someone removed from a space and kept out of it."""

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="blocks")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    blocked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["space", "user"], name="space_block_once")]

    def __str__(self) -> str:
        return f"{self.user} removed from {self.space_id}"


class ReportStatus(models.TextChoices):
    OPEN = "open"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"


class AbuseReport(models.Model):
    """A user's report of a space or of a user, for staff to review.

    A report outlives the accounts it names: deleting the reporter or the reported
    user empties the link, and the usernames kept at report time still say who.
    """

    class Reason(models.TextChoices):
        SPAM = "spam"
        HARASSMENT = "harassment"
        HATE = "hate", "Hateful conduct"
        VIOLENCE = "violence"
        IMPERSONATION = "impersonation"
        OTHER = "other"

    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="reports_made"
    )
    reporter_username = models.CharField(max_length=150)
    space = models.ForeignKey(Space, null=True, blank=True, on_delete=models.CASCADE, related_name="reports")
    reported_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="reports_received"
    )
    reported_username = models.CharField(max_length=150, blank=True)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    details = models.TextField(blank=True, max_length=1000)
    status = models.CharField(max_length=10, choices=ReportStatus.choices, default=ReportStatus.OPEN, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # The kept username, not the link, names the subject: the link empties when the account goes.
            models.CheckConstraint(
                condition=Q(space__isnull=False) | ~Q(reported_username=""), name="report_has_subject"
            ),
            models.CheckConstraint(
                condition=Q(reported_user__isnull=True) | ~Q(reported_username=""), name="report_keeps_reported_name"
            ),
            models.CheckConstraint(condition=~Q(reporter_username=""), name="report_keeps_reporter_name"),
        ]

    def __str__(self) -> str:
        subject = f"@{self.reported_username}" if self.reported_username else f"space {self.space_id}"
        return f"{self.reason} report on {subject}"


class CaptionLine(models.Model):
    """A final caption line: the space's transcript, one row per line a speaker said.

    Written by the media worker's captions path as each line ends; `line_key`
    is the recogniser's id for it, so a line sent twice is stored once. Times
    are milliseconds from the space's start. The audio itself is never kept.
    """

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="caption_lines")
    speaker = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    line_key = models.CharField(max_length=80)
    text = models.TextField()
    start_ms = models.PositiveIntegerField()
    end_ms = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["space", "line_key"], name="caption_line_once"),
            models.CheckConstraint(condition=Q(end_ms__gte=models.F("start_ms")), name="caption_line_ends_after_start"),
        ]
        indexes = [models.Index(fields=["space", "start_ms"])]

    def __str__(self) -> str:
        return self.text[:60]


class SpaceNumbers(models.Model):
    """The host's numbers for one space, counted as it runs (never by scanning at read time).

    rooms counts the audience (joins, sockets, the stage, reactions); media adds
    replay plays and clips, ticketing tickets and revenue, each through
    `rooms.services.numbers_add`.
    """

    space = models.OneToOneField(Space, primary_key=True, on_delete=models.CASCADE, related_name="numbers")
    peak_listeners = models.PositiveIntegerField(default=0)
    # Each signed-in person once, each anonymous visit once; the host is not a listener.
    unique_listeners = models.PositiveIntegerField(default=0)
    listening_seconds = models.PositiveBigIntegerField(default=0)
    speakers = models.PositiveIntegerField(default=0)
    reactions = models.PositiveIntegerField(default=0)
    replay_plays = models.PositiveIntegerField(default=0)
    clips = models.PositiveIntegerField(default=0)
    tickets_sold = models.PositiveIntegerField(default=0)
    revenue_minor = models.BigIntegerField(default=0)
    revenue_currency = models.CharField(max_length=3, blank=True)

    class Meta:
        verbose_name_plural = "space numbers"

    def __str__(self) -> str:
        return f"Numbers of space {self.space_id}"

    @property
    def minutes_listened(self) -> int:
        return round(self.listening_seconds / 60)

    @property
    def revenue(self) -> str:
        return f"{self.revenue_minor / 100:.2f} {self.revenue_currency.upper()}" if self.revenue_currency else ""
