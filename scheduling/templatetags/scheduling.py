"""Template tags: the bell in the top bar and the reminder button on spaces and their cards."""

from django import template
from django.http import HttpRequest

from scheduling import selectors
from spaces_site import url_paths

register = template.Library()


def _reminded(request: HttpRequest, space) -> bool:
    """Has the viewer a reminder for `space`? From the list's annotation
    when it has one; otherwise the viewer's reminders, read once per request however many cards there are."""
    if hasattr(space, "reminded"):
        return space.reminded
    if not hasattr(request, "_reminded_space_ids"):
        request._reminded_space_ids = selectors.reminded_space_ids(user=request.user)
    return space.pk in request._reminded_space_ids


@register.inclusion_tag("scheduling/_bell.html", takes_context=True)
def notification_bell(context) -> dict:
    user = context["request"].user
    return {"user": user, "unread": selectors.unread_count(user=user) if user.is_authenticated else 0}


# The addresses a space's reminder button links to, which never change for a space.
REMINDER_ROUTES = (
    ("set", "space-reminder-set"),
    ("unset", "space-reminder-unset"),
    ("api", "api-space-reminder"),
    ("calendar", "space-calendar"),
    ("schedule", "space-schedule"),
)


@register.inclusion_tag("scheduling/_reminder_button.html", takes_context=True)
def reminder_button(context, space, *, compact: bool = False) -> dict:
    """ "Remind me" / "Reminder set" for a scheduled space, and its calendar file."""
    request = context["request"]
    user = request.user
    return {
        "space": space,
        "user": user,
        "request": request,
        "csrf_token": context.get("csrf_token"),
        "reminded": user.is_authenticated and _reminded(request, space),
        "is_host": user.is_authenticated and user.pk == space.host_id,
        "compact": compact,
        "paths": url_paths.paths(REMINDER_ROUTES, space_id=space.pk),
    }
