"""Every write to accounts: sign-up, profiles, follows, blocks, bans, hosting grants, and the
password-reset e-mail (sent by `accounts.tasks`, never by the request itself when there is a broker).

Each function takes keyword-only arguments, runs in one transaction and raises
the typed errors of `accounts.errors`. Follower counts change under row locks
taken by `lock_objects.users_for_update`, so they stay exact under concurrency.
An account that doesn't count (banned or deactivated: `models.counted_accounts`,
the rule hosting eligibility counts followers by) is in nobody's counts, as it is
in nobody's lists (`selectors.followers_page`): its follows count again when the
ban is lifted or the account reactivated.
"""

import logging
from functools import partial

from django.contrib.auth.password_validation import validate_password
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, models, transaction
from django.db.models import Count, F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from rest_framework.authtoken.models import Token

from accounts import avatars, lock_objects, realtime, signals
from accounts.errors import AccountBanned, FollowBlocked, SelfBlock, SelfFollow
from accounts.models import AuditEntry, Block, Follow, User, counted_accounts

log = logging.getLogger(__name__)


def audit_record(*, actor: User | None, action: str, subject: models.Model, **details) -> AuditEntry:
    """Leave the trail of a state change: who did `action` (a dotted name) to `subject`."""
    return AuditEntry.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        subject_type=ContentType.objects.get_for_model(subject),
        subject_id=str(subject.pk),
        subject_repr=str(subject)[:200],
        details=details,
    )


def user_signup(*, username: str, email: str, password: str, display_name: str = "") -> User:
    """Create an account. The caller has validated the username format and uniqueness."""
    user = User(username=username, email=email, display_name=display_name or username)
    validate_password(password, user)
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    return user


def profile_update(*, user: User, **fields) -> User:
    """Change the editable parts of a profile: display name, bio, avatar.

    A new avatar (an uploaded file) is checked and stored resized (`accounts.avatars`); a false
    one (None, "", or a form's "clear") removes it. The file it replaces is deleted from storage
    once the change is committed, never before, so a rolled-back change keeps its picture.
    """
    allowed = {"display_name", "bio", "avatar"}
    unknown = set(fields) - allowed
    if unknown:
        raise TypeError(f"profile_update() got unexpected fields: {sorted(unknown)}")
    if "avatar" in fields:
        # Decoded here, before the transaction, so no row lock waits on Pillow.
        fields["avatar"] = _avatar_resized(fields["avatar"]) if fields["avatar"] else ""
    with transaction.atomic():
        # Under the row lock, so of two racing uploads each deletes the file the other replaced.
        (stored,) = lock_objects.users_for_update(user.pk)
        for name, value in fields.items():
            setattr(user, name, value)
        user.full_clean(exclude=["password"])
        user.save(update_fields=list(fields))
        replaced = stored.avatar
        if "avatar" in fields and replaced and replaced.name != user.avatar.name:
            transaction.on_commit(partial(replaced.storage.delete, replaced.name), robust=True)
    return user


def _avatar_resized(upload) -> File:
    try:
        return avatars.avatar_resized(upload)
    except ValidationError as error:
        raise ValidationError({"avatar": error.error_list}) from error


def follow_create(*, follower: User, followee: User) -> bool:
    """`follower` follows `followee`. Idempotent: returns False if already following."""
    if follower.pk == followee.pk:
        raise SelfFollow("You can't follow yourself.")

    with transaction.atomic():
        # The same locks as user_block, so a block and a follow can't cross.
        locked = {user.pk: user for user in lock_objects.users_for_update(follower.pk, followee.pk)}
        if Block.objects.filter(blocker=follower, blocked=followee).exists():
            raise FollowBlocked(f"You blocked @{followee.username}. Unblock them to follow.")
        if Block.objects.filter(blocker=followee, blocked=follower).exists():
            raise FollowBlocked(f"You can't follow @{followee.username}.")
        try:
            with transaction.atomic():
                Follow.objects.create(follower=follower, followee=followee)
        except IntegrityError:
            return False
        _follow_counted(follower=locked[follower.pk], followee=locked[followee.pk], by=1)
    return True


def follow_delete(*, follower: User, followee: User) -> bool:
    """`follower` stops following `followee`. Idempotent: returns False if not following."""
    with transaction.atomic():
        locked = {user.pk: user for user in lock_objects.users_for_update(follower.pk, followee.pk)}
        deleted, _ = Follow.objects.filter(follower=follower, followee=followee).delete()
        if not deleted:
            return False
        _follow_counted(follower=locked[follower.pk], followee=locked[followee.pk], by=-1)
    return True


