"""schemathesis against the API's own schema: no request makes a server error, and every answer is one the schema
documents (its status code, content type and body).

The schema comes from the app (`/api/schema/`) and every request goes to it through WSGI in this process, on the
test database: no server, no network. A seeded host with a live space signs every request with their token, so
the operations that need a person are exercised too; each operation runs twice, once on ids and usernames
schemathesis makes up (mostly 404s) and once on the seeded ones. Examples per operation are bounded and
derandomized (a fixed seed), so the run is the same every time and takes under a minute on two cores.
"""

import json
import time

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from rest_framework.throttling import SimpleRateThrottle
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import Failure, FailureGroup

from rooms.models import Participant, Role
from tests.factories import UserFactory
from tests.rooms.scene import make_host, make_space

pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION = 15
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def app():
    """Django's WSGI handler, keeping the test's database connection open between requests (as Django's test
    client does): the end of a request closes it otherwise, and the test's transaction with it."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield WSGIHandler()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def schema(app):
    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", app)


@pytest.fixture
def seeded():
    """A host (with a token) whose live space has a listener on it."""
    host = make_host(username="seeded_host")
    space = make_space(host=host, title="Seeded live space", topics=["music"])
    listener = UserFactory(username="seeded_listener")
    Participant.objects.create(space=space, user=listener, role=Role.LISTENER)
    token = Token.objects.create(user=host)
    return {"host": host, "space": space, "token": token.key}


@pytest.fixture
def unthrottled(monkeypatch):
    """Throttles off: hundreds of requests a minute from one token would otherwise be answered 429 (documented,
    but nothing else would be exercised). Each scope the settings name stays known, so a view whose scope has
    no rate still fails here as it would in production."""
    rates = dict.fromkeys(django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"])
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)


def _run_operation(operation, *, mode, path_parameters, headers, keep_token, found) -> int:
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)
    ran = 0

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def exercise(case):
        nonlocal ran
        keep_token()  # DELETE /api/auth/token/ revokes it; the next example signs with it again
        response = case.call(headers=headers)
        ran += 1
        checks = CHECKS
        if response.status_code == 503 and "503" in case.operation.definition.raw["responses"]:
            # The documented "Stripe is not set up" answer of the payment operations (no key in tests).
            checks = [check for check in CHECKS if check is not not_a_server_error]
        try:
            case.validate_response(response, checks=checks)
        except (Failure, FailureGroup) as failure:
            body = response.content[:300] if response.content else b""
            found.append(f"{case.method} {case.formatted_path} ({mode}) -> {response.status_code} {body!r}: {failure}")

    try:
        exercise()
    except Unsatisfiable:
        # Nothing in this operation can be made invalid (no parameters, no body): no negative examples.
        assert mode is schemathesis.GenerationMode.NEGATIVE
    return ran


def test_every_operation_answers_as_its_schema_says_and_never_with_a_server_error(schema, seeded, unthrottled):
    # given the API's schema and a host signed in with a token
    host, space, token = seeded["host"], seeded["space"], seeded["token"]
    headers = {"Authorization": f"Token {token}"}
    known = {"space_id": space.pk, "username": "seeded_listener", "recording_id": 1, "token": "no-such-clip"}

    def keep_token():
        Token.objects.get_or_create(key=token, defaults={"user": host})

    # when schemathesis sends each operation valid and invalid requests
    started, operations, examples, found = time.monotonic(), 0, 0, []
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        seeded_parameters = {p.name: known[p.name] for p in operation.path_parameters}
        # Invalid data goes in the query and the body: a path segment its converter doesn't match routes to no
        # view at all (Django's own 404 page), so the negative examples keep the path valid.
        runs = [
            (schemathesis.GenerationMode.POSITIVE, None),
            (schemathesis.GenerationMode.NEGATIVE, seeded_parameters),
            (schemathesis.GenerationMode.POSITIVE, seeded_parameters),
        ]
        for mode, path_parameters in runs:
            if mode is schemathesis.GenerationMode.POSITIVE and path_parameters == {}:
                continue  # no path parameters: the first run covered it
            examples += _run_operation(
                operation,
                mode=mode,
                path_parameters=path_parameters,
                headers=headers,
                keep_token=keep_token,
                found=found,
            )
    elapsed = time.monotonic() - started
    print(
        json.dumps(
            {"operations": operations, "examples": examples, "failures": len(found), "seconds": round(elapsed, 1)}
        )
    )

    # then none answered 5xx, and every answer matched the schema
    assert operations > 40
    assert examples > operations * EXAMPLES_PER_OPERATION
    assert found == [], "\n".join(found)
