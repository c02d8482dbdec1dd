from django import forms
from django.conf import settings

from rooms.models import TITLE_MAX, AbuseReport, SpeakPolicy


class SpaceForm(forms.Form):
    title = forms.CharField(max_length=TITLE_MAX, help_text=f"Up to {TITLE_MAX} characters.")
    topics = forms.CharField(required=False, help_text="Up to 3, separated by commas.")
    pinned_link = forms.URLField(required=False, assume_scheme="https")
    speak_policy = forms.ChoiceField(choices=SpeakPolicy.choices, label="Who can ask to speak")
    captions_enabled = forms.BooleanField(required=False, initial=True, label="Live captions")
    recording_enabled = forms.BooleanField(required=False, label="Record this space")
    scheduled_for = forms.DateTimeField(
        required=False,
        label="Schedule for later (UTC)",
        help_text="Leave empty to go live now.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not settings.SPACES_CAPTIONS_ENGINE:
            # No captions engine on this site: don't offer what can't happen.
            del self.fields["captions_enabled"]

    def clean_topics(self) -> list[str]:
        return [t.strip() for t in self.cleaned_data["topics"].split(",") if t.strip()]


class ReportForm(forms.Form):
    reason = forms.ChoiceField(choices=AbuseReport.Reason.choices)
    details = forms.CharField(required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 2}))
