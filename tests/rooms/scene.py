"""A live space with someone in every role, for tests that walk the permission table."""

from dataclasses import dataclass

from django.test import Client
from django.utils import timezone

from accounts.models import User
from rooms import services
from rooms.models import Participant, Role, Space, SpaceBlock
from tests.factories import UserFactory


def make_host(**fields) -> User:
    return UserFactory(hosting_granted=True, **fields)


def make_space(host: User | None = None, **fields) -> Space:
    return services.space_create(host=host or make_host(), title=fields.pop("title", "A live space"), **fields)


def seat(space: Space, user: User, role: Role = Role.LISTENER, **fields) -> Participant:
    """Put `user` in `space` with `role` directly (test set-up, not a product path)."""
    participant, _ = Participant.objects.update_or_create(space=space, user=user, defaults={"role": role, **fields})
    return participant


@dataclass
class Scene:
    space: Space
    people: dict[str, User]

    def user(self, name: str) -> User:
        return self.people[name]

    def participant(self, name: str) -> Participant | None:
        return Participant.objects.filter(space=self.space, user=self.people[name]).first()

    def fingerprint(self) -> tuple:
        """Everything a command could change, to prove a refused one changed nothing."""
        space = Space.objects.values_list("title", "topics", "pinned_link", "state", "host_id").get(pk=self.space.pk)
        participants = tuple(
            Participant.objects.filter(space=self.space)
            .order_by("user_id")
            .values_list("user_id", "role", "muted", "hand_raised_at", "invited_at", "left_at")
        )
        blocks = tuple(
            SpaceBlock.objects.filter(space=self.space).values_list("user_id", flat=True).order_by("user_id")
        )
        return space, participants, blocks


def build_scene() -> Scene:
    """host; co-hosts cohost and cohost2; speakers speaker and speaker2 (unmuted); listeners
    listener (hand up), listener2 and listener3; an outsider; someone removed earlier."""
    host = make_host(username="host")
    space = make_space(host=host, title="Permission walk")
    names = ["cohost", "cohost2", "speaker", "speaker2", "listener", "listener2", "listener3", "outsider", "removed"]
    people = {"host": host, **{name: UserFactory(username=name) for name in names}}
    Participant.objects.filter(space=space, user=host).update(muted=False)
    seat(space, people["cohost"], Role.COHOST, muted=False)
    seat(space, people["cohost2"], Role.COHOST, muted=False)
    seat(space, people["speaker"], Role.SPEAKER, muted=False)
    seat(space, people["speaker2"], Role.SPEAKER, muted=False)
    seat(space, people["listener"], hand_raised_at=timezone.now())
    seat(space, people["listener2"])
    seat(space, people["listener3"])
    seat(space, people["removed"], left_at=timezone.now())
    SpaceBlock.objects.create(space=space, user=people["removed"], blocked_by=host)
    return Scene(space, people)


def session_headers(user: User) -> list[tuple[bytes, bytes]]:
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"].value
    return [(b"cookie", f"sessionid={cookie}".encode()), (b"origin", b"http://127.0.0.1")]
