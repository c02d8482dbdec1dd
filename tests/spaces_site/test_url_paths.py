"""Addresses reversed once per process (`spaces_site.url_paths`): right for each key and script prefix."""

import pytest
from django.urls import reverse, set_script_prefix

from accounts.models import PERSON_ROUTES
from scheduling.templatetags.scheduling import REMINDER_ROUTES
from spaces_site import url_paths


@pytest.fixture
def prefix():
    yield set_script_prefix
    set_script_prefix("/")


def test_each_key_gets_its_own_addresses_under_the_prefix_of_the_moment(prefix):
    # when: the same routes for two people, then under a mounted prefix
    ada = url_paths.paths(PERSON_ROUTES, username="ada")
    bo = url_paths.paths(PERSON_ROUTES, username="bo")
    prefix("/spaces-app/")
    mounted = url_paths.paths(PERSON_ROUTES, username="ada")

    # then: each is what reverse() says for that key and prefix, and a kept mapping can't be changed
    assert ada["profile"] == "/u/ada/" and bo["profile"] == "/u/bo/"
    assert mounted["profile"] == "/spaces-app/u/ada/" == reverse("profile", kwargs={"username": "ada"})
    assert dict(url_paths.paths(REMINDER_ROUTES, space_id=7)) == {
        name: reverse(pattern, kwargs={"space_id": 7}) for name, pattern in REMINDER_ROUTES
    }
    with pytest.raises(TypeError):
        ada["profile"] = "/elsewhere/"
