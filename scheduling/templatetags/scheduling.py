"""Template tags: the bell in the top bar and the reminder button on spaces and their cards."""

from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType

from django import template
from django.http import HttpRequest
from django.urls import get_script_prefix, get_urlconf, reverse

from scheduling import selectors

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


@lru_cache(maxsize=4096)
def _reminder_paths(space_id: int, script_prefix: str, urlconf: str | None) -> Mapping[str, str]:
    """The addresses a space's reminder button links to. They never change for a space, and reversing
    them took most of a button's time (five on each card of the home page's upcoming list): kept per
    process, by the prefix and URLconf they were reversed under."""
    kwargs = {"space_id": space_id}
    return MappingProxyType(
        {
            "set": reverse("space-reminder-set", kwargs=kwargs),
            "unset": reverse("space-reminder-unset", kwargs=kwargs),
            "api": reverse("api-space-reminder", kwargs=kwargs),
            "calendar": reverse("space-calendar", kwargs=kwargs),
            "schedule": reverse("space-schedule", kwargs=kwargs),
        }
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
        "paths": _reminder_paths(space.pk, get_script_prefix(), get_urlconf()),
    }
