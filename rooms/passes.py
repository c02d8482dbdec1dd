"""Who holds a pass to a ticketed space: ticketing's to say, rooms' to ask.

Rooms decide who may enter a space, hear its replay and read its transcript
(`rooms.selectors`: blocks, bans, the stage, and for a ticketed space a pass).
A pass is a paid ticket, which only ticketing knows; rooms sit below ticketing
and never import it, so the top floor gives rooms the check when the site
loads (`workflows.apps`). Without one nobody holds a pass: a ticketed space
then lets in only the people rooms admit themselves (its stage and invitees).
"""

from collections.abc import Callable

from django.db.models import QuerySet

from accounts.models import User
from rooms.models import Space

PassCheck = Callable[..., bool]
PassedSpaces = Callable[..., QuerySet]
_check: PassCheck | None = None
_spaces: PassedSpaces | None = None


def passes_checked_by(check: PassCheck, *, spaces: PassedSpaces) -> None:
    """`check(user=..., space=...)` says whether a signed-in user holds a pass to a ticketed space;
    `spaces(user=...)` is the same rule for every space at once: a subquery of the ids of the spaces
    that user holds a pass to."""
    global _check, _spaces
    _check, _spaces = check, spaces


def holds_pass(*, user: User, space: Space) -> bool:
    return user.is_authenticated and _check is not None and _check(user=user, space=space)


def spaces_passed(*, user: User) -> QuerySet:
    """The ids of the spaces `user` holds a pass to, as a subquery (none for a visitor, or without a check)."""
    if not user.is_authenticated or _spaces is None:
        return Space.objects.none().values("pk")
    return _spaces(user=user)
