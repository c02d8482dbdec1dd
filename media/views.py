"""Pages and files of recordings and clips: the audio (ranged, streamed, a few at once per person:
`media.downloads`), clip pages, clipping, deleting."""

import math

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.crypto import constant_time_compare
from django.views.decorators.http import require_POST
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from rest_framework.throttling import UserRateThrottle

from media import metrics, selectors
from media.downloads import download_response
from media.errors import BadClip, ClipLimited
from media.models import Clip, Recording
from media.recording import services
from spaces_site.client_address import from_this_machine
from spaces_site.errors import NotAllowed, NotFound, ServiceError

OGG = "audio/ogg"


def _or_http_error(error: ServiceError):
    if isinstance(error, NotFound):
        raise Http404(error.detail) from error
    if isinstance(error, NotAllowed):
        raise PermissionDenied(error.detail) from error
    raise error


def recording_audio(request: HttpRequest, recording_id: int) -> HttpResponse:
    try:
        recording = selectors.recording_get(recording_id=recording_id, viewer=request.user)
    except ServiceError as error:
        _or_http_error(error)
    return download_response(
        request,
        default_storage,
        recording.file.name,
        person=services.listener_of(request),
        content_type=OGG,
        filename=f"space-{recording.space_id}-{recording.pk}.ogg",
    )


@require_POST
def recording_played(request: HttpRequest, recording_id: int) -> HttpResponse:
    """The replay page says a replay started playing (once per page view)."""
    try:
        recording = selectors.recording_get(recording_id=recording_id, viewer=request.user)
    except ServiceError as error:
        _or_http_error(error)
    services.replay_played(recording=recording, listener=services.listener_of(request))
    return HttpResponse(status=204)


@login_required
@require_POST
def recording_delete(request: HttpRequest, recording_id: int) -> HttpResponse:
    recording = Recording.objects.select_related("space").filter(pk=recording_id).first()
    if recording is None:
        raise Http404("No such recording.")
    try:
        services.recording_delete(actor=request.user, recording=recording)
    except ServiceError as error:
        messages.error(request, error.detail)
    else:
        messages.success(request, "The recording is deleted.")
    return redirect("space", space_id=recording.space_id)


class ClipAskThrottle(UserRateThrottle):
    """The API's `clip` limit (SPACES_API_CLIP_RATE) for the replay page's form: its cache key is the one
    the clip endpoints' scoped throttle uses (`throttle_clip_<user id>`), one budget per account for both."""

    scope = "clip"


def _clip_refused(request: HttpRequest, space_id: int, detail: str, retry_after: int) -> HttpResponse:
    response = render(request, "media/clip_refused.html", {"detail": detail, "space_id": space_id}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


@login_required
@require_POST
def clip_make(request: HttpRequest, space_id: int) -> HttpResponse:
    """Make a clip: of a replay (`recording` and `start` seconds, `length` up to 30 s), or of the live
    space's last 30 s (no `recording`). Past a clip limit, a 429 page with `Retry-After`."""
    throttle = ClipAskThrottle()
    if not throttle.allow_request(request, None):
        wait = math.ceil(throttle.wait() or 60)
        return _clip_refused(request, space_id, f"You're asking for clips too fast: try again in {wait} seconds.", wait)
    try:
        if request.POST.get("recording"):
            start_ms, length_ms = (
                _seconds_ms(request.POST.get("start", "0")),
                _seconds_ms(request.POST.get("length", "30")),
            )
            clip = services.clip_from_replay(
                actor=request.user,
                recording_id=int(request.POST["recording"]) if request.POST["recording"].isdigit() else 0,
                start_ms=start_ms,
                duration_ms=length_ms,
            )
        else:
            clip = services.clip_of_live(actor=request.user, space_id=space_id)
    except ClipLimited as error:
        return _clip_refused(request, space_id, error.detail, error.extra["retry_after"])
    except ServiceError as error:
        messages.error(request, error.detail)
        return redirect("space", space_id=space_id)
    return redirect(clip)


def _seconds_ms(value: str) -> int:
    try:
        seconds = float(value)
    except ValueError as error:
        raise BadClip("Give the clip's start and length in seconds.") from error
    if not 0 <= seconds < 10**7:
        raise BadClip("Give the clip's start and length in seconds.")
    return round(seconds * 1000)


def clip_page(request: HttpRequest, token: str) -> HttpResponse:
    try:
        clip = services.clip_settle(selectors.clip_get(token=token, viewer=request.user))
    except ServiceError as error:
        _or_http_error(error)
    may_delete = request.user.is_authenticated and (
        request.user.is_staff or request.user.pk in (clip.maker_id, clip.space.host_id)
    )
    return render(request, "media/clip.html", {"clip": clip, "may_delete": may_delete})


def clip_audio(request: HttpRequest, token: str) -> HttpResponse:
    try:
        clip = selectors.clip_get(token=token, viewer=request.user)
    except ServiceError as error:
        _or_http_error(error)
    if not clip.file:
        raise Http404("This clip isn't ready.")
    return download_response(
        request,
        default_storage,
        clip.file.name,
        person=services.listener_of(request),
        content_type=OGG,
        filename=f"clip-{clip.token}.ogg",
    )


@login_required
@require_POST
def clip_delete(request: HttpRequest, token: str) -> HttpResponse:
    clip = Clip.objects.select_related("space").filter(token=token).first()
    if clip is None:
        raise Http404("No such clip.")
    try:
        services.clip_delete(actor=request.user, clip=clip)
    except ServiceError as error:
        messages.error(request, error.detail)
        return redirect(clip)
    messages.success(request, "The clip is deleted.")
    return redirect("space", space_id=clip.space_id)


def metrics_page(request: HttpRequest) -> HttpResponse:
    """This web process's Prometheus metrics (and its in-process media workers'): with
    `Authorization: Bearer <SPACES_METRICS_TOKEN>`, or, when no token is set, to a scraper on this
    machine asking daphne itself, not through a proxy (whose forwarded address is no proof)."""
    token = settings.SPACES_METRICS_TOKEN
    if token:
        allowed = constant_time_compare(request.headers.get("Authorization", ""), f"Bearer {token}")
    else:
        allowed = from_this_machine(request)
    if not allowed:
        return HttpResponse("Metrics need the metrics token.\n", status=403, content_type="text/plain")
    metrics.web_process_seen()
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
