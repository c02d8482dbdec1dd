"""Websocket routes of every app, mounted by asgi.py."""

from django.urls import path

from accounts.consumers import AccountConsumer
from workflows.consumers import SpaceSocket

websocket_urlpatterns = [
    path("ws/me/", AccountConsumer.as_asgi()),
    path("ws/spaces/<int:space_id>/", SpaceSocket.as_asgi()),
]
