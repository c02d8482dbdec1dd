"""Staff see every recording and clip and can delete any (files with them)."""

from django.contrib import admin

from media.models import Clip, Recording
from media.recording.services import delete_with_file


class _FileRowAdmin(admin.ModelAdmin):
    """Deleting here deletes the file in storage too (Django's admin would leave it behind)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        delete_with_file(obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for row in queryset:
            delete_with_file(row, actor=request.user)


@admin.register(Recording)
class RecordingAdmin(_FileRowAdmin):
    list_display = [
        "pk",
        "space",
        "state",
        "started_at",
        "duration_ms",
        "size_bytes",
        "ended_early",
        "plays",
        "expires_at",
    ]
    list_filter = ["state", "ended_early"]
    search_fields = ["space__title", "space__host__username"]
    list_select_related = ["space"]
    date_hierarchy = "started_at"


@admin.register(Clip)
class ClipAdmin(_FileRowAdmin):
    list_display = ["token", "space", "maker", "state", "start_ms", "end_ms", "created_at", "expires_at"]
    list_filter = ["state"]
    search_fields = ["token", "space__title", "maker__username"]
    list_select_related = ["space", "maker"]
    date_hierarchy = "created_at"
