"""What happens to people, announced for the apps above accounts to react to (`workflows.blocks`).

Sent inside the transaction that made the change, as `rooms.signals` are, so a
reaction's writes stand or fall with it, and one that must only follow a
committed change (a push to a socket) defers itself with `transaction.on_commit`.
"""

from django.dispatch import Signal

# `blocker` blocked `blocked` (a new block, not a repeated one); sender: the User model.
user_blocked = Signal()
