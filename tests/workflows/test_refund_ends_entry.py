"""A refunded ticket ends its holder's entry to a live ticketed space at once: their sockets are told
why and closed, they are out of the space (and off its stage, so the media worker drops them), and
the entry check keeps them out. Moderators stay, and a refund before the space is live touches no one."""

import pytest
from channels.db import database_sync_to_async
from rest_framework.test import APIClient

from rooms import events
from rooms import services as rooms_services
from rooms.errors import ParticipantNotFound
from rooms.models import Participant, Role
from tests.factories import UserFactory
from tests.rooms.scene import make_space, seat
from tests.rooms.ws import connect, events_for, next_event
from tests.ticketing import conftest as ticketing_fixtures
from tests.ticketing.scene import buy_and_pay, deliver, make_ticketed_space
from ticketing import services
from ticketing.models import Ticket, TicketState

pytestmark = pytest.mark.django_db(transaction=True)
db = database_sync_to_async
# The Stripe stand-in of tests/ticketing, for the tests here too.
_standin_server = ticketing_fixtures._standin_server
stripe_standin = ticketing_fixtures.stripe_standin


def live_space_with_a_paying_listener(standin):
    """A ticketed space that went live, with a paid ticket holder (her hand up) and a ticketless friend."""
    space = make_ticketed_space(standin)
    fan = UserFactory(username="fan")
    ticket = buy_and_pay(standin, fan, space)
    space = rooms_services.space_start(actor=space.host, space_id=space.pk)
    return space, fan, ticket


def staff_refund(ticket: Ticket) -> None:
    services.ticket_refund(actor=UserFactory(is_staff=True), ticket_id=ticket.pk)


def stripe_dashboard_refund(standin, ticket: Ticket) -> None:
    """Someone refunds the charge in Stripe's dashboard; Stripe tells us with `charge.refunded`."""
    assert deliver(standin, standin.refund_in_dashboard(ticket.payment_intent_id)).status_code == 200


def commanded(user, space_id: int, message: dict):
    client = APIClient()
    client.force_authenticate(user)
    return client.post(f"/api/spaces/{space_id}/commands/", message, format="json")


async def test_a_staff_refund_tells_the_listener_why_closes_their_socket_and_keeps_them_out(stripe_standin, sent):
    # given: a paying listener with her hand up, and the host, both connected to the live space
    space, fan, ticket = await db(live_space_with_a_paying_listener)(stripe_standin)
    host_socket, _ = await connect(space.pk, space.host)
    fan_socket, snapshot = await connect(space.pk, fan)
    assert snapshot["you"]["role"] == "listener"
    await db(rooms_services.hand_raise)(actor=fan, space_id=space.pk)
    await next_event(host_socket, "participant.updated")

    # when: staff refund her ticket
    await db(staff_refund)(ticket)

    # then: her socket is told why and closed
    received = await events_for(fan_socket, 5)
    errors = [event for event in received if event["type"] == "error"]
    assert [error["code"] for error in errors][:1] == ["ticket_refunded"]
    assert errors[0] == {
        "type": "error",
        "space_id": space.pk,
        "code": "ticket_refunded",
        "detail": "Your ticket was refunded, so your place in this space has ended.",
    }
    assert received[-1] == {"type": "websocket.close", "code": 4403}
    # the others see her go, and so does the media worker
    gone = await next_event(host_socket, "participant.removed")
    assert gone["user"]["username"] == "fan"
    removal = next(m for m in sent if m["kind"] == "participant.removed")
    assert removal["user_id"] == fan.pk
    assert events.media_group(space.pk) in removal["groups"]
    # she is out of the space: left, a listener with no hand up
    participant = await db(Participant.objects.get)(space=space, user=fan)
    assert participant.left_at is not None
    assert (participant.role, participant.hand_raised_at) == (Role.LISTENER, None)
    assert (await db(Ticket.objects.get)(pk=ticket.pk)).state == TicketState.REFUNDED
    await host_socket.disconnect()


