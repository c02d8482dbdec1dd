import secrets
from collections.abc import Mapping

from django.contrib.auth.models import AbstractUser, UserManager
from django.contrib.contenttypes.models import ContentType
from django.core.validators import FileExtensionValidator, MaxLengthValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower

from accounts.avatars import avatar_validate
from spaces_site import url_paths

DISPLAY_NAME_MAX = 50
BIO_MAX = 160
USERNAME_MAX = 30

username_validator = RegexValidator(
    r"^[A-Za-z0-9_]{2,30}\Z",
    "A username has 2 to 30 letters, digits or underscores.",
    code="invalid_username",
)


AVATAR_EXTENSIONS = ["jpg", "jpeg", "png", "gif", "webp"]


# A person's addresses, which follow from their username alone (`User.paths`).
PERSON_ROUTES = (
    ("profile", "profile"),
    ("avatar", "avatar-fallback"),
    ("follow", "follow"),
    ("unfollow", "unfollow"),
    ("api_follow", "api-follow"),
)


def validate_avatar_size(file) -> None:
    """Bytes and pixels (the latter from the header) within the limits; see `accounts.avatars`."""
    if getattr(file, "_committed", False):
        return  # Already stored, so checked when it came in; reading it back would cost a storage fetch.
    avatar_validate(file)


def avatar_upload_to(user: "User", filename: str) -> str:
    # A fresh name for each upload: the old file is deleted once the new one is committed, so the
    # two must never share a name, and a new name is a new URL that no cache holds.
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else "png"
    return f"avatars/{user.pk}/{secrets.token_hex(8)}.{extension}"


def counted_accounts(prefix: str = "") -> Q:
    """The accounts that count in other people's follower and following numbers and toward hosting
    thresholds: active and not banned (a ban deactivates too, but staff may deactivate an account
    without banning it). `prefix` reaches them through a relation (`"follower__"`)."""
    return Q(**{f"{prefix}is_active": True, f"{prefix}banned_at__isnull": True})


class SpacesUserManager(UserManager):
    def get_by_natural_key(self, username):
        # Logins ignore case, as usernames are unique regardless of case.
        return self.get(username__iexact=username)


class User(AbstractUser):
    """A person on Spaces.

    `followers_count` and `following_count` are kept by the follow services in
    the same transaction as the follow rows, under row locks, and count only
    ties to accounts that count (`counted_accounts`: active, not banned); the
    services that ban, unban, deactivate and reactivate an account move it out
    of or back into its ties' counts. `accounts.services.follow_counts_recount`
    rebuilds them from the rows by the same rule (no command: call it from
    `manage.py shell`, as `seed_demo` does in code).
    """

    username = models.CharField(
        max_length=USERNAME_MAX,
        unique=True,
        validators=[username_validator],
        help_text="2 to 30 letters, digits or underscores.",
        error_messages={"unique": "That username is taken."},
    )
    display_name = models.CharField(max_length=DISPLAY_NAME_MAX, blank=True)
    bio = models.TextField(blank=True, validators=[MaxLengthValidator(BIO_MAX)])
    avatar = models.ImageField(
        upload_to=avatar_upload_to,
        blank=True,
        validators=[FileExtensionValidator(AVATAR_EXTENSIONS), validate_avatar_size],
    )
    followers_count = models.PositiveIntegerField(default=0)
    following_count = models.PositiveIntegerField(default=0)
    hosting_granted = models.BooleanField(
        default=False,
        help_text="Staff let this user host whatever their follower count.",
    )
    banned_at = models.DateTimeField(null=True, blank=True)
    ban_reason = models.CharField(max_length=200, blank=True)

    objects = SpacesUserManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("username"), name="user_username_ci_unique"),
            models.CheckConstraint(
                condition=Q(banned_at__isnull=True) | Q(is_active=False),
                name="user_banned_is_inactive",
            ),
        ]
        indexes = [
            # "People to follow" (`selectors.people_to_follow`): the most followed first, read in index
            # order and stopped at the page's few, whatever the number of people.
            models.Index(
                fields=["-followers_count", "id"],
                condition=Q(is_active=True, is_staff=False, followers_count__gt=0),
                name="user_popular",
            ),
        ]

    def __str__(self) -> str:
        return self.username

    @property
    def name(self) -> str:
        return self.display_name or self.username

    @property
    def is_banned(self) -> bool:
        return self.banned_at is not None

    @property
    def is_counted(self) -> bool:
        """Whether this account counts in other people's follower and following numbers (`counted_accounts`)."""
        return self.is_active and not self.is_banned

    @property
    def paths(self) -> Mapping[str, str]:
        """Where this person's profile, generated picture and follow actions are."""
        return url_paths.paths(PERSON_ROUTES, username=self.username)

    @property
    def avatar_url(self) -> str:
        if self.avatar:
            return self.avatar.url
        return self.paths["avatar"]

    def get_absolute_url(self) -> str:
        return self.paths["profile"]


class Follow(models.Model):
    follower = models.ForeignKey(User, on_delete=models.CASCADE, related_name="following_set")
    followee = models.ForeignKey(User, on_delete=models.CASCADE, related_name="follower_set")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["follower", "followee"], name="follow_once"),
            models.CheckConstraint(condition=~Q(follower=F("followee")), name="follow_not_self"),
        ]
        indexes = [
            models.Index(fields=["followee", "-created_at"]),
            # Someone's "following" page, newest first, a page at a time.
            models.Index(fields=["follower", "-created_at"], name="follow_following_list"),
        ]

    def __str__(self) -> str:
        return f"{self.follower} follows {self.followee}"


class Block(models.Model):
    """`blocker` blocked `blocked`: no follows between them, no entry to the blocker's spaces."""

    blocker = models.ForeignKey(User, on_delete=models.CASCADE, related_name="blocks_made")
    blocked = models.ForeignKey(User, on_delete=models.CASCADE, related_name="blocks_received")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["blocker", "blocked"], name="block_once"),
            models.CheckConstraint(condition=~Q(blocker=F("blocked")), name="block_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.blocker} blocked {self.blocked}"


class AuditEntry(models.Model):
    """Who did what to which object, and when: the trail staff read in the admin.

    `action` is a dotted name (`accounts.user.banned`, `rooms.space.ended`).
    """

    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=100, db_index=True)
    subject_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    subject_id = models.CharField(max_length=64)
    subject_repr = models.CharField(max_length=200)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name_plural = "audit entries"
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["subject_type", "subject_id"])]

    def __str__(self) -> str:
        return f"{self.action} {self.subject_repr}"
