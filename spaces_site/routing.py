"""Websocket routes of every app, mounted by asgi.py."""

from django.urls import path

from accounts.consumers import AccountConsumer

websocket_urlpatterns = [
    path("ws/me/", AccountConsumer.as_asgi()),
]
