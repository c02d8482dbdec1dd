"""Every write to rooms. Functions take keyword-only arguments, run in one
transaction under the locks of `rooms.lock_objects`, check the permission
table (`rooms.permissions`) with the roles as they are under the lock, emit
one event after commit (`rooms.events`) and leave an audit entry for
moderation and lifecycle changes."""

from rooms.services.captions import caption_line_store, captions_set, transcript_keep, transcripts_expire
from rooms.services.entry import entry_end
from rooms.services.lifecycle import (
    space_cancel,
    space_create,
    space_edit,
    space_end,
    space_reschedule,
    space_start,
)
from rooms.services.numbers import numbers_add, numbers_peak, numbers_stage_joined
from rooms.services.presence import (
    connection_close,
    connection_open,
    connection_restore,
    connections_seen,
    presence_restart_sweep,
    presence_sweep,
    space_join,
)
from rooms.services.recording import recording_set
from rooms.services.reports import report_create
from rooms.services.stage import (
    cohost_add,
    cohost_remove,
    hand_approve,
    hand_deny,
    hand_lower,
    hand_raise,
    host_transfer,
    invite_accept,
    invite_decline,
    participant_remove,
    react,
    self_mute,
    self_unmute,
    speaker_invite,
    speaker_move_to_audience,
    speaker_mute,
    stage_leave,
)

__all__ = [
    "caption_line_store",
    "captions_set",
    "cohost_add",
    "cohost_remove",
    "connection_close",
    "connection_open",
    "connection_restore",
    "connections_seen",
    "entry_end",
    "hand_approve",
    "hand_deny",
    "hand_lower",
    "hand_raise",
    "host_transfer",
    "invite_accept",
    "invite_decline",
    "numbers_add",
    "numbers_peak",
    "numbers_stage_joined",
    "participant_remove",
    "presence_restart_sweep",
    "presence_sweep",
    "react",
    "recording_set",
    "report_create",
    "self_mute",
    "self_unmute",
    "space_cancel",
    "space_create",
    "space_edit",
    "space_end",
    "space_join",
    "space_reschedule",
    "space_start",
    "speaker_invite",
    "speaker_move_to_audience",
    "speaker_mute",
    "stage_leave",
    "transcript_keep",
    "transcripts_expire",
]
