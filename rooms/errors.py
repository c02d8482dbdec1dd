from spaces_site.errors import Conflict, InvalidRequest, NotAllowed, NotFound


class SpaceNotFound(NotFound):
    code = "space_not_found"


class ParticipantNotFound(NotFound):
    code = "participant_not_found"


class ActionNotAllowed(NotAllowed):
    """The actor's role (or the target's) rules the action out; the message says which."""

    code = "not_allowed"


class EntryRefused(NotAllowed):
    code = "entry_refused"


class WrongState(Conflict):
    """The space or participant is not in a state the action starts from."""

    code = "wrong_state"


class StageFull(Conflict):
    code = "stage_full"


class CohostsFull(Conflict):
    code = "cohosts_full"


class AlreadyLive(Conflict):
    code = "already_live"


class InvalidSpace(InvalidRequest):
    code = "invalid"


class RateLimited(InvalidRequest):
    status = 429
    code = "rate_limited"


class ReplayRefused(NotAllowed):
    """What an ended space leaves (its replay, transcript and clips) is not for this person:
    `rooms.selectors.replay_decision` says why, and its code is the answer's."""

    code = "replay_refused"


class NumbersRefused(NotAllowed):
    code = "numbers_refused"
