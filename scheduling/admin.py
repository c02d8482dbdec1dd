from django.contrib import admin, messages
from django.db.models import Count

from rooms import services as rooms_services
from scheduling import services
from scheduling.models import (
    Announcement,
    Delivery,
    DeliveryState,
    Notification,
    NotificationPreference,
    Reminder,
    ScheduledSpace,
)
from spaces_site.errors import ServiceError


@admin.register(ScheduledSpace)
class ScheduledSpaceAdmin(admin.ModelAdmin):
    """Spaces waiting for their start, soonest first, with how many people asked to be reminded."""

    list_display = ["title", "host", "scheduled_for", "is_ticketed", "reminders_count"]
    search_fields = ["title", "host__username"]
    list_select_related = ["host"]
    ordering = ["scheduled_for"]
    date_hierarchy = "scheduled_for"
    fields = ["title", "host", "scheduled_for", "is_ticketed", "created_at", "reminders_count"]
    readonly_fields = fields
    actions = ["cancel"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(state="scheduled").annotate(reminders_total=Count("reminders"))

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="reminders", ordering="reminders_total")
    def reminders_count(self, space) -> int:
        return space.reminders_total

    @admin.action(description="Cancel the selected spaces (reminder holders are told, tickets refunded)")
    def cancel(self, request, queryset):
        for space in queryset:
            try:
                rooms_services.space_cancel(actor=request.user, space_id=space.pk)
            except ServiceError as error:
                self.message_user(request, f"{space}: {error.detail}", messages.ERROR)
            else:
                self.message_user(request, f"Cancelled: {space}.", messages.SUCCESS)


@admin.register(Reminder)
class ReminderAdmin(admin.ModelAdmin):
    list_display = ["user", "space", "created_at"]
    search_fields = ["user__username", "space__title"]
    list_select_related = ["user", "space"]
    raw_id_fields = ["user", "space"]
    date_hierarchy = "created_at"


@admin.register(Announcement)
class AnnouncementAdmin(admin.ModelAdmin):
    list_display = ["space", "occasion", "round", "state", "deliveries_count", "created_at", "planned_at"]
    list_filter = ["state", "occasion"]
    search_fields = ["space__title"]
    list_select_related = ["space"]
    readonly_fields = [f.name for f in Announcement._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "user", "space", "kind", "channel", "round", "state", "attempts", "sent_at"]
    list_filter = ["state", "channel", "kind"]
    search_fields = ["user__username", "space__title", "error"]
    list_select_related = ["user", "space"]
    readonly_fields = [f.name for f in Delivery._meta.fields]
    actions = ["retry"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Send the selected failed deliveries again")
    def retry(self, request, queryset):
        failed = list(queryset.filter(state=DeliveryState.FAILED).values_list("pk", flat=True))
        skipped = queryset.exclude(state=DeliveryState.FAILED).count()
        changed = services.delivery_retry(actor=request.user, delivery_ids=failed)
        self.message_user(request, f"{changed} failed deliveries queued again.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} selected deliveries had not failed; left alone.", messages.WARNING)


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "user", "kind", "title", "read_at"]
    list_filter = ["kind"]
    search_fields = ["user__username", "title"]
    list_select_related = ["user"]
    raw_id_fields = ["user", "space", "delivery"]
    date_hierarchy = "created_at"


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "updated_at"]
    search_fields = ["user__username"]
    raw_id_fields = ["user"]
