from rest_framework import serializers

from accounts.serializers import UserSummarySerializer
from media.models import Clip, Recording
from media.recording.services import CLIP_MAX_MS, CLIP_MIN_MS


class RecordingSerializer(serializers.ModelSerializer):
    audio_url = serializers.CharField(source="get_audio_url", read_only=True)

    class Meta:
        model = Recording
        fields = [
            "id",
            "space",
            "started_at",
            "ended_at",
            "offset_ms",
            "duration_ms",
            "size_bytes",
            "ended_early",
            "plays",
            "expires_at",
            "audio_url",
        ]
        read_only_fields = fields


class ClipSerializer(serializers.ModelSerializer):
    maker = UserSummarySerializer(read_only=True)
    url = serializers.CharField(source="get_absolute_url", read_only=True)
    audio_url = serializers.SerializerMethodField()

    class Meta:
        model = Clip
        fields = [
            "token",
            "space",
            "recording",
            "maker",
            "state",
            "start_ms",
            "end_ms",
            "duration_ms",
            "failure",
            "created_at",
            "expires_at",
            "url",
            "audio_url",
        ]
        read_only_fields = fields

    def get_audio_url(self, clip: Clip) -> str | None:
        return clip.get_audio_url() if clip.file else None


class ClipFromReplaySerializer(serializers.Serializer):
    start_ms = serializers.IntegerField(min_value=0)
    duration_ms = serializers.IntegerField(min_value=CLIP_MIN_MS, max_value=CLIP_MAX_MS, default=CLIP_MAX_MS)
