"""The JSON shape of a notification, as the API lists it and `/ws/me/` pushes it."""

from scheduling.models import Notification


def notification_payload(notification: Notification) -> dict:
    return {
        "id": notification.pk,
        "kind": notification.kind,
        "title": notification.title,
        "body": notification.body,
        "url": notification.url,
        "space": notification.space_id,
        "created_at": notification.created_at.isoformat(),
        "read": notification.read_at is not None,
    }
