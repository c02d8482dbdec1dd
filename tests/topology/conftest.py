import shutil

import pytest
from django.test import Client

from tests.topology.cluster import Cluster


@pytest.fixture
def cluster(transactional_db):
    """Redis, web processes and media workers of this test only (see `tests.topology.cluster`)."""
    if not shutil.which("redis-server"):
        pytest.fail("The topology tests start their own Redis: install redis-server.", pytrace=False)
    cluster = Cluster()
    yield cluster
    cluster.close()


def cookie_for(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value
