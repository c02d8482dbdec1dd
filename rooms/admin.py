from django.contrib import admin, messages
from django.db import models
from django.urls import reverse
from django.utils.html import format_html

from rooms import services
from rooms.models import AbuseReport, Participant, Space, SpaceBlock, SpaceNumbers, SpaceState
from rooms.services.numbers import COUNTERS
from spaces_site.errors import ServiceError


class ParticipantInline(admin.TabularInline):
    model = Participant
    fields = ["user", "role", "muted", "hand_raised_at", "invited_at", "joined_at", "absent_since", "left_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


class NumbersInline(admin.StackedInline):
    """The host's numbers, read-only: they are counted by the services as the space runs."""

    model = SpaceNumbers
    readonly_fields = ["peak_listeners", *COUNTERS, "revenue_currency"]
    fields = readonly_fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Space)
class SpaceAdmin(admin.ModelAdmin):
    list_display = ["title", "host", "state", "is_ticketed", "scheduled_for", "started_at", "ended_at"]
    list_filter = ["state", "is_ticketed", "speak_policy"]
    search_fields = ["title", "topics", "host__username"]
    list_select_related = ["host"]
    raw_id_fields = ["host"]
    readonly_fields = ["host", "state", "created_at", "started_at", "ended_at", "end_reason"]
    date_hierarchy = "created_at"
    inlines = [NumbersInline, ParticipantInline]
    actions = ["end_now", "cancel"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def _apply(self, request, queryset, service, state: str, done: str) -> None:
        changed = []
        skipped = queryset.exclude(state=state).count()  # before: those changed leave `state`
        for space in queryset.filter(state=state):
            try:
                service(actor=request.user, space_id=space.pk)
            except ServiceError as error:
                self.message_user(request, f"{space}: {error.detail}", messages.ERROR)
            else:
                changed.append(space.title)
        if changed:
            self.message_user(request, f"{done}: {', '.join(changed)}.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} selected space(s) were not {state}; left alone.", messages.WARNING)

    @admin.action(description="End the selected live spaces now")
    def end_now(self, request, queryset):
        self._apply(request, queryset, services.space_end, SpaceState.LIVE, "Ended")

    @admin.action(description="Cancel the selected scheduled spaces")
    def cancel(self, request, queryset):
        self._apply(request, queryset, services.space_cancel, SpaceState.SCHEDULED, "Cancelled")


@admin.register(SpaceBlock)
class SpaceBlockAdmin(admin.ModelAdmin):
    list_display = ["space", "user", "blocked_by", "created_at"]
    search_fields = ["user__username", "space__title"]
    list_select_related = ["space", "user", "blocked_by"]
    raw_id_fields = ["space", "user", "blocked_by"]


def account_shown(user, kept_username: str) -> str | None:
    """An account a report names: a link while it exists, the username kept on the report once deleted."""
    if user is not None:
        return format_html('<a href="{}">@{}</a>', reverse("admin:accounts_user_change", args=[user.pk]), user)
    return f"@{kept_username} (account deleted)" if kept_username else None


@admin.register(AbuseReport)
class AbuseReportAdmin(admin.ModelAdmin):
    list_display = ["created_at", "reason", "status", "reporter_shown", "reported_shown", "space"]
    list_filter = ["status", "reason"]
    search_fields = [
        "reporter_username",
        "reported_username",
        "reporter__username",
        "reported_user__username",
        "space__title",
        "details",
    ]
    list_select_related = ["reporter", "reported_user", "space"]
    raw_id_fields = ["space"]
    fields = ["reporter_shown", "reported_shown", "space", "reason", "details", "status", "created_at"]
    readonly_fields = ["reporter_shown", "reported_shown", "space", "reason", "details", "created_at"]
    actions = ["mark_resolved", "dismiss"]

    @admin.display(description="reporter", ordering="reporter_username")
    def reporter_shown(self, report: AbuseReport) -> str | None:
        return account_shown(report.reporter, report.reporter_username)

    @admin.display(description="reported user", ordering="reported_username")
    def reported_shown(self, report: AbuseReport) -> str | None:
        return account_shown(report.reported_user, report.reported_username)

    @admin.action(description="Mark the selected reports resolved")
    def mark_resolved(self, request, queryset):
        queryset.update(status="resolved")

    @admin.action(description="Dismiss the selected reports")
    def dismiss(self, request, queryset):
        queryset.update(status="dismissed")
