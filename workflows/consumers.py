"""The websockets whose work spans apps, put together from each app's part."""

from media.sockets import MediaSignalling
from rooms.consumers import SpaceConsumer


class SpaceSocket(MediaSignalling, SpaceConsumer):
    """`/ws/spaces/<id>/`: the room's socket (`rooms.consumers`) with its audio signalling (`media.sockets`)."""
