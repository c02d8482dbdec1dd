"""Who may host: the one place the hosting rule lives (PRODUCT.md §1).

`hosting_eligibility` answers with the reason and the figures behind it, for
pages and the API to show; `ensure_may_host` raises the 403 error that states
the rule. Selling tickets needs more, and its rule is ticketing's
(`ticketing.eligibility`).
"""

from dataclasses import asdict, dataclass

from django.conf import settings

from accounts.errors import HostingNotEligible
from accounts.models import User


@dataclass(frozen=True)
class HostingEligibility:
    eligible: bool
    reason: str  # "followers", "staff_grant", "not_enough_followers", "banned"
    detail: str
    followers_count: int
    required_followers: int

    def as_dict(self) -> dict:
        return asdict(self)


def hosting_eligibility(user: User) -> HostingEligibility:
    """May `user` host a space, and why (or why not)."""
    required = settings.SPACES_HOST_MIN_FOLLOWERS
    followers = user.followers_count

    def answer(eligible: bool, reason: str, detail: str) -> HostingEligibility:
        return HostingEligibility(eligible, reason, detail, followers, required)

    if user.is_banned or not user.is_active:
        return answer(False, "banned", "This account is banned and can't host.")
    if followers >= required:
        return answer(True, "followers", f"You can host: you have {followers} followers (at least {required} needed).")
    if user.hosting_granted:
        return answer(True, "staff_grant", "You can host: staff granted you hosting.")
    return answer(
        False,
        "not_enough_followers",
        f"Hosting a space needs at least {required} followers or a grant from staff; "
        f"you have {followers} follower{'' if followers == 1 else 's'}.",
    )


def ensure_may_host(user: User) -> HostingEligibility:
    """Raise `HostingNotEligible` (403) with the rule and the user's count unless they may host."""
    eligibility = hosting_eligibility(user)
    if not eligibility.eligible:
        raise HostingNotEligible(
            eligibility.detail,
            followers_count=eligibility.followers_count,
            required_followers=eligibility.required_followers,
        )
    return eligibility
