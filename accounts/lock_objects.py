"""Row locks for accounts, always taken in primary-key order so two
transactions that lock the same users never wait on each other in a cycle."""

from accounts.models import User


def users_for_update(*pks: int) -> list[User]:
    return list(User.objects.filter(pk__in=pks).order_by("pk").select_for_update(of=("self",)))
