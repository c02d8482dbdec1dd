"""`{% replay space %}`: an ended space's recordings with their player and clips; `{% replays_of user %}`
for a host's profile."""

from django import template
from django.conf import settings

from media import selectors
from media.recording.services import CLIP_MAX_MS
from rooms.selectors import replay_decision, speakers_of

register = template.Library()


@register.inclusion_tag("media/_replay.html", takes_context=True)
def replay(context, space):
    user = context["user"]
    decision = replay_decision(user=user, space=space)
    parts = selectors.replay_parts(space=space) if decision.allowed else []
    return {
        "space": space,
        "user": user,
        "csrf_token": context.get("csrf_token"),
        "decision": decision,
        "parts": parts,
        "still_recording": decision.allowed and selectors.is_recording(space=space),
        "clips": list(selectors.clips_of(space=space)[:20]) if parts else [],
        "speakers": speakers_of(space=space) if parts else [],
        "is_host": user.is_authenticated and user.pk == space.host_id,
        "clip_seconds": CLIP_MAX_MS // 1000,
        "retention_days": settings.SPACES_RECORDING_RETENTION_D,
    }


@register.inclusion_tag("media/_replays_of.html", takes_context=True)
def replays_of(context, host):
    return {"replays": selectors.replays_of(host=host, viewer=context["user"])}
