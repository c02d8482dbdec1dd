"""Who is on stage and what they may do: hands, invites, mutes, co-hosts, removals.

Each function locks the space, then the participants it touches, checks the
permission table with the roles found under the lock, changes them and emits
`participant.updated` (or `participant.removed`, `reaction`) after commit.
"""

from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.eligibility import hosting_eligibility
from accounts.models import Follow, User
from accounts.services import audit_record
from rooms import events, lock_objects, permissions, selectors
from rooms.errors import (
    ActionNotAllowed,
    AlreadyLive,
    CohostsFull,
    InvalidSpace,
    ParticipantNotFound,
    StageFull,
    WrongState,
)
from rooms.models import STAGE_ROLES, Participant, Role, Space, SpaceBlock, SpaceState, SpeakPolicy, is_moderator
from rooms.services.numbers import numbers_add, numbers_stage_joined

REACTIONS = ("👏", "❤️", "😂", "💯", "🔥", "🙌", "👍", "😮", "🎉", "🤔")


@dataclass
class Scene:
    """A live space and the participants an action touches, all locked."""

    space: Space
    actor: Participant | None
    target: Participant | None
    locked: dict[int, Participant]  # every participant locked, by user id


def _lock(space_id: int, actor: User | None, target: User | None = None, *, also: tuple[int, ...] = ()) -> Scene:
    """Lock the space, then the actor's, the target's (and `also` these users') participants by pk.
    `actor=None`: the system acts."""
    space = lock_objects.space_for_update(space_id)
    if space.state != SpaceState.LIVE:
        raise WrongState(f"This space is {space.state}, not live.")
    user_ids = [user.pk for user in (actor, target) if user is not None] + list(also)
    found = {p.user_id: p for p in lock_objects.participants_for_update(space_id, user_ids)}
    scene = Scene(space, None, None, found)
    actor_part = found.get(actor.pk) if actor is not None else None
    if actor_part is not None and actor_part.left_at is not None:
        actor_part = None
    target_part = None
    if target is not None:
        target_part = found.get(target.pk)
        if target_part is None or target_part.left_at is not None:
            raise ParticipantNotFound(f"@{target.username} is not in this space.")
    scene.actor, scene.target = actor_part, target_part
    return scene


def _role(participant: Participant | None) -> Role | None:
    return Role(participant.role) if participant is not None else None


def _updated(participant: Participant, *, audience: events.Audience = events.PUBLIC) -> None:
    events.emit(events.participant_updated(participant), audience)


def _ensure_stage_seat(space: Space) -> None:
    on_stage = Participant.objects.filter(space=space, role__in=STAGE_ROLES).count()
    if on_stage >= settings.SPACES_STAGE_MAX:
        raise StageFull(
            f"The stage is full: at most {settings.SPACES_STAGE_MAX} people, host and co-hosts included.",
            stage_count=on_stage,
        )


def _to_stage(participant: Participant, role: Role) -> None:
    participant.role = role
    participant.muted = True
    participant.hand_raised_at = None
    participant.invited_at = None
    participant.save(update_fields=["role", "muted", "hand_raised_at", "invited_at"])
    numbers_stage_joined(participant)


def to_audience(participant: Participant) -> None:
    """Back to the audience, muted, hand down, invitation gone (the caller holds the participant's lock)."""
    participant.role = Role.LISTENER
    participant.muted = True
    participant.hand_raised_at = None
    participant.invited_at = None
    participant.save(update_fields=["role", "muted", "hand_raised_at", "invited_at"])


# Listeners


