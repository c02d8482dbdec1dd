from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts import services
from accounts.models import AuditEntry, Block, Follow, User


class BannedFilter(admin.SimpleListFilter):
    title = "banned"
    parameter_name = "banned"

    def lookups(self, request, model_admin):
        return [("yes", "Banned"), ("no", "Not banned")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(banned_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(banned_at__isnull=True)
        return queryset


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = [
        "username",
        "display_name",
        "email",
        "followers_count",
        "following_count",
        "hosting_granted",
        "is_banned",
        "is_staff",
        "date_joined",
    ]
    list_filter = ["hosting_granted", BannedFilter, "is_active", "is_staff", "is_superuser"]
    search_fields = ["username", "display_name", "email"]
    ordering = ["-date_joined"]
    readonly_fields = ["followers_count", "following_count", "banned_at", "ban_reason", "last_login", "date_joined"]
    fieldsets = [
        (None, {"fields": ["username", "password"]}),
        ("Profile", {"fields": ["display_name", "email", "bio", "avatar"]}),
        ("Graph", {"fields": ["followers_count", "following_count"]}),
        ("Hosting and moderation", {"fields": ["hosting_granted", "banned_at", "ban_reason"]}),
        ("Staff", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    actions = ["grant_hosting", "revoke_hosting", "ban", "unban", "deactivate", "reactivate"]

    def get_readonly_fields(self, request, obj=None):
        # Hosting, bans and deactivation change through the actions, so each change leaves an audit entry
        # and the follower counts of the person's ties follow it (`services.user_deactivate`).
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "hosting_granted", "is_active"] if obj is not None else fields

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        with transaction.atomic():
            self._audit_deletion(request, obj)
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        # The bulk "delete selected" action: one audit row for each account it removes.
        with transaction.atomic():
            for user in queryset:
                self._audit_deletion(request, user)
            super().delete_queryset(request, queryset)

    def _audit_deletion(self, request: HttpRequest, user: User) -> None:
        # Written before the row goes, while it still has its pk; the usernames in the details
        # keep naming both sides after either account is gone (the actor link then empties).
        services.audit_record(
            actor=request.user,
            action="accounts.user.deleted",
            subject=user,
            username=user.username,
            by=request.user.username,
        )

    @admin.display(boolean=True, description="banned")
    def is_banned(self, user: User) -> bool:
        return user.is_banned

    def _apply(self, request: HttpRequest, users: QuerySet[User], service, done: str) -> None:
        users = list(users)
        for user in users:
            service(actor=request.user, user=user)
        if users:
            self.message_user(request, f"{done}: {', '.join(u.username for u in users)}.", messages.SUCCESS)

    @admin.action(description="Grant hosting to the selected users")
    def grant_hosting(self, request, queryset):
        self._apply(request, queryset, services.hosting_grant, "Hosting granted")

    @admin.action(description="Revoke the hosting grant of the selected users")
    def revoke_hosting(self, request, queryset):
        self._apply(request, queryset, services.hosting_revoke, "Hosting grant revoked")

    @admin.action(description="Ban the selected users")
    def ban(self, request, queryset):
        if queryset.filter(pk=request.user.pk).exists():
            self.message_user(request, "You can't ban yourself.", messages.ERROR)
            return
        self._apply(
            request,
            queryset,
            lambda actor, user: services.user_ban(actor=actor, user=user, reason="Banned by staff"),
            "Banned",
        )

    @admin.action(description="Lift the ban of the selected users")
    def unban(self, request, queryset):
        self._apply(request, queryset, services.user_unban, "Unbanned")

    @admin.action(description="Deactivate the selected users (no ban)")
    def deactivate(self, request, queryset):
        if queryset.filter(pk=request.user.pk).exists():
            self.message_user(request, "You can't deactivate yourself.", messages.ERROR)
            return
        self._apply(request, queryset, services.user_deactivate, "Deactivated")

    @admin.action(description="Reactivate the selected users")
    def reactivate(self, request, queryset):
        banned = queryset.filter(banned_at__isnull=False)
        if banned.exists():
            names = ", ".join(user.username for user in banned)
            self.message_user(request, f"Banned, so not reactivated (lift the ban instead): {names}.", messages.ERROR)
        self._apply(request, queryset.filter(banned_at__isnull=True), services.user_reactivate, "Reactivated")


@admin.register(Follow)
class FollowAdmin(admin.ModelAdmin):
    list_display = ["follower", "followee", "created_at"]
    search_fields = ["follower__username", "followee__username"]
    raw_id_fields = ["follower", "followee"]
    list_select_related = ["follower", "followee"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Follows end through the services, which keep the counts right.
        return False


@admin.register(Block)
class BlockAdmin(FollowAdmin):
    list_display = ["blocker", "blocked", "created_at"]
    search_fields = ["blocker__username", "blocked__username"]
    raw_id_fields = ["blocker", "blocked"]
    list_select_related = ["blocker", "blocked"]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "action", "actor", "subject_repr", "subject_type"]
    list_filter = ["action", "subject_type"]
    search_fields = ["action", "subject_repr", "actor__username"]
    list_select_related = ["actor", "subject_type"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
