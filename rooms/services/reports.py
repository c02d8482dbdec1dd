"""Abuse reports from users, for staff."""

from accounts.models import User
from rooms.errors import InvalidSpace
from rooms.models import AbuseReport, Space


def report_create(
    *, reporter: User, reason: str, space: Space | None = None, user: User | None = None, details: str = ""
) -> AbuseReport:
    """Report a space, a user, or a user in a space."""
    if space is None and user is None:
        raise InvalidSpace("Say which space or which person you are reporting.", code="no_subject")
    if user is not None and user.pk == reporter.pk:
        raise InvalidSpace("You can't report yourself.", code="self_report")
    if reason not in AbuseReport.Reason.values:
        raise InvalidSpace(f"The reason is one of: {', '.join(AbuseReport.Reason.values)}.", code="bad_reason")
    # The usernames are kept with the report so that it still says who once an account is deleted.
    return AbuseReport.objects.create(
        reporter=reporter,
        reporter_username=reporter.username,
        space=space,
        reported_user=user,
        reported_username=user.username if user is not None else "",
        reason=reason,
        details=details[:1000],
    )
