"""Every API answer is JSON with a `code` and a `detail`, and what the API sends matches what its schema says.

Each test here is one defect schemathesis found against `/api/schema/` (tests/site/test_schemathesis.py
runs it in the test command): the request a client could send, the answer the schema promises.
"""

import json

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from rooms.models import Participant, Role
from tests.factories import UserFactory
from tests.rooms.scene import make_space

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(api) -> dict:
    response = api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


def component(schema: dict, ref: dict) -> dict:
    """The component a `$ref` (or a nullable `allOf: [$ref]`) points at."""
    ref = ref.get("$ref") or ref["allOf"][0]["$ref"]
    return schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def operation(schema: dict, path: str, method: str) -> dict:
    return schema["paths"][path][method]


def assert_json_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content[:200]
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert body["code"] == code
    assert isinstance(body["detail"], str) and body["detail"]


def test_editing_a_space_that_does_not_exist_is_a_json_404(api):
    # given someone signed in
    api.force_authenticate(UserFactory())

    # when they edit a space id that was never used
    response = api.patch("/api/spaces/999999/", {"title": "New title"}, format="json")

    # then the answer is the API's own 404, not a server error
    assert_json_error(response, 404, "space_not_found")
    assert json.loads(response.content)["detail"] == "No space with id 999999."


def test_json_nested_100k_deep_is_refused_with_a_json_400_for_anyone():
    # given an anonymous client (the token endpoint parses the body before any sign-in)
    client = Client(raise_request_exception=False)
    deep = "[" * 100_000 + "]" * 100_000

    # when it sends JSON nested 100,000 deep
    response = client.post("/api/auth/token/", deep, content_type="application/json")

    # then it is told the body is malformed, as JSON
    assert_json_error(response, 400, "parse_error")


def test_json_nested_past_the_limit_is_refused_even_where_python_could_parse_it(api):
    # given someone signed in, and a body nested 100 deep (Python's parser alone takes it)
    api.force_authenticate(UserFactory())
    body = '{"reason": "spam", "details": ' + "[" * 100 + "]" * 100 + "}"

    # when it is sent
    response = api.generic("POST", "/api/reports/", body, content_type="application/json")

    # then the nesting is refused before any view sees it
    assert_json_error(response, 400, "parse_error")
    assert "nested" in json.loads(response.content)["detail"]


def test_json_nested_as_deep_as_a_real_request_is_still_accepted(api):
    # given a space and its host, who edits its topics (a list in an object: depth 2)
    space = make_space()
    api.force_authenticate(space.host)

    # when
    response = api.patch(f"/api/spaces/{space.pk}/", {"topics": ["music", "jazz"]}, format="json")

    # then
    assert response.status_code == 200
    assert json.loads(response.content)["topics"] == ["music", "jazz"]


def test_host_and_user_payloads_hold_every_field_their_schema_requires(api, schema):
    # given a live space with its host on stage and a listener
    space = make_space()
    listener = UserFactory()
    Participant.objects.create(space=space, user=listener, role=Role.LISTENER)
    api.force_authenticate(listener)

    # when the list and the detail are read
    listed = json.loads(api.get("/api/spaces/").content)["results"][0]
    detail = json.loads(api.get(f"/api/spaces/{space.pk}/").content)

    # then each person in them has every field the schema marks required, and no other
    space_schema = component(schema, {"$ref": "#/components/schemas/SpaceDetail"})
    host_schema = component(schema, space_schema["properties"]["host"])
    participant_schema = component(schema, space_schema["properties"]["you"])
    user_schema = component(schema, participant_schema["properties"]["user"])
    for person, person_schema in [
        (listed["host"], host_schema),
        (detail["host"], host_schema),
        (detail["stage"][0]["user"], user_schema),
        (detail["you"]["user"], user_schema),
    ]:
        assert set(person_schema["required"]) == set(person) == set(person_schema["properties"])


