"""What happens to a space, announced for the apps above rooms to react to (`workflows.spaces`).

Each is sent inside the transaction that made the change, so a reaction that
fails rolls the change back with it, and one that wants the outcome to stand
(a notice, a push) defers itself with `transaction.on_commit`. Every signal
passes `space` (locked) and `actor` (None when the system acted).
"""

from django.dispatch import Signal

space_went_live = Signal()
space_ended = Signal()
space_cancelled = Signal()
space_rescheduled = Signal()
