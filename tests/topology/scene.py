"""A live space spread over two web processes: who sits where, for the topology tests."""

from dataclasses import dataclass, field

from django.utils import timezone

from rooms.models import Participant, Role, Space
from tests.factories import UserFactory
from tests.rooms.scene import make_host, make_space, seat
from tests.topology.conftest import cookie_for


@dataclass
class LiveSpace:
    space: Space
    cookies: dict[str, str] = field(default_factory=dict)
    users: dict = field(default_factory=dict)

    @property
    def path(self) -> str:
        return f"/ws/spaces/{self.space.pk}/"

    def participant(self, name: str) -> Participant:
        return Participant.objects.get(space=self.space, user=self.users[name])


def live_space() -> LiveSpace:
    """host; a speaker on stage, unmuted; `fan`, a listener with a raised hand; `ear`, a listener."""
    host = make_host(username="host")
    space = make_space(host=host, title="Topology")
    users = {"host": host, **{name: UserFactory(username=name) for name in ("speaker", "fan", "ear", "other")}}
    seat(space, users["speaker"], Role.SPEAKER, muted=False)
    seat(space, users["fan"], hand_raised_at=timezone.now())
    return LiveSpace(space, {name: cookie_for(user) for name, user in users.items()}, users)
