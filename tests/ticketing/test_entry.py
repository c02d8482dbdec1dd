"""Only paid ticket holders (plus the host, co-hosts and invited speakers) enter a ticketed space:
`rooms.selectors.entry_decision` decides, and the websocket and the media worker both ask it."""

import asyncio

import pytest
from aiortc import RTCPeerConnection
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from media import signalling, worker
from media.aiortc_bridge import allow_loopback_candidates
from rooms import selectors
from rooms import services as rooms_services
from rooms.models import Participant, Role
from tests.factories import UserFactory
from tests.rooms.scene import seat
from tests.rooms.ws import connect
from tests.ticketing.scene import buy, buy_and_pay, make_ticketed_space
from ticketing import services
from ticketing.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)
db = database_sync_to_async


def people(standin):
    """A ticketed space that went live, and someone in each situation."""
    space = make_ticketed_space(standin)
    everyone = {
        name: UserFactory(username=name) for name in ("paid", "held", "refunded", "nothing", "cohost", "invited")
    }
    buy_and_pay(standin, everyone["paid"], space)
    buy(everyone["held"], space)
    refunded = buy_and_pay(standin, everyone["refunded"], space)
    services.ticket_refund(actor=UserFactory(is_staff=True), ticket_id=refunded.pk)
    space = rooms_services.space_start(actor=space.host, space_id=space.pk)
    seat(space, everyone["cohost"], Role.COHOST)
    seat(space, everyone["invited"], invited_at=timezone.now())
    return space, everyone


def test_entry_decision_admits_paid_holders_and_the_stage_and_refuses_everyone_else(stripe_standin):
    space, everyone = people(stripe_standin)

    decisions = {name: selectors.entry_decision(user=user, space=space) for name, user in everyone.items()}
    decisions["host"] = selectors.entry_decision(user=space.host, space=space)
    decisions["visitor"] = selectors.entry_decision(user=AnonymousUser(), space=space)

    assert Ticket.objects.get(buyer=everyone["refunded"]).state == "refunded"
    assert {name: (d.allowed, d.code) for name, d in decisions.items()} == {
        "paid": (True, "ticket_holder"),
        "held": (False, "ticket_required"),
        "refunded": (False, "ticket_required"),
        "nothing": (False, "ticket_required"),
        "cohost": (True, "allowed"),
        "invited": (True, "allowed"),
        "host": (True, "host"),
        "visitor": (False, "login_required"),
    }
    assert decisions["nothing"].detail == "This space needs a ticket."


async def test_the_websocket_refuses_the_ticketless_and_lets_a_paid_holder_in(stripe_standin):
    space, everyone = await db(people)(stripe_standin)

    refused_socket, refusal = await connect(space.pk, everyone["nothing"])
    closed = await refused_socket.receive_output(timeout=5)
    held_socket, held_refusal = await connect(space.pk, everyone["held"])
    admitted_socket, snapshot = await connect(space.pk, everyone["paid"])

    assert (refusal["type"], refusal["code"], refusal["detail"]) == (
        "error",
        "ticket_required",
        "This space needs a ticket.",
    )
    assert closed == {"type": "websocket.close", "code": 4403}
    assert held_refusal["code"] == "ticket_required"
    assert snapshot["type"] == "snapshot" and snapshot["you"]["role"] == "listener"
    assert await db(Participant.objects.filter(space=space, user=everyone["paid"]).exists)()
    assert not await db(Participant.objects.filter(space=space, user=everyone["nothing"]).exists)()
    await admitted_socket.disconnect()
    await held_socket.disconnect()


def test_the_media_workers_own_check_refuses_the_ticketless(stripe_standin):
    space, everyone = people(stripe_standin)

    admissions = {
        name: signalling.admit(user_id=everyone[name].pk, space_id=space.pk, publish=False)
        for name in ("paid", "held", "refunded", "nothing")
    }

    assert {name: (a.allowed, a.code) for name, a in admissions.items()} == {
        "paid": (True, "listen"),
        "held": (False, "ticket_required"),
        "refunded": (False, "ticket_required"),
        "nothing": (False, "ticket_required"),
    }


@pytest.fixture
def loopback(settings):
    settings.SPACES_MEDIA_ICE_LOOPBACK = True
    worker.stop_in_process_workers()
    yield
    worker.stop_in_process_workers()


@pytest.mark.media
async def test_the_media_worker_answers_a_paid_holders_offer_and_refuses_a_ticketless_one(stripe_standin, loopback):
    # given: offers sent straight to a worker, as a web process would relay them, bypassing the websocket
    space, everyone = await db(people)(stripe_standin)
    layer = get_channel_layer()
    media = worker.MediaWorker("media.worker.ticketing-test", layer)
    task = asyncio.get_running_loop().create_task(media.run())
    allow_loopback_candidates()

    async def offer(user):
        reply_to = await layer.new_channel()
        pc = RTCPeerConnection()
        pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        message = {"type": signalling.OFFER, "space_id": space.pk, "user_id": user.pk, "reply_to": reply_to}
        await layer.send(media.channel, {**message, "sdp": pc.localDescription.sdp, "publish": False})
        answer = await asyncio.wait_for(layer.receive(reply_to), timeout=10)
        await pc.close()
        return answer

    # when
    ticketless = await offer(everyone["nothing"])
    holder = await offer(everyone["paid"])

    # then
    assert ticketless == {"type": "media.error", "code": "ticket_required", "detail": "This space needs a ticket."}
    assert holder["type"] == "media.answer"
    task.cancel()
    await media.close()
