"""REST endpoints for spaces: create, list and search, detail, edit, start, end, cancel, commands, reports."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import user_get
from rooms import commands, selectors, services
from rooms.models import Participant, Space
from rooms.payloads import numbers_payload, participant_payload, space_payload
from rooms.serializers import (
    CaptionLineSerializer,
    CommandResultSerializer,
    CommandSerializer,
    ReportSerializer,
    SpaceCreateSerializer,
    SpaceDetailSerializer,
    SpaceEditSerializer,
    SpaceNumbersSerializer,
    SpaceSerializer,
)
from spaces_site.api_errors import error_responses


def _detail(space: Space, viewer) -> dict:
    participant = selectors.participant_of(space=space, user=viewer)
    snapshot = selectors.space_snapshot(space=space, participant=participant)
    return {**snapshot["space"], **{k: snapshot[k] for k in ("stage", "listener_count", "you")}}


class SpacesApi(generics.ListAPIView):
    """List and search spaces; POST creates one (live now, or scheduled)."""

    permission_classes = [permissions.IsAuthenticatedOrReadOnly]
    serializer_class = SpaceSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, description="Words in the title or a topic"),
            OpenApiParameter("state", str, enum=["scheduled", "live", "ended", "cancelled"]),
            OpenApiParameter("host", str, description="The host's username"),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        params = self.request.query_params
        return selectors.spaces_search(
            viewer=self.request.user,
            query=params.get("q", "")[:100],
            state=params.get("state", ""),
            host=params.get("host", ""),
        )

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([space_payload(space) for space in page])

    @extend_schema(
        request=SpaceCreateSerializer, responses={201: SpaceDetailSerializer, **error_responses(400, 401, 403, 409)}
    )
    def post(self, request: Request) -> Response:
        data = SpaceCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        space = services.space_create(host=request.user, **data.validated_data)
        return Response(_detail(space, request.user), status=status.HTTP_201_CREATED)


class SpaceApi(APIView):
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]

    @extend_schema(responses={200: SpaceDetailSerializer, **error_responses(404)})
    def get(self, request: Request, space_id: int) -> Response:
        return Response(_detail(selectors.space_get(space_id=space_id), request.user))

    @extend_schema(
        request=SpaceEditSerializer, responses={200: SpaceDetailSerializer, **error_responses(400, 401, 403, 404, 409)}
    )
    def patch(self, request: Request, space_id: int) -> Response:
        selectors.space_get(space_id=space_id)
        changes = SpaceEditSerializer(data=request.data, partial=True)
        changes.is_valid(raise_exception=True)
        space = services.space_edit(actor=request.user, space_id=space_id, **changes.validated_data)
        return Response(_detail(space, request.user))


class SpaceTranscriptApi(generics.ListAPIView):
    """The space's transcript: its final caption lines, in time order (paginated)."""

    permission_classes = [permissions.AllowAny]
    serializer_class = CaptionLineSerializer

    @extend_schema(responses={200: CaptionLineSerializer(many=True), **error_responses(403, 404)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        space = selectors.space_get(space_id=self.kwargs["space_id"])
        selectors.ensure_may_replay(user=self.request.user, space=space)
        return selectors.transcript_lines(space=space)


class _SpaceTransitionApi(APIView):
    """POST moves the space along its lifecycle through one service."""

    permission_classes = [permissions.IsAuthenticated]
    transition = staticmethod(services.space_start)

    @extend_schema(request=None, responses={200: SpaceDetailSerializer, **error_responses(401, 403, 404, 409)})
    def post(self, request: Request, space_id: int) -> Response:
        selectors.space_get(space_id=space_id)
        space = self.transition(actor=request.user, space_id=space_id)
        return Response(_detail(space, request.user))


class SpaceStartApi(_SpaceTransitionApi):
    """Start a scheduled space (its host)."""

    transition = staticmethod(services.space_start)


class SpaceEndApi(_SpaceTransitionApi):
    """End a live space (its host, or staff)."""

    transition = staticmethod(services.space_end)


class SpaceCancelApi(_SpaceTransitionApi):
    """Cancel a scheduled space (its host, or staff)."""

    transition = staticmethod(services.space_cancel)


class SpaceJoinApi(APIView):
    """Enter a space as a listener (the websocket does this on connect)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={200: SpaceDetailSerializer, **error_responses(401, 403, 404, 409)})
    def post(self, request: Request, space_id: int) -> Response:
        space = selectors.space_get(space_id=space_id)
        services.space_join(user=request.user, space=space)
        return Response(_detail(space, request.user))


class SpaceCommandApi(APIView):
    """Send a command to a space, exactly as over its websocket."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=CommandSerializer, responses={200: CommandResultSerializer, **error_responses(400, 401, 403, 404, 409)}
    )
    def post(self, request: Request, space_id: int) -> Response:
        result = commands.execute(actor=request.user, space_id=space_id, message=request.data, check_space=True)
        body = {"ok": True}
        if isinstance(result, Participant):
            body["participant"] = participant_payload(result)
        return Response(body)


class ReportApi(APIView):
    """Report a space or a person to staff."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=ReportSerializer, responses={201: None, **error_responses(400, 401, 404)})
    def post(self, request: Request) -> Response:
        data = ReportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        services.report_create(
            reporter=request.user,
            reason=fields["reason"],
            space=selectors.space_get(space_id=fields["space"]) if "space" in fields else None,
            user=user_get(username=fields["user"]) if "user" in fields else None,
            details=fields.get("details", ""),
        )
        return Response({"ok": True}, status=status.HTTP_201_CREATED)


class HostNumbersApi(generics.ListAPIView):
    """The signed-in host's spaces that ran, newest first, each with its numbers."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = SpaceNumbersSerializer

    def get_queryset(self):
        return selectors.host_spaces_with_numbers(host=self.request.user)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([numbers_payload(s, getattr(s, "numbers", None)) for s in page])


class SpaceNumbersApi(APIView):
    """One space's numbers, for its host (and staff)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: SpaceNumbersSerializer, **error_responses(401, 403, 404)})
    def get(self, request: Request, space_id: int) -> Response:
        space = selectors.space_get(space_id=space_id)
        selectors.ensure_may_see_numbers(user=request.user, space=space)
        return Response(numbers_payload(space, selectors.numbers_of(space=space)))
