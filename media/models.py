"""Media: the aiortc media worker and its signalling, and what it leaves behind: recordings and clips."""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse


class RecordingState(models.TextChoices):
    RECORDING = "recording"  # the worker is writing its spool file
    READY = "ready"  # in storage, playable (one that recorded nothing is deleted instead)


class Recording(models.Model):
    """One stretch of a space's recorded mix (usually the whole space; a stop/start or a worker's
    death begins a new one). `offset_ms` places it on the space's timeline, where the transcript's
    times are."""

    space = models.ForeignKey("rooms.Space", on_delete=models.CASCADE, related_name="recordings")
    state = models.CharField(max_length=10, choices=RecordingState.choices, default=RecordingState.RECORDING)
    file = models.FileField(upload_to="recordings/", blank=True)
    # Where the worker writes it while recording (on the worker's machine).
    spool_path = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    offset_ms = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(default=0)
    size_bytes = models.PositiveBigIntegerField(default=0)
    # The worker stopped (crashed, was killed) before the recording did: it holds what was written.
    ended_early = models.BooleanField(default=False)
    plays = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["space", "started_at"])]

    def __str__(self) -> str:
        return f"Recording {self.pk} of space {self.space_id}"

    def get_audio_url(self) -> str:
        return reverse("recording-audio", kwargs={"recording_id": self.pk})


class ClipState(models.TextChoices):
    PENDING = "pending"  # a live clip the worker is cutting
    READY = "ready"
    FAILED = "failed"  # `failure` says why


def clip_token() -> str:
    return secrets.token_urlsafe(9)


class Clip(models.Model):
    """Up to 30 s cut from a recording (its packets copied, not re-encoded), with its own page."""

    token = models.CharField(max_length=16, unique=True, default=clip_token)
    space = models.ForeignKey("rooms.Space", on_delete=models.CASCADE, related_name="clips")
    recording = models.ForeignKey(Recording, null=True, on_delete=models.SET_NULL, related_name="clips")
    maker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="clips")
    state = models.CharField(max_length=10, choices=ClipState.choices, default=ClipState.PENDING)
    title = models.CharField(max_length=100, blank=True)
    file = models.FileField(upload_to="clips/", blank=True)
    # On the recording's timeline.
    start_ms = models.PositiveIntegerField(default=0)
    end_ms = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(default=0)
    size_bytes = models.PositiveIntegerField(default=0)
    # "The last 30 s" of a live space: the moment asked for, cut by the worker.
    asked_at = models.DateTimeField(null=True, blank=True)
    failure = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(end_ms__gte=models.F("start_ms")), name="clip_ends_after_start")
        ]

    def __str__(self) -> str:
        return self.title or f"Clip {self.token}"

    def get_absolute_url(self) -> str:
        return reverse("clip", kwargs={"token": self.token})

    def get_audio_url(self) -> str:
        return reverse("clip-audio", kwargs={"token": self.token})
