import pytest
from django.core.management import call_command

from accounts.eligibility import hosting_eligibility
from accounts.models import Follow, User
from rooms.models import Space

pytestmark = pytest.mark.django_db


def test_seed_demo_makes_people_around_the_threshold_and_is_idempotent(capsys):
    call_command("seed_demo")
    call_command("seed_demo")

    counts = dict(User.objects.filter(username__in=["maya", "leo", "ivy"]).values_list("username", "followers_count"))
    assert counts == {"maya": 1240, "leo": 601, "ivy": 599}
    assert Follow.objects.filter(followee__username="leo").count() == 601
    assert hosting_eligibility(User.objects.get(username="leo")).eligible
    assert not hosting_eligibility(User.objects.get(username="ivy")).eligible
    assert hosting_eligibility(User.objects.get(username="nora")).reason == "staff_grant"
    assert User.objects.get(username="admin").is_staff
    assert sorted(Space.objects.values_list("state", flat=True)) == ["live", "scheduled"]
    output = capsys.readouterr().out
    assert "spaces-demo-2026" in output and "Demo data is already there." in output
