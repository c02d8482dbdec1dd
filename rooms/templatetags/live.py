"""Template tags for pages of other apps that show whether someone is live (a profile's purple ring)."""

from django import template

from rooms import selectors

register = template.Library()


@register.simple_tag
def live_space_of(user) -> int | None:
    """The live space `user` hosts now, if any."""
    return selectors.live_space_ids_by_host(host_ids=[user.pk]).get(user.pk)
