"""Who may host: the one place the hosting rule lives (PRODUCT.md §1).

`hosting_eligibility` answers with the reason and the figures behind it, for
pages and the API to show; `ensure_may_host` raises the 403 error that states
the rule. Only real followers count (`selectors.counted_followers`): the
answer's `followers_count` is theirs, and its detail says how many others
don't count and why. Selling tickets needs more, and its rule is ticketing's
(`ticketing.eligibility`).
"""

from dataclasses import asdict, dataclass

from django.conf import settings

from accounts.errors import HostingNotEligible
from accounts.models import User
from accounts.selectors import CountedFollowers, counted_followers


@dataclass(frozen=True)
class HostingEligibility:
    eligible: bool
    reason: str  # "followers", "staff_grant", "not_enough_followers", "banned"
    detail: str
    followers_count: int  # the followers that count (selectors.counted_followers), not the profile's number
    required_followers: int

    def as_dict(self) -> dict:
        return asdict(self)


def followers_not_counted(tally: CountedFollowers) -> str:
    """Why some followers don't count, for an answer's detail ("" when all of them do)."""
    reasons = []
    if tally.too_new:
        hours = settings.SPACES_FOLLOWER_MIN_AGE_H
        reasons.append(f"{tally.too_new} who joined Spaces or followed you in the last {hours} hours")
    if tally.inactive:
        reasons.append(f"{tally.inactive} banned or deactivated account{'' if tally.inactive == 1 else 's'}")
    return " and ".join(reasons)


# PRODUCT.md §1: eligibility is needed to start or schedule a space, not to carry one on.
HANDED_OVER = "Carrying on a live space handed to you as its co-host needs no followers."


def hosting_eligibility(user: User) -> HostingEligibility:
    """May `user` host a space, and why (or why not)."""
    required = settings.SPACES_HOST_MIN_FOLLOWERS
    tally = counted_followers(user=user)
    followers = tally.counted
    left_out = followers_not_counted(tally)
    plural = "" if followers == 1 else "s"
    # "you have 599 followers", or with some left out "599 followers that count, not counting ...".
    have = f"you have {followers} follower{plural}" + (
        f" that count{'s' if followers == 1 else ''}" if left_out else ""
    )
    not_counting = f", not counting {left_out}" if left_out else ""

    def answer(eligible: bool, reason: str, detail: str) -> HostingEligibility:
        return HostingEligibility(eligible, reason, detail, followers, required)

    if user.is_banned or not user.is_active:
        return answer(False, "banned", "This account is banned and can't host.")
    if followers >= required:
        return answer(True, "followers", f"You can host: {have} (at least {required} needed){not_counting}.")
    if user.hosting_granted:
        return answer(True, "staff_grant", "You can host: staff granted you hosting.")
    return answer(
        False,
        "not_enough_followers",
        f"Hosting a space needs at least {required} followers or a grant from staff; {have}{not_counting}. "
        f"{HANDED_OVER}",
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