def hand_raise(*, actor: User, space_id: int) -> Participant:
    """A listener asks to speak, if the space's policy lets them."""
    with transaction.atomic():
        scene = _lock(space_id, actor)
        permissions.check("hand.raise", _role(scene.actor))
        policy = scene.space.speak_policy
        if policy == SpeakPolicy.INVITED:
            raise ActionNotAllowed("In this space, only people the host invites can speak.")
        if (
            policy == SpeakPolicy.FOLLOWED
            and not Follow.objects.filter(follower_id=scene.space.host_id, followee=actor).exists()
        ):
            raise ActionNotAllowed("In this space, only people the host follows can ask to speak.")
        participant = scene.actor
        if participant.hand_raised_at is None:
            participant.hand_raised_at = timezone.now()
            participant.save(update_fields=["hand_raised_at"])
            _updated(participant, audience=events.moderators_and(actor.pk))
    return participant


def hand_lower(*, actor: User, space_id: int) -> Participant:
    """A listener takes back their request to speak."""
    with transaction.atomic():
        scene = _lock(space_id, actor)
        permissions.check("hand.lower", _role(scene.actor))
        participant = scene.actor
        if participant.hand_raised_at is not None:
            participant.hand_raised_at = None
            participant.save(update_fields=["hand_raised_at"])
            _updated(participant, audience=events.moderators_and(actor.pk))
    return participant


# Moderators: hands and invitations


def hand_approve(*, actor: User, space_id: int, target: User) -> Participant:
    """A moderator brings a listener whose hand is up onto the stage (muted)."""
    with transaction.atomic():
        scene = _lock(space_id, actor, target)
        permissions.check("hand.approve", _role(scene.actor))
        participant = scene.target
        if participant.role != Role.LISTENER or participant.hand_raised_at is None:
            raise WrongState(f"@{target.username} has not asked to speak.")
        _ensure_stage_seat(scene.space)
        _to_stage(participant, Role.SPEAKER)
        audit_record(actor=actor, action="rooms.hand.approved", subject=scene.space, user=target.username)
        _updated(participant)
    return participant


def hand_deny(*, actor: User, space_id: int, target: User) -> Participant:
    """A moderator turns down a request to speak."""
    with transaction.atomic():
        scene = _lock(space_id, actor, target)
        permissions.check("hand.deny", _role(scene.actor))
        participant = scene.target
        if participant.hand_raised_at is None:
            raise WrongState(f"@{target.username} has not asked to speak.")
        participant.hand_raised_at = None
        participant.save(update_fields=["hand_raised_at"])
        audit_record(actor=actor, action="rooms.hand.denied", subject=scene.space, user=target.username)
        _updated(participant, audience=events.moderators_and(target.pk))
    return participant


def speaker_invite(*, actor: User, space_id: int, target: User) -> Participant:
    """A moderator invites a listener to speak; they come up when they accept."""
    with transaction.atomic():
        scene = _lock(space_id, actor, target)
        permissions.check("speaker.invite", _role(scene.actor))
        participant = scene.target
        if participant.role != Role.LISTENER:
            raise WrongState(f"@{target.username} is already on stage.")
        if participant.invited_at is None:
            participant.invited_at = timezone.now()
            participant.save(update_fields=["invited_at"])
            _updated(participant, audience=events.moderators_and(target.pk))
    return participant


def invite_accept(*, actor: User, space_id: int) -> Participant:
    """An invited listener takes their seat on stage."""
    with transaction.atomic():
        scene = _lock(space_id, actor)
        participant = scene.actor
        if participant is None or participant.invited_at is None:
            raise WrongState("You have no invitation to speak in this space.")
        _ensure_stage_seat(scene.space)
        _to_stage(participant, Role.SPEAKER)
        _updated(participant)
    return participant


def invite_decline(*, actor: User, space_id: int) -> Participant:
    """An invited listener says no thanks."""
    with transaction.atomic():
        scene = _lock(space_id, actor)
        participant = scene.actor
        if participant is None or participant.invited_at is None:
            raise WrongState("You have no invitation to speak in this space.")
        participant.invited_at = None
        participant.save(update_fields=["invited_at"])
        _updated(participant, audience=events.moderators_and(actor.pk))
    return participant


# Moderators: the stage