async def test_a_refunded_listener_cannot_reconnect_command_or_be_approved_to_the_stage(stripe_standin):
    # given: a paying listener with her hand up, connected, whose ticket staff refund
    space, fan, ticket = await db(live_space_with_a_paying_listener)(stripe_standin)
    fan_socket, _ = await connect(space.pk, fan)
    await db(rooms_services.hand_raise)(actor=fan, space_id=space.pk)
    await db(staff_refund)(ticket)
    await next_event(fan_socket, "error", code="ticket_refunded")

    # when: she connects again, sends a command, and the host tries to approve her old request
    again, refusal = await connect(space.pk, fan)
    closed = await again.receive_output(timeout=5)
    answer = await db(commanded)(fan, space.pk, {"type": "request_speak"})
    with pytest.raises(ParticipantNotFound):
        await db(rooms_services.hand_approve)(actor=space.host, space_id=space.pk, target=fan)

    # then: the entry check refuses her, the command is refused, and she is not on the stage
    assert (refusal["type"], refusal["code"]) == ("error", "ticket_required")
    assert closed == {"type": "websocket.close", "code": 4403}
    assert answer.status_code == 403
    assert answer.json()["code"] == "not_allowed"
    participant = await db(Participant.objects.get)(space=space, user=fan)
    assert (participant.role, participant.hand_raised_at, participant.left_at is not None) == (
        Role.LISTENER,
        None,
        True,
    )


async def test_a_refund_stripe_announces_ends_a_speakers_entry_and_takes_her_off_the_stage(stripe_standin, sent):
    # given: a paying holder the host brought on stage, connected
    space, fan, ticket = await db(live_space_with_a_paying_listener)(stripe_standin)
    fan_socket, _ = await connect(space.pk, fan)
    await db(rooms_services.hand_raise)(actor=fan, space_id=space.pk)
    await db(rooms_services.hand_approve)(actor=space.host, space_id=space.pk, target=fan)

    # when: the charge is refunded in Stripe's dashboard and its webhook arrives
    await db(stripe_dashboard_refund)(stripe_standin, ticket)

    # then: she is told, closed, off the stage and out; the media worker hears she is gone
    told = await next_event(fan_socket, "error", code="ticket_refunded")
    assert told["detail"] == "Your ticket was refunded, so your place in this space has ended."
    received = await events_for(fan_socket, 5)
    assert received[-1] == {"type": "websocket.close", "code": 4403}
    participant = await db(Participant.objects.get)(space=space, user=fan)
    assert (participant.role, participant.left_at is not None) == (Role.LISTENER, True)
    removal = next(m for m in sent if m["kind"] == "participant.removed")
    assert (removal["user_id"], events.media_group(space.pk) in removal["groups"]) == (fan.pk, True)
    _, refusal = await connect(space.pk, fan)
    assert refusal["code"] == "ticket_required"


async def test_a_cohost_whose_ticket_is_refunded_stays(stripe_standin):
    # given: a ticket holder the host made a co-host, connected
    space, fan, ticket = await db(live_space_with_a_paying_listener)(stripe_standin)
    await db(seat)(space, fan, Role.COHOST)
    fan_socket, snapshot = await connect(space.pk, fan)
    assert snapshot["you"]["role"] == "cohost"

    # when: her ticket is refunded
    await db(staff_refund)(ticket)

    # then: a co-host needs no ticket: she stays, connected and on stage
    assert (await db(Ticket.objects.get)(pk=ticket.pk)).state == TicketState.REFUNDED
    assert [e for e in await events_for(fan_socket, 1) if e["type"] in ("error", "websocket.close")] == []
    participant = await db(Participant.objects.get)(space=space, user=fan)
    assert (participant.role, participant.left_at) == (Role.COHOST, None)
    await fan_socket.disconnect()


async def test_a_refund_for_a_space_not_live_yet_changes_nothing_for_anyone_connected_elsewhere(stripe_standin, sent):
    # given: a buyer of a ticket to a scheduled space, listening meanwhile in another, live space
    scheduled = await db(make_ticketed_space)(stripe_standin)
    fan = await db(UserFactory)(username="fan")
    ticket = await db(buy_and_pay)(stripe_standin, fan, scheduled)
    elsewhere = await db(make_space)()
    fan_socket, _ = await connect(elsewhere.pk, fan)

    # when: her ticket to the scheduled space is refunded
    await db(staff_refund)(ticket)

    # then: the refund went through, and nobody anywhere was told anything or moved
    assert (await db(Ticket.objects.get)(pk=ticket.pk)).state == TicketState.REFUNDED
    assert [e for e in await events_for(fan_socket, 1) if e["type"] != "listeners.count"] == []
    assert [m["kind"] for m in sent if m["kind"] != "listeners.count"] == []
    participant = await db(Participant.objects.get)(space=elsewhere, user=fan)
    assert (participant.role, participant.left_at) == (Role.LISTENER, None)
    assert not await db(Participant.objects.filter(space=scheduled).exists)()
    await fan_socket.disconnect()
