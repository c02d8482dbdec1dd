"""Rooms: spaces, roles, co-hosting and their websockets (issue: rooms)."""
