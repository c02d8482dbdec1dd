"""Channel-layer groups for people, shared by the services that send and the consumers that listen."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer


def user_group(user_id: int) -> str:
    """Every websocket a user has open joins this group."""
    return f"user.{user_id}"


def user_disconnect(
    user_id: int, *, code: str = "account_banned", detail: str = "This account has been banned."
) -> None:
    """Close every websocket the user has open (after a ban, or a deactivation), each socket sending the
    error `code` and `detail` first. The event keeps the name it had when only bans sent it."""
    async_to_sync(get_channel_layer().group_send)(
        user_group(user_id), {"type": "account.banned", "code": code, "detail": detail}
    )
