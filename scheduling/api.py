"""REST endpoints for scheduling: reminders, rescheduling, notifications and notification settings."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from rooms import selectors as rooms_selectors
from rooms import services as rooms_services
from rooms.payloads import space_payload
from rooms.serializers import SpaceSerializer
from scheduling import selectors, services
from scheduling.payloads import notification_payload
from scheduling.serializers import (
    MarkReadResultSerializer,
    MarkReadSerializer,
    NotificationPageSerializer,
    PreferencesSerializer,
    ReminderStateSerializer,
    RescheduleSerializer,
    UnreadCountSerializer,
)
from spaces_site.api_errors import error_responses
from spaces_site.keyset import BEFORE, older_url


def _reminder_state(request: Request, space_id: int) -> dict:
    space = rooms_selectors.space_get(space_id=space_id)
    return {
        "space": space.pk,
        "reminded": selectors.has_reminder(user=request.user, space=space),
        "reminders_count": selectors.reminder_count(space=space),
    }


class ReminderApi(APIView):
    """Your reminder for a space: POST sets it, DELETE removes it (both idempotent)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: ReminderStateSerializer, **error_responses(401, 404)})
    def get(self, request: Request, space_id: int) -> Response:
        return Response(_reminder_state(request, space_id))

    @extend_schema(
        request=None,
        responses={
            201: ReminderStateSerializer,
            200: ReminderStateSerializer,
            **error_responses(400, 401, 403, 404, 409),
        },
        summary="Set a reminder (201 when new, 200 when it was set already)",
    )
    def post(self, request: Request, space_id: int) -> Response:
        created = services.reminder_set(user=request.user, space_id=space_id)
        return Response(
            _reminder_state(request, space_id), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    @extend_schema(request=None, responses={200: ReminderStateSerializer, **error_responses(401, 404)})
    def delete(self, request: Request, space_id: int) -> Response:
        services.reminder_unset(user=request.user, space_id=space_id)
        return Response(_reminder_state(request, space_id))


class RescheduleApi(APIView):
    """The host (or staff) moves a scheduled space; reminder holders are told and reminders follow."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=RescheduleSerializer, responses={200: SpaceSerializer, **error_responses(400, 401, 403, 404, 409)}
    )
    def post(self, request: Request, space_id: int) -> Response:
        data = RescheduleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rooms_selectors.space_get(space_id=space_id)
        space = rooms_services.space_reschedule(
            actor=request.user, space_id=space_id, scheduled_for=data.validated_data["scheduled_for"]
        )
        return Response(space_payload(space))


class NotificationsApi(APIView):
    """Your notifications, newest first, a page at a time: `next` reads the older ones. No count of
    them all: `unread-count/` counts the unread ones."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        operation_id="notifications_list",  # as it was named while a numbered list
        parameters=[OpenApiParameter("unread", bool, description="Only the unread ones"), BEFORE],
        responses={200: NotificationPageSerializer, **error_responses(400, 401)},
    )
    def get(self, request: Request) -> Response:
        unread = request.query_params.get("unread", "").lower() in {"1", "true", "yes"}
        page = selectors.notifications_page(
            user=request.user,
            before=request.query_params.get("before", ""),
            size=api_settings.PAGE_SIZE,
            unread_only=unread,
        )
        return Response(
            {"next": older_url(request, page.older), "results": [notification_payload(n) for n in page.rows]}
        )


class NotificationsReadApi(APIView):
    """Mark notifications read: some by id, or all."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=MarkReadSerializer, responses={200: MarkReadResultSerializer, **error_responses(400, 401, 404)}
    )
    def post(self, request: Request) -> Response:
        data = MarkReadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        marked = services.notifications_mark_read(user=request.user, ids=data.validated_data.get("ids"))
        return Response({"marked": marked, "unread": selectors.unread_count(user=request.user)})


class UnreadCountApi(APIView):
    """How many of your notifications are unread (the bell's number)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: UnreadCountSerializer, **error_responses(401)})
    def get(self, request: Request) -> Response:
        return Response({"unread": selectors.unread_count(user=request.user)})


class PreferencesApi(APIView):
    """Which kinds of notification you get, on which channel; PATCH changes some."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: PreferencesSerializer, **error_responses(401)})
    def get(self, request: Request) -> Response:
        return Response(selectors.preferences_of(user=request.user))

    @extend_schema(request=PreferencesSerializer, responses={200: PreferencesSerializer, **error_responses(400, 401)})
    def patch(self, request: Request) -> Response:
        data = PreferencesSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return Response(services.preferences_update(user=request.user, changes=data.validated_data))