def speaker_move_to_audience(*, actor: User, space_id: int, target: User) -> Participant:
    """A moderator sends someone on stage back to the audience."""
    with transaction.atomic():
        scene = _lock(space_id, actor, target)
        if scene.target.role not in STAGE_ROLES:
            raise WrongState(f"@{target.username} is not on stage.")
        permissions.check("speaker.move_to_audience", _role(scene.actor), _role(scene.target))
        to_audience(scene.target)
        audit_record(actor=actor, action="rooms.speaker.moved_to_audience", subject=scene.space, user=target.username)
        _updated(scene.target)
    return scene.target


def speaker_mute(*, actor: User, space_id: int, target: User) -> Participant:
    """A moderator mutes someone on stage; only they can unmute themselves."""
    with transaction.atomic():
        scene = _lock(space_id, actor, target)
        if scene.target.role not in STAGE_ROLES:
            raise WrongState(f"@{target.username} is not on stage.")
        permissions.check("speaker.mute", _role(scene.actor), _role(scene.target))
        if not scene.target.muted:
            scene.target.muted = True
            scene.target.save(update_fields=["muted"])
            audit_record(actor=actor, action="rooms.speaker.muted", subject=scene.space, user=target.username)
            _updated(scene.target)
    return scene.target


def participant_remove(*, actor: User, space_id: int, target: User, reason: str = "moderator") -> Participant:
    """A moderator removes someone from the space and keeps them out. `reason` says why in the audit
    row: "moderator" (a moderator's own decision) or "blocked" (the moderator blocked them)."""
    with transaction.atomic():
        scene = _lock(space_id, actor, target)
        permissions.check("participant.remove", _role(scene.actor), _role(scene.target))
        SpaceBlock.objects.get_or_create(space=scene.space, user=target, defaults={"blocked_by": actor})
        participant = scene.target
        to_audience(participant)
        participant.left_at = timezone.now()
        participant.save(update_fields=["left_at"])
        audit_record(
            actor=actor, action="rooms.participant.removed", subject=scene.space, user=target.username, reason=reason
        )
        events.emit(events.participant_removed(space_id, target), events.PUBLIC)
    return participant


# The host: co-hosts and hand-over


def cohost_add(*, actor: User, space_id: int, target: User) -> Participant:
    """The host makes someone in the space a co-host (on stage)."""
    with transaction.atomic():
        scene = _lock(space_id, actor, target)
        permissions.check("cohost.add", _role(scene.actor))
        participant = scene.target
        if is_moderator(participant.role):
            raise WrongState(f"@{target.username} is already {permissions.ROLE_NAMES[Role(participant.role)]}.")
        cohosts = Participant.objects.filter(space=scene.space, role=Role.COHOST).count()
        if cohosts >= settings.SPACES_COHOSTS_MAX:
            raise CohostsFull(f"A space has at most {settings.SPACES_COHOSTS_MAX} co-hosts.")
        if participant.role == Role.LISTENER:
            _ensure_stage_seat(scene.space)
            _to_stage(participant, Role.COHOST)
        else:
            participant.role = Role.COHOST
            participant.save(update_fields=["role"])
        audit_record(actor=actor, action="rooms.cohost.added", subject=scene.space, user=target.username)
        _updated(participant)
    return participant


def cohost_remove(*, actor: User, space_id: int, target: User) -> Participant:
    """The host takes co-hosting back; the person stays on stage as a speaker."""
    with transaction.atomic():
        scene = _lock(space_id, actor, target)
        permissions.check("cohost.remove", _role(scene.actor))
        if scene.target.role != Role.COHOST:
            raise WrongState(f"@{target.username} is not a co-host.")
        scene.target.role = Role.SPEAKER
        scene.target.save(update_fields=["role"])
        audit_record(actor=actor, action="rooms.cohost.removed", subject=scene.space, user=target.username)
        _updated(scene.target)
    return scene.target