def test_a_page_past_the_last_is_a_json_404_that_the_schema_documents(api, schema):
    # given one space
    make_space()

    # when a page before the first or past the last is asked for
    before_first = api.get("/api/spaces/", {"page": 0})
    past_last = api.get("/api/spaces/", {"page": 2})

    # then each is a JSON 404 with a code, and every paginated list documents that 404
    assert_json_error(before_first, 404, "not_found")
    assert_json_error(past_last, 404, "not_found")
    for path, method in [
        ("/api/spaces/", "get"),
        ("/api/users/{username}/followers/", "get"),
        ("/api/spaces/{space_id}/transcript/", "get"),
    ]:
        answer = operation(schema, path, method)["responses"]["404"]
        assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_a_list_read_by_cursor_documents_the_400_for_a_cursor_that_is_not_one(schema):
    # then: the lists that go back with `before` (no page numbers, so no page past the last)
    for path in ["/api/notifications/", "/api/users/{username}/followers/", "/api/users/{username}/following/"]:
        get = operation(schema, path, "get")
        assert "before" in {parameter["name"] for parameter in get["parameters"]}
        answer = get["responses"]["400"]
        assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_a_body_over_the_upload_limit_is_a_json_413_that_the_schema_documents(api, settings, schema):
    # given someone signed in, and a 1 KiB limit on request bodies
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    api.force_authenticate(UserFactory())
    body = json.dumps({"reason": "spam", "details": "x" * 2048})

    # when a larger body is sent
    response = api.generic("POST", "/api/reports/", body, content_type="application/json")

    # then it is refused as JSON, with the status every operation with a body documents
    assert_json_error(response, 413, "too_large")
    assert "413" in operation(schema, "/api/reports/", "post")["responses"]


def test_an_oversized_form_body_is_a_json_413_too(api, settings):
    # given the same limit, and a form-encoded body past it
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    api.force_authenticate(UserFactory())

    # when
    response = api.generic(
        "POST", "/api/reports/", "reason=spam&details=" + "x" * 2048, content_type="application/x-www-form-urlencoded"
    )

    # then
    assert_json_error(response, 413, "too_large")


@pytest.mark.parametrize(
    ("content_type", "body", "status", "code"),
    [
        # No parts at all: nothing is sent, so the serializer says what is missing.
        ("multipart/form-data; boundary=edge", b"", 400, "invalid"),
        ("multipart/form-data; boundary=edge", b"--edge--\r\n", 400, "invalid"),
        # No boundary to split the parts on.
        ("multipart/form-data", b"--edge--\r\n", 400, "parse_error"),
        # More fields than DATA_UPLOAD_MAX_NUMBER_FIELDS.
        (
            "multipart/form-data; boundary=edge",
            b"".join(b'--edge\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nx\r\n' % n for n in range(1001))
            + b"--edge--\r\n",
            400,
            "too_many_fields",
        ),
    ],
    ids=["empty", "closing-boundary-only", "no-boundary", "too-many-fields"],
)
def test_an_empty_or_broken_multipart_body_is_a_json_400(content_type, body, status, code):
    # given someone signed in with a token (a real client: Django's handler, no test shortcuts)
    token = Token.objects.create(user=UserFactory())
    client = Client(raise_request_exception=False, headers={"Authorization": f"Token {token.key}"})

    # when they send a report as an empty or malformed multipart body
    response = client.generic("POST", "/api/reports/", body, content_type=content_type)

    # then the answer is JSON with a code and a message
    assert_json_error(response, status, code)


def test_too_many_form_fields_are_a_json_400(api):
    # given someone signed in
    api.force_authenticate(UserFactory())
    body = "&".join(f"f{n}=x" for n in range(1001))

    # when a form body has more fields than DATA_UPLOAD_MAX_NUMBER_FIELDS
    response = api.generic("POST", "/api/reports/", body, content_type="application/x-www-form-urlencoded")

    # then
    assert_json_error(response, 400, "too_many_fields")


@pytest.mark.django_db
def test_an_api_path_no_route_matches_is_a_json_404_and_a_page_keeps_its_html(client):
    api_answer = client.get("/api/no-such-thing/")
    page_answer = client.get("/no-such-page/")

    assert (api_answer.status_code, api_answer.json()["code"]) == (404, "not_found")
    assert page_answer.status_code == 404 and page_answer["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_the_profile_endpoint_refuses_deep_json_too(api):
    api.force_authenticate(UserFactory())
    deep = "[" * 100_000 + "]" * 100_000

    answer = api.patch("/api/me/", deep, content_type="application/json")

    assert (answer.status_code, answer.json()["code"]) == (400, "parse_error")


@pytest.mark.django_db
def test_a_search_with_a_nul_character_is_answered_not_a_server_error(api, client):
    # PostgreSQL refuses a NUL in a query's text (schemathesis found it: 500)
    make_space(title="Jazz night")

    answer = api.get("/api/spaces/", {"q": "\x00jazz", "host": "\x00", "state": "live\x00"})
    page = client.get("/spaces/", {"q": "\x00jazz"})

    assert answer.status_code == 200 and [s["title"] for s in answer.json()["results"]] == ["Jazz night"]
    assert page.status_code == 200


@pytest.mark.django_db
def test_a_token_request_with_a_username_longer_than_any_is_a_400():
    # the sign-in lockout stores the name tried: PostgreSQL refused one this long (schemathesis: 500)
    client = Client(raise_request_exception=False)

    response = client.post("/api/auth/token/", {"username": "x" * 300, "password": "a-password"})

    assert_json_error(response, 400, "invalid")
