"""Who holds a pass to a ticketed space: ticketing's to say, rooms' to ask.

Rooms decide who may enter a space, hear its replay and read its transcript
(`rooms.selectors`: blocks, bans, the stage, and for a ticketed space a pass).
A pass is a paid ticket, which only ticketing knows; rooms sit below ticketing
and never import it, so the top floor gives rooms the check when the site
loads (`workflows.apps`). Without one nobody holds a pass: a ticketed space
then lets in only the people rooms admit themselves (its stage and invitees).
"""

from collections.abc import Callable

from accounts.models import User
from rooms.models import Space

PassCheck = Callable[..., bool]
_check: PassCheck | None = None


def passes_checked_by(check: PassCheck) -> None:
    """`check(user=..., space=...)` says whether a signed-in user holds a pass to a ticketed space."""
    global _check
    _check = check


def holds_pass(*, user: User, space: Space) -> bool:
    return user.is_authenticated and _check is not None and _check(user=user, space=space)
