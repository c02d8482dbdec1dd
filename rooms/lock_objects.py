"""Row locks for rooms. Every path that changes a space's stage locks the space
row first, then participants in `pk` order, so stage limits are counted under
one lock and two paths never wait on each other in a cycle."""

from django.db.models import QuerySet

from rooms.models import Participant, Space


def space_for_update(space_id: int) -> Space:
    return Space.objects.select_for_update(of=("self",)).select_related("host").get(pk=space_id)


def participants_for_update(space_id: int, user_ids: list[int]) -> QuerySet[Participant]:
    return (
        Participant.objects.filter(space_id=space_id, user_id__in=user_ids)
        .select_related("user")
        .order_by("pk")
        .select_for_update(of=("self",))
    )