def _follow_counted(*, follower: User, followee: User, by: int) -> None:
    """A follow made (`by=1`) or ended (`by=-1`) in the two counts: the followee's followers if the
    follower counts (active, not banned), the follower's following if the followee does (the two users
    locked, fresh)."""
    if follower.is_counted:
        User.objects.filter(pk=followee.pk).update(followers_count=F("followers_count") + by)
    if followee.is_counted:
        User.objects.filter(pk=follower.pk).update(following_count=F("following_count") + by)


def user_block(*, blocker: User, blocked: User) -> bool:
    """`blocker` blocks `blocked`: follows both ways end, and the apps above hear of it
    (`signals.user_blocked`, inside this transaction) to act on it where they must. Idempotent."""
    if blocker.pk == blocked.pk:
        raise SelfBlock("You can't block yourself.")
    with transaction.atomic():
        locked = {user.pk: user for user in lock_objects.users_for_update(blocker.pk, blocked.pk)}
        _, created = Block.objects.get_or_create(blocker=blocker, blocked=blocked)
        if not created:
            return False
        for follower, followee in ((blocker, blocked), (blocked, blocker)):
            deleted, _ = Follow.objects.filter(follower=follower, followee=followee).delete()
            if deleted:
                _follow_counted(follower=locked[follower.pk], followee=locked[followee.pk], by=-1)
        audit_record(actor=blocker, action="accounts.user.blocked", subject=blocked)
        signals.user_blocked.send(sender=User, blocker=blocker, blocked=blocked)
    return True


def user_unblock(*, blocker: User, blocked: User) -> bool:
    """Lift a block. Follows it ended stay ended. Idempotent."""
    with transaction.atomic():
        deleted, _ = Block.objects.filter(blocker=blocker, blocked=blocked).delete()
        if deleted:
            audit_record(actor=blocker, action="accounts.user.unblocked", subject=blocked)
    return bool(deleted)


def user_ban(*, actor: User, user: User, reason: str = "") -> User:
    """Ban `user`: no login, no API, no websockets. Their tokens and sessions stop working, and they
    leave the follower and following counts of the people they follow and who follow them."""
    with transaction.atomic():
        user = _lock_with_ties(user)
        if user.is_banned:
            return user
        was_counted = user.is_counted  # not if staff had deactivated the account already
        user.banned_at = timezone.now()
        user.ban_reason = reason[:200]
        user.is_active = False
        user.save(update_fields=["banned_at", "ban_reason", "is_active"])
        if was_counted:
            _ties_counted(user=user, by=-1)
        Token.objects.filter(user=user).delete()
        audit_record(actor=actor, action="accounts.user.banned", subject=user, reason=reason)
        transaction.on_commit(lambda: realtime.user_disconnect(user.pk))
    return user


def user_unban(*, actor: User, user: User) -> User:
    """Lift a ban; the user may log in again, and their follows count again."""
    with transaction.atomic():
        user = _lock_with_ties(user)
        if not user.is_banned:
            return user
        user.banned_at = None
        user.ban_reason = ""
        user.is_active = True
        user.save(update_fields=["banned_at", "ban_reason", "is_active"])
        _ties_counted(user=user, by=1)
        audit_record(actor=actor, action="accounts.user.unbanned", subject=user)
    return user


def user_deactivate(*, actor: User, user: User) -> User:
    """Deactivate `user` without banning them (Django's "instead of deleting"): no sign-in, no API, their
    websockets closed, and, as with a ban, they leave the follower and following counts of the people
    they follow and who follow them (`models.counted_accounts`). Idempotent."""
    with transaction.atomic():
        user = _lock_with_ties(user)
        if not user.is_active:
            return user
        user.is_active = False
        user.save(update_fields=["is_active"])
        _ties_counted(user=user, by=-1)
        audit_record(actor=actor, action="accounts.user.deactivated", subject=user)
        transaction.on_commit(
            lambda: realtime.user_disconnect(
                user.pk, code="account_inactive", detail="This account has been deactivated."
            )
        )
    return user


