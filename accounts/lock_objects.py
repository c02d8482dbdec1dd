"""Row locks for accounts, always taken in primary-key order so two
transactions that lock the same users never wait on each other in a cycle."""

from django.db.models import Q

from accounts.models import Follow, User


def users_for_update(*pks: int) -> list[User]:
    return list(User.objects.filter(pk__in=pks).order_by("pk").select_for_update(of=("self",)))


def user_and_ties_for_update(pk: int) -> None:
    """Lock a user with everyone they follow or who follows them (a ban's ties), without loading them."""
    ties = Follow.objects.filter(Q(follower_id=pk) | Q(followee_id=pk))
    users = User.objects.filter(Q(pk=pk) | Q(pk__in=ties.values("follower_id")) | Q(pk__in=ties.values("followee_id")))
    list(users.order_by("pk").select_for_update().values_list("pk", flat=True))
