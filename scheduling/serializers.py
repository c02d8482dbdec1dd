from rest_framework import serializers

from scheduling.models import Channel, Kind


class ReminderStateSerializer(serializers.Serializer):
    space = serializers.IntegerField()
    reminded = serializers.BooleanField()
    reminders_count = serializers.IntegerField(help_text="People with a reminder for this space.")


class NotificationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Kind.choices)
    title = serializers.CharField()
    body = serializers.CharField()
    url = serializers.CharField(help_text="A path on this site.")
    space = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    read = serializers.BooleanField()


class NotificationPageSerializer(serializers.Serializer):
    """A page of your notifications, newest first."""

    next = serializers.URLField(allow_null=True, help_text="The page of older ones; null on the last page.")
    results = NotificationSerializer(many=True)


class MarkReadSerializer(serializers.Serializer):
    ids = serializers.ListField(
        # Bounded by the id column (a bigger number is no id: SQLite raised OverflowError on it, a 500).
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        allow_empty=False,
        max_length=500,
        help_text="The notifications to mark read.",
    )
    all = serializers.BooleanField(required=False, help_text="Mark every notification read.")

    def validate(self, data):
        if "ids" in data and data.get("all"):
            raise serializers.ValidationError("Send either ids or all, not both.")
        if "ids" not in data and not data.get("all"):
            raise serializers.ValidationError('Send the ids to mark read, or {"all": true}.')
        return data


class MarkReadResultSerializer(serializers.Serializer):
    marked = serializers.IntegerField()
    unread = serializers.IntegerField()


class UnreadCountSerializer(serializers.Serializer):
    unread = serializers.IntegerField()


class ChannelsSerializer(serializers.Serializer):
    in_app = serializers.BooleanField(required=False)
    email = serializers.BooleanField(required=False)


class PreferencesSerializer(serializers.Serializer):
    """Each kind of notification with each channel on (true) or off (false)."""

    reminder = ChannelsSerializer(required=False, help_text=Kind.REMINDER.label)
    live = ChannelsSerializer(required=False, help_text=Kind.LIVE.label)
    cancelled = ChannelsSerializer(required=False, help_text=Kind.CANCELLED.label)
    rescheduled = ChannelsSerializer(required=False, help_text=Kind.RESCHEDULED.label)
    host_live = ChannelsSerializer(required=False, help_text=Kind.HOST_LIVE.label)
    host_reminder = ChannelsSerializer(required=False, help_text=Kind.HOST_REMINDER.label)

    def validate(self, data):
        unknown = set(self.initial_data) - set(self.fields) if isinstance(self.initial_data, dict) else set()
        if unknown:
            raise serializers.ValidationError(
                f"Unknown kind {sorted(unknown)[0]!r}; kinds are: {', '.join(Kind.values)}."
            )
        for kind, channels in (self.initial_data or {}).items():
            extra = set(channels) - set(Channel.values) if isinstance(channels, dict) else set()
            if extra:
                raise serializers.ValidationError(
                    f"Unknown channel {sorted(extra)[0]!r} for {kind}; channels are: {', '.join(Channel.values)}."
                )
        return data


class RescheduleSerializer(serializers.Serializer):
    scheduled_for = serializers.DateTimeField(
        help_text="The new start, with its time zone (15 minutes to 30 days ahead)."
    )
