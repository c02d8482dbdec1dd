from django.contrib import admin, messages
from django.db import models

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
        for space in queryset.filter(state=state):
            try:
                service(actor=request.user, space_id=space.pk)
            except ServiceError as error:
                self.message_user(request, f"{space}: {error.detail}", messages.ERROR)
            else:
                changed.append(space.title)
        skipped = queryset.exclude(state=state).count()
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


@admin.register(AbuseReport)
class AbuseReportAdmin(admin.ModelAdmin):
    list_display = ["created_at", "reason", "status", "reporter", "reported_user", "space"]
    list_filter = ["status", "reason"]
    search_fields = ["reporter__username", "reported_user__username", "space__title", "details"]
    list_select_related = ["reporter", "reported_user", "space"]
    raw_id_fields = ["reporter", "reported_user", "space"]
    readonly_fields = ["reporter", "reported_user", "space", "reason", "details", "created_at"]
    actions = ["mark_resolved", "dismiss"]

    @admin.action(description="Mark the selected reports resolved")
    def mark_resolved(self, request, queryset):
        queryset.update(status="resolved")

    @admin.action(description="Dismiss the selected reports")
    def dismiss(self, request, queryset):
        queryset.update(status="dismissed")
