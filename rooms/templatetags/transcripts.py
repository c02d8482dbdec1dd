from django import template

register = template.Library()


@register.filter
def clock(ms: int) -> str:
    """Milliseconds from a space's start as m:ss (or h:mm:ss)."""
    seconds = int(ms) // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