def user_reactivate(*, actor: User, user: User) -> User:
    """Let a deactivated account back in: it may sign in again and its follows count again. Idempotent.
    A banned account comes back only by lifting the ban (`user_unban`): `AccountBanned` here."""
    with transaction.atomic():
        user = _lock_with_ties(user)
        if user.is_banned:
            raise AccountBanned(f"@{user.username} is banned: lift the ban to let them back.")
        if user.is_active:
            return user
        user.is_active = True
        user.save(update_fields=["is_active"])
        _ties_counted(user=user, by=1)
        audit_record(actor=actor, action="accounts.user.reactivated", subject=user)
    return user


def _lock_with_ties(user: User) -> User:
    """Lock `user` with everyone they follow or who follows them, in `pk` order like the follow
    services' locks (a follow or block involving `user` waits for the lock on `user`, so the ties can't
    change while it is held); returns `user`, fresh."""
    lock_objects.user_and_ties_for_update(user.pk)
    return User.objects.get(pk=user.pk)


def _ties_counted(*, user: User, by: int) -> None:
    """`user` leaves (`by=-1`: banned or deactivated) or comes back to (`by=1`) the counts of the people
    they follow and who follow them, whatever those people's own standing: a follow counts on one side
    by whether the other side counts (`_follow_counted`, the recount)."""
    followed = Follow.objects.filter(follower=user).values("followee_id")
    User.objects.filter(pk__in=followed).update(followers_count=F("followers_count") + by)
    following = Follow.objects.filter(followee=user).values("follower_id")
    User.objects.filter(pk__in=following).update(following_count=F("following_count") + by)


def hosting_grant(*, actor: User, user: User) -> User:
    """Staff let `user` host whatever their follower count."""
    return _set_hosting_granted(actor=actor, user=user, granted=True)


def hosting_revoke(*, actor: User, user: User) -> User:
    """Take back a staff grant; the follower rule applies again."""
    return _set_hosting_granted(actor=actor, user=user, granted=False)


def _set_hosting_granted(*, actor: User, user: User, granted: bool) -> User:
    with transaction.atomic():
        (user,) = lock_objects.users_for_update(user.pk)
        if user.hosting_granted == granted:
            return user
        user.hosting_granted = granted
        user.save(update_fields=["hosting_granted"])
        action = "accounts.hosting.granted" if granted else "accounts.hosting.revoked"
        audit_record(actor=actor, action=action, subject=user)
    return user


def follow_counts_recount(*, user_ids: list[int] | None = None) -> int:
    """Rebuild follower and following counts from the follow rows, leaving out the accounts that don't
    count (banned or deactivated: `models.counted_accounts`) as the services do. Returns users updated.
    Run it after changing `is_active` or `banned_at` anywhere but these services (the shell, SQL)."""
    followers = (
        Follow.objects.filter(counted_accounts("follower__"), followee=OuterRef("pk"))
        .values("followee")
        .annotate(n=Count("pk"))
        .values("n")
    )
    following = (
        Follow.objects.filter(counted_accounts("followee__"), follower=OuterRef("pk"))
        .values("follower")
        .annotate(n=Count("pk"))
        .values("n")
    )
    users = User.objects.all() if user_ids is None else User.objects.filter(pk__in=user_ids)
    return users.update(
        followers_count=Coalesce(Subquery(followers), 0),
        following_count=Coalesce(Subquery(following), 0),
    )


def password_reset_email_send(
    *, to_email: str, subject: str, body: str, html_body: str | None = None, from_email: str | None = None
) -> None:
    """Send one password-reset e-mail, already rendered, through the configured backend.

    Raises OSError when it doesn't go (smtplib's errors and socket timeouts are OSErrors). The
    SMTP backend waits at most EMAIL_TIMEOUT seconds to connect and for each of the server's
    answers, so a server that accepts and never answers fails after about that long.
    """
    message = EmailMultiAlternatives(subject=subject, body=body, from_email=from_email, to=[to_email])
    if html_body:
        message.attach_alternative(html_body, "text/html")
    message.send()


def password_reset_email_failed(*, user_id: int, error: OSError, attempts: int) -> None:
    """Report a password-reset e-mail given up on: an error in the log and an audit row
    (`accounts.password_reset.email_failed`) on the account, which staff read in the admin.
    The person can ask for another one from the form."""
    message = f"{type(error).__name__}: {error}"[:2000]
    log.error("Password-reset e-mail to user %s not sent after %s attempt(s): %s", user_id, attempts, message)
    user = User.objects.filter(pk=user_id).first()
    if user is not None:  # deleted since it was asked for: the log line is all there is to say
        audit_record(
            actor=None, action="accounts.password_reset.email_failed", subject=user, error=message, attempts=attempts
        )
