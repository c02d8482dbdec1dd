"""Pages for scheduling: notifications, notification settings, reminders, a space's calendar file and
the host's page to reschedule, start or cancel a scheduled space."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from rooms import selectors as rooms_selectors
from rooms import services as rooms_services
from rooms.errors import SpaceNotFound
from rooms.models import Space, SpaceState
from scheduling import ics, selectors, services
from scheduling.forms import PreferencesForm, RescheduleForm
from spaces_site.errors import ServiceError
from spaces_site.keyset import InvalidCursor


def _space(space_id: int) -> Space:
    try:
        return rooms_selectors.space_get(space_id=space_id)
    except SpaceNotFound as error:
        raise Http404(error.detail) from error


def _back(request: HttpRequest, space_id: int) -> HttpResponse:
    """Back where the form was (a card in a feed, or the space page)."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return redirect(target)
    return redirect("space", space_id=space_id)


NOTIFICATIONS_PAGE = 30


@login_required
def notifications(request: HttpRequest) -> HttpResponse:
    """Your notifications, newest first, a page at a time ("Older"), with no count of them all."""
    try:
        page = selectors.notifications_page(
            user=request.user, before=request.GET.get("before", ""), size=NOTIFICATIONS_PAGE
        )
    except InvalidCursor:
        page = selectors.notifications_page(user=request.user, size=NOTIFICATIONS_PAGE)  # a mangled link: the top
    return render(
        request,
        "scheduling/notifications.html",
        {"page": page, "unread": selectors.unread_count(user=request.user)},
    )


@login_required
@require_POST
def notifications_read(request: HttpRequest) -> HttpResponse:
    services.notifications_mark_read(user=request.user)
    return redirect("notifications")


@login_required
def notification_settings(request: HttpRequest) -> HttpResponse:
    form = PreferencesForm(request.POST or None, preferences=selectors.preferences_of(user=request.user))
    if request.method == "POST" and form.is_valid():
        services.preferences_update(user=request.user, changes=form.changes())
        messages.success(request, "Your notification settings are saved.")
        return redirect("notification-settings")
    return render(request, "scheduling/settings.html", {"form": form})


@login_required
@require_POST
def reminder_set(request: HttpRequest, space_id: int) -> HttpResponse:
    try:
        services.reminder_set(user=request.user, space_id=space_id)
    except SpaceNotFound as error:
        raise Http404(error.detail) from error
    except ServiceError as error:
        messages.error(request, error.detail)
    else:
        messages.success(request, "Reminder set: we'll tell you before it starts and when it goes live.")
    return _back(request, space_id)


@login_required
@require_POST
def reminder_unset(request: HttpRequest, space_id: int) -> HttpResponse:
    try:
        services.reminder_unset(user=request.user, space_id=space_id)
    except SpaceNotFound as error:
        raise Http404(error.detail) from error
    messages.success(request, "Reminder removed.")
    return _back(request, space_id)


def space_calendar(request: HttpRequest, space_id: int) -> HttpResponse:
    """The space's .ics file, for any space with a scheduled time."""
    space = _space(space_id)
    if space.scheduled_for is None:
        raise Http404("This space was never scheduled, so it has no calendar entry.")
    body = ics.space_ics(space=space, sequence=selectors.schedule_round(space_id=space.pk), now=timezone.now())
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="space-{space.pk}.ics"'
    return response


@login_required
def space_schedule(request: HttpRequest, space_id: int) -> HttpResponse:
    """The host's page for a scheduled space: move it, start it now, or cancel it."""
    space = _space(space_id)
    if space.host_id != request.user.pk and not request.user.is_staff:
        return render(request, "scheduling/not_host.html", {"space": space}, status=403)
    form = RescheduleForm()
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "reschedule":
                form = RescheduleForm(request.POST)
                if form.is_valid():
                    rooms_services.space_reschedule(
                        actor=request.user, space_id=space.pk, scheduled_for=form.cleaned_data["scheduled_for"]
                    )
                    messages.success(request, "New time saved; everyone with a reminder is told.")
                    return redirect("space-schedule", space_id=space.pk)
            elif action == "start":
                rooms_services.space_start(actor=request.user, space_id=space.pk)
                return redirect(space)
            elif action == "cancel":
                rooms_services.space_cancel(actor=request.user, space_id=space.pk)
                messages.success(request, "The space is cancelled; everyone with a reminder is told.")
                return redirect(space)
            else:
                messages.error(request, "Choose to reschedule, start or cancel.")
        except ServiceError as error:
            if action == "reschedule":
                form.add_error(None, error.detail)
            else:
                messages.error(request, error.detail)
    space.refresh_from_db()
    context = {
        "space": space,
        "form": form,
        "reminders": selectors.reminder_count(space=space),
        "scheduled": space.state == SpaceState.SCHEDULED,
    }
    return render(request, "scheduling/schedule.html", context, status=400 if form.errors else 200)
