"""The JSON shapes of spaces and participants, as websockets, snapshots and the API send them."""

from accounts.models import User
from rooms.models import Participant, Space


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
