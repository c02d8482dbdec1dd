"""REST endpoints for recordings and clips."""

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from media import selectors
from media.errors import ClipNotFound, RecordingNotFound
from media.models import Clip, ClipState, Recording
from media.recording import services
from media.serializers import ClipFromReplaySerializer, ClipSerializer, RecordingSerializer
from rooms.selectors import ensure_may_replay, space_get
from spaces_site.api_errors import error_responses


class SpaceRecordingsApi(APIView):
    """A space's playable recordings, in order."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: RecordingSerializer(many=True), **error_responses(403, 404)})
    def get(self, request: Request, space_id: int) -> Response:
        space = space_get(space_id=space_id)
        ensure_may_replay(user=request.user, space=space)
        return Response(RecordingSerializer(selectors.replay_parts(space=space), many=True).data)


class ClipAsksThrottled:
    """Clips asked are limited per account (`clip` scope, SPACES_API_CLIP_RATE, a budget the replay page's
    form shares) on top of the usual limits: past it the refusal is remembered in front of Django."""

    throttle_scope = "clip"

    def get_throttles(self):
        return [*super().get_throttles(), ScopedRateThrottle()]


class SpaceClipsApi(ClipAsksThrottled, APIView):
    """POST: clip "the last 30 s" of a live recorded space. The clip is cut by the media worker within a
    moment: it is `pending` until then, then `ready` (or `failed`, with the reason). Past a clip limit,
    429 `clip_limit` with `Retry-After`."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={202: ClipSerializer, **error_responses(401, 403, 404, 409, 429)})
    def post(self, request: Request, space_id: int) -> Response:
        clip = services.clip_of_live(actor=request.user, space_id=space_id)
        return Response(ClipSerializer(clip).data, status=status.HTTP_202_ACCEPTED)


class RecordingApi(APIView):
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]

    @extend_schema(responses={200: RecordingSerializer, **error_responses(403, 404)})
    def get(self, request: Request, recording_id: int) -> Response:
        return Response(
            RecordingSerializer(selectors.recording_get(recording_id=recording_id, viewer=request.user)).data
        )

    @extend_schema(responses={204: None, **error_responses(401, 403, 404)})
    def delete(self, request: Request, recording_id: int) -> Response:
        recording = Recording.objects.select_related("space").filter(pk=recording_id).first()
        if recording is None:
            raise RecordingNotFound(f"No recording with id {recording_id}.")
        services.recording_delete(actor=request.user, recording=recording)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RecordingClipsApi(ClipAsksThrottled, APIView):
    """POST: clip up to 30 s of a replay, from `start_ms` (codec copy of the recording's packets). The clip
    is cut off the request: 202 while it is `pending` (then `ready`, or `failed` with the reason), 201 if it
    was cut already. Past a clip limit (per person or space per hour, storage), 429 `clip_limit` with
    `Retry-After`."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=ClipFromReplaySerializer,
        responses={201: ClipSerializer, 202: ClipSerializer, **error_responses(400, 401, 403, 404, 429)},
    )
    def post(self, request: Request, recording_id: int) -> Response:
        data = ClipFromReplaySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        clip = services.clip_from_replay(actor=request.user, recording_id=recording_id, **data.validated_data)
        made = status.HTTP_201_CREATED if clip.state == ClipState.READY else status.HTTP_202_ACCEPTED
        return Response(ClipSerializer(clip).data, status=made)


class RecordingPlaysApi(APIView):
    """POST: a replay started playing (counted in the recording's plays and the host's numbers, once per
    person per 30 minutes; 204 either way)."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(request=None, responses={204: None, **error_responses(403, 404)})
    def post(self, request: Request, recording_id: int) -> Response:
        recording = selectors.recording_get(recording_id=recording_id, viewer=request.user)
        services.replay_played(recording=recording, listener=services.listener_of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ClipApi(APIView):
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]

    @extend_schema(responses={200: ClipSerializer, **error_responses(403, 404)})
    def get(self, request: Request, token: str) -> Response:
        return Response(ClipSerializer(services.clip_settle(selectors.clip_get(token=token, viewer=request.user))).data)

    @extend_schema(responses={204: None, **error_responses(401, 403, 404)})
    def delete(self, request: Request, token: str) -> Response:
        clip = Clip.objects.select_related("space").filter(token=token).first()
        if clip is None:
            raise ClipNotFound("No such clip.")
        services.clip_delete(actor=request.user, clip=clip)
        return Response(status=status.HTTP_204_NO_CONTENT)