def host_transfer(*, actor: User | None, space_id: int, target: User) -> Participant:
    """Hand hosting to a co-host; the old host stays on as a co-host.

    `actor=None` is the system handing over for a host who has gone.
    """
    with transaction.atomic():
        old_host_id = Space.objects.values_list("host_id", flat=True).get(pk=space_id)
        scene = _lock(space_id, actor, target, also=(old_host_id,))
        space = scene.space
        if space.host_id != old_host_id:
            raise WrongState("Hosting changed hands meanwhile; try again.")
        if actor is not None:
            permissions.check("host.transfer", _role(scene.actor))
        if scene.target.role != Role.COHOST:
            raise WrongState(f"Hosting goes to a co-host; @{target.username} is not one.")
        old_host = scene.locked[old_host_id]
        old_host.role = Role.COHOST
        old_host.save(update_fields=["role"])
        scene.target.role = Role.HOST
        scene.target.save(update_fields=["role"])
        space.host = target
        try:
            with transaction.atomic():
                space.save(update_fields=["host"])
        except IntegrityError as error:
            raise AlreadyLive(f"@{target.username} already hosts another live space.") from error
        # A co-host carries the space on whatever their followers (PRODUCT.md §1); staff see who did
        # so without being eligible to start a space of their own.
        eligibility = hosting_eligibility(target)
        audit_record(
            actor=actor,
            action="rooms.host.transferred",
            subject=space,
            to=target.username,
            from_host=old_host.user.username,
            automatic=actor is None,
            to_eligible=eligibility.eligible,
            to_followers_counted=eligibility.followers_count,
        )
        _updated(old_host)
        _updated(scene.target)
        events.emit(events.space_updated(space), events.PUBLIC)
    return scene.target


# Everyone on stage: their own microphone and seat


def self_mute(*, actor: User, space_id: int) -> Participant:
    return _set_own_mute(actor=actor, space_id=space_id, muted=True)


def self_unmute(*, actor: User, space_id: int) -> Participant:
    return _set_own_mute(actor=actor, space_id=space_id, muted=False)


def _set_own_mute(*, actor: User, space_id: int, muted: bool) -> Participant:
    with transaction.atomic():
        scene = _lock(space_id, actor)
        permissions.check("self.mute" if muted else "self.unmute", _role(scene.actor))
        if scene.actor.muted != muted:
            scene.actor.muted = muted
            scene.actor.save(update_fields=["muted"])
            _updated(scene.actor)
    return scene.actor


def stage_leave(*, actor: User, space_id: int) -> Participant:
    """Step down to the audience. A host who leaves hands hosting to a co-host who is there."""
    with transaction.atomic():
        scene = _lock(space_id, actor)
        permissions.check("stage.leave", _role(scene.actor))
        if _role(scene.actor) == Role.HOST:
            successor = selectors.next_host(space_id=space_id)
            if successor is None:
                raise ActionNotAllowed(
                    "The host stays on stage until a co-host is there to take over, or ends the space."
                )
            host_transfer(actor=actor, space_id=space_id, target=successor.user)
            scene.actor.refresh_from_db()
        to_audience(scene.actor)
        _updated(scene.actor)
    return scene.actor


def react(*, actor: User, space_id: int, emoji: str) -> None:
    """Anyone in the space sends an emoji that floats up on every screen. Nothing is stored."""
    if emoji not in REACTIONS:
        raise InvalidSpace(f"React with one of {' '.join(REACTIONS)}.", code="bad_reaction")
    space = Space.objects.filter(pk=space_id).values_list("state", flat=True).first()
    if space != SpaceState.LIVE:
        raise WrongState("This space is not live.")
    role = (
        Participant.objects.filter(space_id=space_id, user=actor, left_at__isnull=True)
        .values_list("role", flat=True)
        .first()
    )
    permissions.check("react", Role(role) if role else None)
    numbers_add(space_id=space_id, reactions=1)
    events.send_now(events.reaction(space_id, actor, emoji), events.EVERYONE)
