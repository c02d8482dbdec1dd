"""The JSON shapes of spaces and participants, as websockets, snapshots and the API send them."""

from accounts.models import User
from rooms.models import Participant, Space, SpaceNumbers


def user_payload(user: User) -> dict:
    return {"username": user.username, "name": user.name, "avatar_url": user.avatar_url}


def participant_payload(participant: Participant, *, present: bool = True) -> dict:
    return {
        "user": user_payload(participant.user),
        "role": participant.role,
        "muted": participant.muted,
        "hand_raised": participant.hand_raised_at is not None,
        "invited": participant.invited_at is not None,
        "present": present,
    }


def space_payload(space: Space) -> dict:
    return {
        "id": space.pk,
        "title": space.title,
        "topics": space.topic_list,
        "pinned_link": space.pinned_link,
        "state": space.state,
        "host": user_payload(space.host),
        "speak_policy": space.speak_policy,
        "captions_enabled": space.captions_enabled,
        "recording_enabled": space.recording_enabled,
        "is_ticketed": space.is_ticketed,
        "scheduled_for": space.scheduled_for.isoformat() if space.scheduled_for else None,
        "started_at": space.started_at.isoformat() if space.started_at else None,
        "ended_at": space.ended_at.isoformat() if space.ended_at else None,
        "url": space.get_absolute_url(),
    }


def numbers_payload(space: Space, numbers: SpaceNumbers | None) -> dict:
    """The host's numbers for one space (PRODUCT.md §8)."""
    numbers = numbers or SpaceNumbers(space=space)
    return {
        "space": {"id": space.pk, "title": space.title, "state": space.state, "url": space.get_absolute_url()},
        "started_at": space.started_at.isoformat() if space.started_at else None,
        "ended_at": space.ended_at.isoformat() if space.ended_at else None,
        "peak_listeners": numbers.peak_listeners,
        "unique_listeners": numbers.unique_listeners,
        "minutes_listened": numbers.minutes_listened,
        "speakers": numbers.speakers,
        "reactions": numbers.reactions,
        "replay_plays": numbers.replay_plays,
        "clips": numbers.clips,
        "tickets_sold": numbers.tickets_sold if space.is_ticketed else None,
        "revenue_minor": numbers.revenue_minor if space.is_ticketed else None,
        "revenue_currency": numbers.revenue_currency if space.is_ticketed else None,
    }
