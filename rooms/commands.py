"""The commands people send to a space, parsed and checked once for the websocket and the REST API.

A command is a JSON object with a `type` and the fields that type needs; see
docs/websocket.md. `execute` validates it, resolves usernames and calls the one
service that carries it out. Errors are `ServiceError`s with a code and a
message; nothing changes when one is raised.
"""

from collections.abc import Callable
from dataclasses import dataclass

from accounts.models import User
from accounts.selectors import user_get
from rooms import limits, services
from rooms.errors import SpaceNotFound
from rooms.models import Space
from spaces_site.errors import InvalidRequest, NotAllowed


@dataclass(frozen=True)
class Command:
    service: Callable
    # Fields the command needs: name -> expected type; `user` is a username resolved to a User.
    fields: dict[str, type]
    optional: dict[str, type] | None = None


COMMANDS: dict[str, Command] = {
    "request_speak": Command(services.hand_raise, {}),
    "lower_hand": Command(services.hand_lower, {}),
    "approve": Command(services.hand_approve, {"user": str}),
    "deny": Command(services.hand_deny, {"user": str}),
    "invite": Command(services.speaker_invite, {"user": str}),
    "accept_invite": Command(services.invite_accept, {}),
    "decline_invite": Command(services.invite_decline, {}),
    "move_to_audience": Command(services.speaker_move_to_audience, {"user": str}),
    "mute": Command(services.speaker_mute, {"user": str}),
    "mute_self": Command(services.self_mute, {}),
    "unmute_self": Command(services.self_unmute, {}),
    "leave_stage": Command(services.stage_leave, {}),
    "remove": Command(services.participant_remove, {"user": str}),
    "add_cohost": Command(services.cohost_add, {"user": str}),
    "remove_cohost": Command(services.cohost_remove, {"user": str}),
    "transfer_host": Command(services.host_transfer, {"user": str}),
    "react": Command(services.react, {"emoji": str}),
    "end": Command(services.space_end, {}),
    "set_captions": Command(services.captions_set, {"on": bool}),
    "set_recording": Command(services.recording_set, {"on": bool}),
    "edit": Command(
        services.space_edit,
        {},
        optional={"title": str, "topics": list, "pinned_link": str, "speak_policy": str},
    ),
}

FIELD_MAX_LENGTH = 500


def parse(message: object) -> tuple[str, Command, dict]:
    """Check a command's shape; return its type, its definition and its arguments."""
    if not isinstance(message, dict):
        raise InvalidRequest("A command is a JSON object with a type.", code="bad_command")
    kind = message.get("type")
    if not isinstance(kind, str):
        raise InvalidRequest("A command needs a type.", code="missing_field")
    command = COMMANDS.get(kind)
    if command is None:
        raise InvalidRequest(f"Unknown command type {kind[:40]!r}.", code="unknown_type")
    arguments = {}
    for name, expected in command.fields.items():
        if name not in message:
            raise InvalidRequest(f"{kind} needs {name!r}.", code="missing_field")
        arguments[name] = _checked(kind, name, message[name], expected)
    for name, expected in (command.optional or {}).items():
        if name in message:
            arguments[name] = _checked(kind, name, message[name], expected)
    if command.optional and not arguments:
        raise InvalidRequest(f"{kind} needs at least one of {', '.join(command.optional)}.", code="missing_field")
    return kind, command, arguments


def _checked(kind: str, name: str, value: object, expected: type) -> object:
    # JSON's true/false are Python bools, which are ints too: a bool is only what asks for one.
    if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
        raise InvalidRequest(f"{kind}: {name!r} must be a {expected.__name__}.", code="bad_field")
    if isinstance(value, str) and len(value) > FIELD_MAX_LENGTH:
        raise InvalidRequest(f"{kind}: {name!r} is too long.", code="bad_field")
    if isinstance(value, list) and not all(isinstance(item, str) for item in value):
        raise InvalidRequest(f"{kind}: {name!r} must be a list of strings.", code="bad_field")
    return value


def execute(*, actor: User, space_id: int, message: object, check_space: bool = False):
    """Carry out one command for `actor` in space `space_id`; returns what the service returned.

    `check_space`: 404 for a space that doesn't exist (REST names any id; a socket is in its space).
    Checked after the limit, so a flood past it costs no query."""
    if not actor.is_authenticated:
        raise NotAllowed("Log in to take part; visitors can only listen.", code="login_required")
    limits.command_take(user_id=actor.pk)  # malformed ones count too
    _, command, arguments = parse(message)
    if check_space and not Space.objects.filter(pk=space_id).exists():
        raise SpaceNotFound(f"No space with id {space_id}.")
    if "user" in arguments:
        arguments["target"] = user_get(username=arguments.pop("user"))
    return command.service(actor=actor, space_id=space_id, **arguments)
