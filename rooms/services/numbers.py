"""The host's numbers (PRODUCT.md §8), counted as the space runs: one UPDATE of one row per change.

Every figure is a counter on `SpaceNumbers`, added to with `F()` so
concurrent changes never lose a count and nothing scans participants,
connections or tickets when the host reads them. Apps above rooms report
their own figures (replay plays and clips from media, tickets and revenue
from ticketing) through `numbers_add`.
"""

from django.db.models import F
from django.db.models.functions import Greatest

from rooms.models import Participant, SpaceNumbers

# The figures `numbers_add` adds to, in the order pages show them (the peak is `numbers_peak`'s).
COUNTERS = (
    "unique_listeners",
    "listening_seconds",
    "speakers",
    "reactions",
    "replay_plays",
    "clips",
    "tickets_sold",
    "revenue_minor",
)


def _ensure(space_id: int) -> None:
    SpaceNumbers.objects.get_or_create(space_id=space_id)


def numbers_add(*, space_id: int, currency: str = "", **deltas: int) -> None:
    """Add to a space's counters, e.g. `numbers_add(space_id=1, clips=1)`; negative deltas take back
    (a refund). Unknown names are a programming error."""
    unknown = set(deltas) - set(COUNTERS)
    if unknown:
        raise ValueError(f"No such figure: {', '.join(sorted(unknown))}.")
    changes = {name: F(name) + delta for name, delta in deltas.items() if delta}
    if currency:
        changes["revenue_currency"] = currency
    if not changes:
        return
    if not SpaceNumbers.objects.filter(space_id=space_id).update(**changes):
        _ensure(space_id)
        SpaceNumbers.objects.filter(space_id=space_id).update(**changes)


def numbers_peak(*, space_id: int, listeners: int) -> None:
    """The listener count just sent to the room: the peak is the highest such count."""
    if not SpaceNumbers.objects.filter(space_id=space_id).update(
        peak_listeners=Greatest(F("peak_listeners"), listeners)
    ):
        _ensure(space_id)
        numbers_peak(space_id=space_id, listeners=listeners)


def numbers_stage_joined(participant: Participant) -> None:
    """Someone came on stage: a speaker of this space, counted the first time only."""
    if Participant.objects.filter(pk=participant.pk, was_on_stage=False).update(was_on_stage=True):
        participant.was_on_stage = True
        numbers_add(space_id=participant.space_id, speakers=1)
