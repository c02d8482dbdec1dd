"""Row locks for scheduling, in primary-key order like every app's.

Deliveries are mostly claimed with a conditional UPDATE instead of a lock;
the lock here is for the short transaction that turns claimed in-app
deliveries into notifications, so a sweep can't hand them to someone else
half-way.
"""

from uuid import UUID

from django.db.models import QuerySet

from scheduling.models import Delivery, DeliveryState


def claimed_deliveries_for_update(*, ids: list[int], token: UUID) -> QuerySet[Delivery]:
    return (
        Delivery.objects.filter(pk__in=ids, claim_token=token, state=DeliveryState.CLAIMED)
        .order_by("pk")
        .select_for_update(of=("self",))
    )
