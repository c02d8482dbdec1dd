"""The permission table of PRODUCT.md §2, as data: the one place the rules live.

`ALLOWED_ROLES` says which roles may take each action; `PROTECTED_TARGETS`
says whom a role may not act on. `check` raises an error that says why.
Services call `check` inside their transaction, after locking, with the roles
as they are then.
"""

from rooms.errors import ActionNotAllowed
from rooms.models import Role

HOST, COHOST, SPEAKER, LISTENER = Role.HOST, Role.COHOST, Role.SPEAKER, Role.LISTENER
EVERYONE = frozenset(Role)
STAGE = frozenset({HOST, COHOST, SPEAKER})
MODERATORS = frozenset({HOST, COHOST})

ALLOWED_ROLES: dict[str, frozenset[Role]] = {
    "space.end": frozenset({HOST}),
    "host.transfer": frozenset({HOST}),
    "cohost.add": frozenset({HOST}),
    "cohost.remove": frozenset({HOST}),
    "space.edit": MODERATORS,
    "captions.set": MODERATORS,
    "recording.set": MODERATORS,
    "hand.approve": MODERATORS,
    "hand.deny": MODERATORS,
    "speaker.invite": MODERATORS,
    "speaker.move_to_audience": MODERATORS,
    "speaker.mute": MODERATORS,
    "participant.remove": MODERATORS,
    "hand.raise": frozenset({LISTENER}),
    "hand.lower": frozenset({LISTENER}),
    "self.mute": STAGE,
    "self.unmute": STAGE,
    "stage.leave": STAGE,
    "react": EVERYONE,
}

# (actor role, action) -> roles the actor may not target with it.
PROTECTED_TARGETS: dict[tuple[Role, str], frozenset[Role]] = {
    (COHOST, "speaker.move_to_audience"): MODERATORS,
    (COHOST, "speaker.mute"): frozenset({HOST}),
    (COHOST, "participant.remove"): MODERATORS,
    (HOST, "participant.remove"): frozenset({HOST}),
    (HOST, "speaker.move_to_audience"): frozenset({HOST}),
}

DESCRIPTIONS = {
    "space.end": "end the space",
    "host.transfer": "hand hosting over",
    "cohost.add": "add co-hosts",
    "cohost.remove": "remove co-hosts",
    "space.edit": "edit the space",
    "captions.set": "turn captions on or off",
    "recording.set": "start or stop the recording",
    "hand.approve": "approve requests to speak",
    "hand.deny": "deny requests to speak",
    "speaker.invite": "invite people to speak",
    "speaker.move_to_audience": "move speakers to the audience",
    "speaker.mute": "mute speakers",
    "participant.remove": "remove people from the space",
    "hand.raise": "request to speak",
    "hand.lower": "lower a hand",
    "self.mute": "mute yourself",
    "self.unmute": "unmute yourself",
    "stage.leave": "leave the stage",
    "react": "react",
}

ROLE_NAMES = {HOST: "the host", COHOST: "a co-host", SPEAKER: "a speaker", LISTENER: "a listener"}
ROLE_PLURALS = {HOST: "the host", COHOST: "co-hosts", SPEAKER: "speakers", LISTENER: "listeners"}


def allowed(action: str, role: Role | None, target_role: Role | None = None) -> bool:
    if role is None or role not in ALLOWED_ROLES[action]:
        return False
    return target_role is None or target_role not in PROTECTED_TARGETS.get((role, action), frozenset())


def check(action: str, role: Role | None, target_role: Role | None = None) -> None:
    """Raise `ActionNotAllowed` with a reason unless `role` may take `action` (on `target_role`)."""
    if role is None:
        raise ActionNotAllowed(f"Join the space to {DESCRIPTIONS[action]}.")
    if role not in ALLOWED_ROLES[action]:
        who = " or ".join(ROLE_PLURALS[r] for r in Role if r in ALLOWED_ROLES[action])
        raise ActionNotAllowed(f"Only {who} can {DESCRIPTIONS[action]}; you are {ROLE_NAMES[Role(role)]}.")
    if target_role is not None and target_role in PROTECTED_TARGETS.get((role, action), frozenset()):
        verb = DESCRIPTIONS[action].split(" ", 1)[0]
        raise ActionNotAllowed(f"As {ROLE_NAMES[Role(role)]} you can't {verb} {ROLE_NAMES[Role(target_role)]}.")
