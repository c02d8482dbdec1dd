from rest_framework import serializers

from accounts.serializers import UserSummarySerializer
from rooms.models import TITLE_MAX, AbuseReport, SpeakPolicy
from rooms.services.stage import REACTIONS


class SpaceCreateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=TITLE_MAX)
    topics = serializers.ListField(child=serializers.CharField(max_length=30), max_length=3, required=False)
    pinned_link = serializers.URLField(required=False, allow_blank=True)
    speak_policy = serializers.ChoiceField(choices=SpeakPolicy.choices, required=False)
    captions_enabled = serializers.BooleanField(required=False)
    recording_enabled = serializers.BooleanField(required=False)
    scheduled_for = serializers.DateTimeField(
        required=False, help_text="Schedule instead of going live now (15 minutes to 30 days ahead)."
    )


class SpaceEditSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=TITLE_MAX, required=False)
    topics = serializers.ListField(child=serializers.CharField(max_length=30), max_length=3, required=False)
    pinned_link = serializers.URLField(required=False, allow_blank=True)
    speak_policy = serializers.ChoiceField(choices=SpeakPolicy.choices, required=False)


class PersonSerializer(serializers.Serializer):
    """A person as spaces and their events show them (`rooms.payloads.user_payload`)."""

    username = serializers.CharField()
    name = serializers.CharField()
    avatar_url = serializers.CharField()


class ParticipantSerializer(serializers.Serializer):
    user = PersonSerializer()
    role = serializers.CharField()
    muted = serializers.BooleanField()
    hand_raised = serializers.BooleanField()
    invited = serializers.BooleanField()
    present = serializers.BooleanField()


class SpaceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    topics = serializers.ListField(child=serializers.CharField())
    pinned_link = serializers.CharField()
    state = serializers.CharField()
    host = PersonSerializer()
    speak_policy = serializers.CharField()
    captions_enabled = serializers.BooleanField()
    recording_enabled = serializers.BooleanField()
    is_ticketed = serializers.BooleanField()
    scheduled_for = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    url = serializers.CharField()


class SpaceDetailSerializer(SpaceSerializer):
    stage = ParticipantSerializer(many=True)
    listener_count = serializers.IntegerField()
    you = ParticipantSerializer(allow_null=True)


class CaptionLineSerializer(serializers.Serializer):
    speaker = UserSummarySerializer(allow_null=True)
    text = serializers.CharField()
    start_ms = serializers.IntegerField(help_text="Milliseconds from the space's start.")
    end_ms = serializers.IntegerField()


class CommandSerializer(serializers.Serializer):
    """The same commands as the websocket; see docs/websocket.md."""

    type = serializers.ChoiceField(
        choices=[
            "request_speak", "lower_hand", "approve", "deny", "invite", "accept_invite", "decline_invite",
            "move_to_audience", "mute", "mute_self", "unmute_self", "leave_stage", "remove", "add_cohost",
            "remove_cohost", "transfer_host", "react", "end", "edit",
        ]
    )  # fmt: skip
    user = serializers.CharField(required=False, help_text="The username the command acts on.")
    emoji = serializers.ChoiceField(choices=REACTIONS, required=False)
    title = serializers.CharField(required=False)
    topics = serializers.ListField(child=serializers.CharField(), required=False)
    pinned_link = serializers.CharField(required=False)
    speak_policy = serializers.ChoiceField(choices=SpeakPolicy.choices, required=False)


class CommandResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    participant = ParticipantSerializer(required=False)


class ReportSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=AbuseReport.Reason.choices)
    space = serializers.IntegerField(required=False)
    user = serializers.CharField(required=False, help_text="Username of the person reported.")
    details = serializers.CharField(required=False, allow_blank=True, max_length=1000)


class NumbersSpaceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    state = serializers.CharField()
    url = serializers.CharField()


class SpaceNumbersSerializer(serializers.Serializer):
    """The host's numbers for one space; ticket figures are null for a free space."""

    space = NumbersSpaceSerializer()
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    peak_listeners = serializers.IntegerField()
    unique_listeners = serializers.IntegerField()
    minutes_listened = serializers.IntegerField()
    speakers = serializers.IntegerField()
    reactions = serializers.IntegerField()
    replay_plays = serializers.IntegerField()
    clips = serializers.IntegerField()
    tickets_sold = serializers.IntegerField(allow_null=True)
    revenue_minor = serializers.IntegerField(allow_null=True)
    revenue_currency = serializers.CharField(allow_null=True)
