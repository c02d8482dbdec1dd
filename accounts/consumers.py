"""The signed-in user's own websocket, `/ws/me/`.

It carries what concerns the person rather than a space: a ban, and new
in-app notifications (`notification` events, sent by `scheduling.realtime`).
Every consumer a user opens joins the group `user.<id>`, so a ban closes all
of them at once. `SteadyConsumer` carries it through a Redis or database outage.
"""

from accounts.realtime import user_group
from spaces_site.sockets import SteadyConsumer

# Close codes in the 4000 range are ours; docs/websocket.md lists them.
CLOSE_NOT_AUTHENTICATED = 4401
CLOSE_BANNED = 4403


class AccountConsumer(SteadyConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_NOT_AUTHENTICATED)
            return
        await self.join_group(user_group(user.pk))
        await self.accept()
        await self.send_json({"type": "hello", "user": {"username": user.username, "name": user.name}})

    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})
            return
        await self.send_json({"type": "error", "code": "unknown_type", "detail": "This socket only answers ping."})

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if text_data is None:
            await self.send_json({"type": "error", "code": "bad_frame", "detail": "Send JSON text frames."})
            return
        try:
            content = await self.decode_json(text_data)
        except ValueError:
            await self.send_json({"type": "error", "code": "bad_json", "detail": "That frame is not JSON."})
            return
        await self.receive_json(content, **kwargs)

    async def account_banned(self, event):
        await self.send_json(
            {
                "type": "error",
                "code": event.get("code", "account_banned"),
                "detail": event.get("detail", "This account has been banned."),
            }
        )
        await self.close(code=CLOSE_BANNED)

    async def notification_new(self, event):
        await self.send_json({"type": "notification", "notification": event["notification"]})
