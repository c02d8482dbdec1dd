"""The media worker follows each space's events in that space's room only."""

from media.room import Room, Speaker
from media.worker import MediaWorker
from rooms import events


class FakePeer:
    """A speaker's connection, as far as leaving a room needs it."""

    closed = False

    async def close(self) -> None:
        self.closed = True


def speaker_in(room: Room, key: str) -> FakePeer:
    peer = FakePeer()
    room.add_speaker(key, Speaker(user_id=7, username="sam", pc=peer, slots=[], muted=False))
    return peer


async def test_a_speaker_in_one_space_keeps_their_microphone_when_they_become_a_listener_in_another():
    # given: one worker serving spaces 1 and 2, the same person on stage in both
    worker = MediaWorker("events-test")
    worker.rooms[1] = Room(1, ssrc=1, emit=lambda event: None)
    worker.rooms[2] = Room(2, ssrc=2, emit=lambda event: None)
    in_one, in_two = speaker_in(worker.rooms[1], "one.sam"), speaker_in(worker.rooms[2], "two.sam")
    participant = {"user": {"username": "sam"}, "role": "listener", "muted": True}

    # when: space 1 says they are a listener there now
    moved = events.Event({"type": "participant.updated", "space_id": 1, "participant": participant}, about=7)
    await worker.handle(events.envelope(moved))

    # then: their microphone in space 1 is closed, the one in space 2 is untouched and unmuted
    assert in_one.closed and "one.sam" not in worker.rooms[1].speakers
    assert not in_two.closed and not worker.rooms[2].speakers["two.sam"].muted
