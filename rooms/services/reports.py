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
    return AbuseReport.objects.create(
        reporter=reporter, space=space, reported_user=user, reason=reason, details=details[:1000]
    )
