"""A small copy of the site at scale (issue 16): `n` of everything a page lists, so that a test can
compare what a page costs with 1 and with 50 of each."""

from dataclasses import dataclass
from datetime import timedelta

from django.test import Client
from django.utils import timezone

from accounts import services as accounts_services
from accounts.models import User
from rooms import services as rooms_services
from rooms.models import Role, Space
from scheduling.models import Kind, Notification
from scheduling.services import reminder_set
from tests.factories import UserFactory
from tests.rooms.scene import make_host, make_space, seat


@dataclass
class World:
    viewer: User  # follows every live host, holds a reminder on every scheduled space
    star: User  # has `n` followers
    room: Space  # a live space with `n` people in it


def build_world(n: int) -> World:
    viewer = UserFactory(username="viewer")
    for i in range(n):
        host = make_host(username=f"host{i}")
        accounts_services.follow_create(follower=viewer, followee=host)
        space = make_space(host=host, title=f"Music night {i}", topics=["music"])
        rooms_services.connection_open(space=space, participant=None, channel_name=f"visitor-{i}")
        later = make_space(host=host, title=f"Music later {i}", scheduled_for=timezone.now() + timedelta(days=1))
        reminder_set(user=viewer, space_id=later.pk)
    star = UserFactory(username="star", followers=n)
    # More popular than the hosts, and not followed by the viewer: what the home page suggests, as on
    # a site at scale (a viewer following most of the popular people is `test_people_to_follow`'s).
    for i in range(6):
        UserFactory(username=f"popular{i}", followers=2)
    room = make_space(host=make_host(username="roomhost"), title="Music room")
    for i in range(n):
        listener = UserFactory(username=f"listener{i}")
        participant = seat(room, listener, Role.SPEAKER if i < 3 else Role.LISTENER)
        rooms_services.connection_open(space=room, participant=participant, channel_name=f"listener-{i}")
    Notification.objects.bulk_create(
        Notification(user=viewer, kind=Kind.LIVE, title=f"Live {i}", url="/") for i in range(n)
    )
    return World(viewer=viewer, star=star, room=room)


def client_of(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client
