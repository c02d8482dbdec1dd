"""Live pushes of new notifications to the owner's open pages, over the per-user group.

Every websocket a signed-in person opens joins `accounts.realtime.user_group`;
`/ws/me/` turns a `notification.new` message into a `notification` event
(docs/websocket.md). A push is best effort: the stored notification is the
record, and a page that missed one sees it in the list and the bell's count.
"""

import asyncio

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from accounts.realtime import user_group
from scheduling.models import Notification
from scheduling.payloads import notification_payload

# Group sends in flight at once; each is a few Redis round trips with the Redis layer.
CONCURRENT_SENDS = 100


def notifications_push(notifications: list[Notification]) -> None:
    layer = get_channel_layer()
    if layer is None or not notifications:
        return
    messages = [
        (user_group(n.user_id), {"type": "notification.new", "notification": notification_payload(n)})
        for n in notifications
    ]

    async def send_all() -> None:
        for start in range(0, len(messages), CONCURRENT_SENDS):
            batch = messages[start : start + CONCURRENT_SENDS]
            await asyncio.gather(*(layer.group_send(group, message) for group, message in batch))

    async_to_sync(send_all)()
