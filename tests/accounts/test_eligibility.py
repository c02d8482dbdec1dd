import pytest

from accounts import services
from accounts.eligibility import ensure_may_host, hosting_eligibility
from accounts.errors import HostingNotEligible
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_599_followers_may_not_host():
    user = UserFactory(followers=599)

    eligibility = hosting_eligibility(user)

    assert eligibility.eligible is False
    assert eligibility.reason == "not_enough_followers"
    assert (eligibility.followers_count, eligibility.required_followers) == (599, 600)
    assert eligibility.detail == (
        "Hosting a space needs at least 600 followers or a grant from staff; you have 599 followers. "
        "Carrying on a live space handed to you as its co-host needs no followers."
    )


def test_600_followers_may_host():
    user = UserFactory(followers=600)

    eligibility = hosting_eligibility(user)

    assert eligibility.eligible is True
    assert eligibility.reason == "followers"
    assert eligibility.followers_count == 600


def test_staff_grant_lets_a_user_with_few_followers_host_until_revoked():
    staff = UserFactory(is_staff=True)
    user = UserFactory(followers=1)

    granted = hosting_eligibility(services.hosting_grant(actor=staff, user=user))
    revoked = hosting_eligibility(services.hosting_revoke(actor=staff, user=user))

    assert (granted.eligible, granted.reason) == (True, "staff_grant")
    assert (revoked.eligible, revoked.reason) == (False, "not_enough_followers")
    assert "you have 1 follower." in revoked.detail


def test_threshold_is_a_setting(settings):
    settings.SPACES_HOST_MIN_FOLLOWERS = 3
    user = UserFactory(followers=3)

    assert hosting_eligibility(user).eligible is True


def test_banned_user_may_not_host_even_with_followers():
    staff = UserFactory(is_staff=True)
    user = UserFactory(followers=700)
    services.user_ban(actor=staff, user=user)
    user.refresh_from_db()

    assert (hosting_eligibility(user).eligible, hosting_eligibility(user).reason) == (False, "banned")


def test_ensure_may_host_raises_403_with_rule_and_count():
    user = UserFactory(followers=12)

    with pytest.raises(HostingNotEligible) as raised:
        ensure_may_host(user)

    assert raised.value.status == 403
    assert raised.value.as_dict() == {
        "code": "hosting_not_eligible",
        "detail": "Hosting a space needs at least 600 followers or a grant from staff; you have 12 followers. "
        "Carrying on a live space handed to you as its co-host needs no followers.",
        "followers_count": 12,
        "required_followers": 600,
    }


@pytest.mark.parametrize(
    ("followers", "granted", "eligible", "reason"),
    [
        (599, False, False, "not_enough_followers"),
        (600, False, True, "followers"),
        (0, True, True, "staff_grant"),
    ],
)
def test_eligibility_api_tells_the_user_whether_and_why(api, followers, granted, eligible, reason):
    user = UserFactory(followers=followers, hosting_granted=granted)
    api.force_authenticate(user)

    response = api.get("/api/me/hosting-eligibility/")

    assert response.status_code == 200
    body = response.json()
    assert (body["eligible"], body["reason"]) == (eligible, reason)
    assert (body["followers_count"], body["required_followers"]) == (followers, 600)


def test_eligibility_api_needs_a_login(api):
    response = api.get("/api/me/hosting-eligibility/")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
