"""Demo data: people around the hosting threshold, a staff user, real follows, and spaces."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts.models import Follow, User
from accounts.services import follow_counts_recount
from rooms.services import space_create
from workflows import demo_payments

DEMO_PASSWORD = "spaces-demo-2026"
ADMIN_PASSWORD = "spaces-admin-2026"

# How long ago the demo's people joined and followed each other.
DEMO_AGE_D = 90
# username, display name, bio, followers wanted, staff hosting grant
PEOPLE = [
    ("maya", "Maya Lin", "Product designer. Hosts Friday design crits.", 1240, False),
    ("leo", "Leo Park", "Indie music and the business of it.", 601, False),
    ("ivy", "Ivy Chen", "Climate tech, one conversation at a time.", 599, False),
    ("nora", "Nora Adeyemi", "Community radio veteran.", 12, True),
    ("alex", "Alex Rivera", "Here to listen.", 3, False),
]
# Follows among the named people; listener accounts make up the rest of each count.
NAMED_FOLLOWS = [("alex", "maya"), ("alex", "leo"), ("ivy", "maya"), ("leo", "maya"), ("maya", "leo"), ("maya", "alex")]
LISTENER_PREFIX = "listener_"


class Command(BaseCommand):
    help = "Create demo users with real follower counts (idempotent) and print their logins."

    def handle(self, *args, **options):
        if User.objects.filter(username="maya").exists():
            self.stdout.write("Demo data is already there.")
        else:
            with transaction.atomic():
                self._seed()
            self.stdout.write(self.style.SUCCESS("Demo data created."))
        self._print_logins()

    def _seed(self) -> None:
        password = make_password(DEMO_PASSWORD)
        User.objects.create_superuser(
            username="admin", email="admin@spaces.local", password=ADMIN_PASSWORD, display_name="Spaces Staff"
        )
        named = {}
        for username, name, bio, _, granted in PEOPLE:
            named[username] = User.objects.create(
                username=username,
                display_name=name,
                bio=bio,
                email=f"{username}@spaces.local",
                password=password,
                hosting_granted=granted,
            )

        needed = max(wanted for *_, wanted, _ in PEOPLE)
        User.objects.bulk_create(
            User(
                username=f"{LISTENER_PREFIX}{n:04d}",
                display_name=f"Listener {n}",
                email=f"{LISTENER_PREFIX}{n:04d}@spaces.local",
                password=password,
            )
            for n in range(1, needed + 1)
        )
        listeners = list(User.objects.filter(username__startswith=LISTENER_PREFIX).order_by("username"))

        follows = [Follow(follower=named[a], followee=named[b]) for a, b in NAMED_FOLLOWS]
        for username, *_, wanted, _ in PEOPLE:
            already = sum(1 for _, followee in NAMED_FOLLOWS if followee == username)
            follows += [Follow(follower=f, followee=named[username]) for f in listeners[: wanted - already]]
        Follow.objects.bulk_create(follows, batch_size=1000)
        # The demo's people have been around a while, so their followers count toward hosting
        # (only followers older than SPACES_FOLLOWER_MIN_AGE_H do).
        long_ago = timezone.now() - timedelta(days=DEMO_AGE_D)
        User.objects.filter(pk__in=[u.pk for u in [*named.values(), *listeners]]).update(date_joined=long_ago)
        Follow.objects.filter(followee__in=named.values()).update(created_at=long_ago)
        follow_counts_recount()
        self._seed_spaces({user.username: user for user in User.objects.filter(username__in=named)})

    def _seed_spaces(self, named: dict[str, User]) -> None:
        if settings.SPACES_DEMO_PAYMENTS:
            demo_payments.past_spaces(named["maya"])
        space_create(host=named["maya"], title="Friday design crit", topics=["design", "ux"])
        if settings.SPACES_DEMO_PAYMENTS:
            demo_payments.ticketed_space(named["maya"], buyer=named["alex"])
        space_create(
            host=named["leo"],
            title="Indie music: the business of it",
            topics=["music", "business"],
            scheduled_for=timezone.now() + timedelta(days=1, hours=2),
        )

    def _print_logins(self) -> None:
        self.stdout.write(f"\nLog in at {settings.SITE_URL}/accounts/login/ as any of:\n")
        self.stdout.write(f"  {'username':<10} {'password':<18} {'followers':>9}  note")
        rows = [("admin", ADMIN_PASSWORD, "staff; the admin is at /admin/")]
        notes = {
            "maya": "can host (well above the threshold); live now"
            + ("; sells tickets (demo payments)" if settings.SPACES_DEMO_PAYMENTS else ""),
            "leo": "can host (just above the threshold)",
            "ivy": "can't host yet (just below the threshold)",
            "nora": "can host: staff granted hosting",
            "alex": "a listener"
            + ("; holds a ticket to maya's ticketed space" if settings.SPACES_DEMO_PAYMENTS else ""),
        }
        rows += [(username, DEMO_PASSWORD, notes[username]) for username, *_ in PEOPLE]
        counts = dict(User.objects.filter(username__in=[r[0] for r in rows]).values_list("username", "followers_count"))
        for username, password, note in rows:
            self.stdout.write(f"  {username:<10} {password:<18} {counts.get(username, 0):>9}  {note}")
