"""The follower and following counts leave deactivated accounts out too, as hosting eligibility does
(active and not banned: `accounts.models.counted_accounts`): rebuild them once from the follow rows by
that rule, as `accounts.services.follow_counts_recount` does from now on."""

from django.db import migrations
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce


def counts_without_inactive(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    Follow = apps.get_model("accounts", "Follow")
    followers = (
        Follow.objects.filter(followee=OuterRef("pk"), follower__is_active=True, follower__banned_at__isnull=True)
        .values("followee")
        .annotate(n=Count("pk"))
        .values("n")
    )
    following = (
        Follow.objects.filter(follower=OuterRef("pk"), followee__is_active=True, followee__banned_at__isnull=True)
        .values("follower")
        .annotate(n=Count("pk"))
        .values("n")
    )
    User.objects.update(
        followers_count=Coalesce(Subquery(followers), 0), following_count=Coalesce(Subquery(following), 0)
    )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_follow_counts_without_banned")]

    operations = [migrations.RunPython(counts_without_inactive, migrations.RunPython.noop, elidable=True)]
