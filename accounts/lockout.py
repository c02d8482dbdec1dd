"""Failed sign-ins counted per address across usernames too (password spraying), in django-axes.

axes locks a username out from one address after `SPACES_LOGIN_FAILURE_LIMIT` failures (AXES_* in
spaces_site/settings.py). That alone lets one address try a common password against every username.
So an address with `SPACES_LOGIN_ADDRESS_FAILURE_LIMIT` failures inside the cool-off, whatever the
usernames, is locked out for all of them, with the same 429 (`accounts.views.login_locked_out`); each
refused try starts its wait again, as for a username.

Not axes' own `"ip_address"` lockout parameter: its one failure limit would serve the pair and the
address alike, and a successful sign-in deletes every attempt its parameters match, so a sprayer
could wipe their address's count by signing in to an account of their own now and then. Here a
success still clears only that username's failures from that address.
"""

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum


def address_failures(request) -> int:
    """Failed sign-ins from the request's address (`request.axes_ip_address`) inside the cool-off,
    all usernames together."""
    attempts = AccessAttempt.objects.filter(
        ip_address=request.axes_ip_address, attempt_time__gte=get_cool_off_threshold(request)
    )
    return attempts.aggregate(failures=Sum("failures_since_start"))["failures"] or 0


def address_locked_out(request) -> bool:
    return address_failures(request) >= settings.SPACES_LOGIN_ADDRESS_FAILURE_LIMIT


class SignInLockout(AxesDatabaseHandler):
    """axes' database handler (`AXES_HANDLER`), with the address's own limit beside the pair's."""

    def get_failures(self, request, credentials: dict | None = None) -> int:
        """The pair's failures, which axes holds against `AXES_FAILURE_LIMIT` both before a sign-in
        is checked and after one fails; once the address is past its own limit, at least that limit,
        so axes refuses and answers as it does for a locked-out pair."""
        failures = super().get_failures(request, credentials)
        if address_locked_out(request):
            return max(failures, get_failure_limit(request, credentials))
        return failures
