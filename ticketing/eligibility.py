"""Who may sell tickets: the one place the ticketed-hosting rule lives (PRODUCT.md §1, ticketed hosting).

`ticketed_hosting_eligibility` answers with the unmet conditions and the
figures behind them, for pages and the API to show; `ensure_may_sell_tickets`
raises the 403 error that states the rule. As for hosting, only real followers
count (`accounts.selectors.counted_followers`). Hosting at all is accounts' rule
(`accounts.eligibility`).
"""

from dataclasses import asdict, dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from accounts.eligibility import followers_not_counted
from accounts.errors import HostingNotEligible
from accounts.models import User
from accounts.selectors import counted_followers
from rooms.models import Space
from ticketing.selectors import creator_charges_enabled


@dataclass(frozen=True)
class TicketedHostingEligibility:
    eligible: bool
    reason: str  # "eligible", "banned", or the first unmet condition below
    detail: str
    unmet: tuple[str, ...]  # "not_enough_followers", "not_enough_hosted", "payouts_not_ready"
    followers_count: int  # the followers that count (accounts.selectors.counted_followers)
    required_followers: int
    hosted_count: int
    required_hosted: int
    hosted_window_days: int
    charges_enabled: bool

    def as_dict(self) -> dict:
        return {**asdict(self), "unmet": list(self.unmet)}


def ticketed_hosting_eligibility(user: User) -> TicketedHostingEligibility:
    """May `user` sell tickets to their spaces, and which conditions fail, with the figures.

    Three conditions, all needed: followers, spaces hosted (started) in the
    window, and a Stripe Connect account that can take charges. A staff grant
    of hosting does not stand in for any of them.
    """
    required_followers = settings.SPACES_TICKETED_MIN_FOLLOWERS
    required_hosted = settings.SPACES_TICKETED_MIN_HOSTED
    days = settings.SPACES_TICKETED_HOSTED_WINDOW_D
    tally = counted_followers(user=user)
    followers = tally.counted
    left_out = followers_not_counted(tally)
    # With some followers left out: "999 that count, not counting 1 banned or deactivated account".
    that_count = f" that count{'s' if followers == 1 else ''}" if left_out else ""
    not_counting = f", not counting {left_out}" if left_out else ""
    hosted = Space.objects.filter(host=user, started_at__gte=timezone.now() - timedelta(days=days)).count()
    charges_enabled = creator_charges_enabled(user=user)

    def answer(reason: str, detail: str, unmet: tuple[str, ...] = ()) -> TicketedHostingEligibility:
        return TicketedHostingEligibility(
            eligible=not unmet and reason == "eligible",
            reason=reason,
            detail=detail,
            unmet=unmet,
            followers_count=followers,
            required_followers=required_followers,
            hosted_count=hosted,
            required_hosted=required_hosted,
            hosted_window_days=days,
            charges_enabled=charges_enabled,
        )

    if user.is_banned or not user.is_active:
        return answer("banned", "This account is banned and can't sell tickets.", ("banned",))
    unmet, missing = [], []
    if followers < required_followers:
        unmet.append("not_enough_followers")
        missing.append(f"at least {required_followers} followers (you have {followers}{that_count}{not_counting})")
    if hosted < required_hosted:
        unmet.append("not_enough_hosted")
        missing.append(f"at least {required_hosted} spaces hosted in the last {days} days (you hosted {hosted})")
    if not charges_enabled:
        unmet.append("payouts_not_ready")
        missing.append("a finished Stripe onboarding so you can be paid (yours isn't finished)")
    if unmet:
        return answer(unmet[0], f"Selling tickets needs {'; '.join(missing)}.", tuple(unmet))
    return answer(
        "eligible",
        f"You can sell tickets: {followers} followers{that_count}, {hosted} spaces hosted in the last {days} days, "
        "and Stripe can pay you." + (f" Followers not counted: {left_out}." if left_out else ""),
    )


def ensure_may_sell_tickets(user: User) -> TicketedHostingEligibility:
    """Raise a 403 (`ticketed_hosting_not_eligible`) saying which conditions fail, with the figures."""
    eligibility = ticketed_hosting_eligibility(user)
    if not eligibility.eligible:
        figures = eligibility.as_dict()
        for key in ("eligible", "reason", "detail"):
            figures.pop(key)
        raise HostingNotEligible(eligibility.detail, code="ticketed_hosting_not_eligible", **figures)
    return eligibility
