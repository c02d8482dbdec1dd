from datetime import UTC, timedelta

from django import forms

from scheduling.models import Channel, Kind, preference_field

# getTimezoneOffset() ranges from -840 (UTC+14) to 720 (UTC-12).
OFFSET_LIMIT_MIN = 840


class RescheduleForm(forms.Form):
    """A new start time, typed in the viewer's own zone.

    The page's script puts the browser's offset from UTC for that date in
    `tz_offset` (minutes, as JavaScript's getTimezoneOffset gives it); without
    the script the time is read as UTC, as the label says.
    """

    scheduled_for = forms.DateTimeField(
        label="New start time",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="In your time zone (UTC if your browser doesn't run scripts).",
    )
    tz_offset = forms.IntegerField(
        required=False, min_value=-OFFSET_LIMIT_MIN, max_value=OFFSET_LIMIT_MIN, widget=forms.HiddenInput
    )

    def clean(self):
        cleaned = super().clean()
        when = cleaned.get("scheduled_for")
        if when is not None:
            # The field made it aware in the site's zone (UTC); it was typed in the browser's.
            offset = cleaned.get("tz_offset") or 0
            cleaned["scheduled_for"] = when.replace(tzinfo=UTC) + timedelta(minutes=offset)
        return cleaned


class PreferencesForm(forms.Form):
    """One checkbox per kind and channel, named like the preference columns (`email_host_live`)."""

    def __init__(self, *args, preferences: dict[str, dict[str, bool]], **kwargs):
        super().__init__(*args, **kwargs)
        for kind, label in Kind.choices:
            for channel, channel_label in Channel.choices:
                self.fields[preference_field(kind, channel)] = forms.BooleanField(
                    required=False, initial=preferences[kind][channel], label=f"{label}: {channel_label.lower()}"
                )

    def rows(self) -> list[dict]:
        """The form as a table: one row per kind, one bound field per channel."""
        return [
            {"label": label, "fields": [self[preference_field(kind, channel)] for channel in Channel.values]}
            for kind, label in Kind.choices
        ]

    def changes(self) -> dict[str, dict[str, bool]]:
        return {
            kind: {channel: self.cleaned_data[preference_field(kind, channel)] for channel in Channel.values}
            for kind in Kind.values
        }
