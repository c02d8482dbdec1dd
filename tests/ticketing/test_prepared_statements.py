"""The hottest hand-written statements are planned once per connection on PostgreSQL (spaces_site.prepared)."""

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token

from accounts.authentication import TokenAuthentication
from tests.factories import UserFactory
from tests.ticketing.scene import buy, make_ticketed_space
from ticketing.models import TicketState

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_a_token_lookup_and_a_checkout_run_as_statements_prepared_on_the_connection(stripe_standin):
    space = make_ticketed_space(stripe_standin, cap=2)
    buyers = [UserFactory(), UserFactory()]
    key = Token.objects.create(user=buyers[0]).key

    for _ in range(2):
        user, _token = TokenAuthentication().authenticate_credentials(key)
    starts = [buy(buyer, space) for buyer in buyers]

    statements = prepared_statements()
    assert user == buyers[0]
    assert [start.ticket.state for start in starts] == [TicketState.HELD, TicketState.HELD]
    assert any(Token._meta.db_table in s and "WHERE" in s for s in statements)  # the token's lookup
    assert any("EXISTS" in s and "MAX(t.id)" in s for s in statements)  # the checkout's facts
    assert any("FOR UPDATE" in s for s in statements)  # the seat's locks
    assert any("INSERT INTO" in s and "jsonb_build_object" in s for s in statements)  # the hold and its audit
    # each prepared once, with its values bound on the server, and planned once (a generic plan)
    assert all("$1" in s for s in statements)
    assert len(statements) == len(set(statements))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE %s", ["%FOR UPDATE%"]
        )
        assert cursor.fetchall() == [(2, 0), (2, 0)]  # two seats held, two locks each planned once, generic


def test_with_prepared_statements_off_nothing_is_prepared(stripe_standin):
    space = make_ticketed_space(stripe_standin)
    connection.ensure_connection()
    connection.connection.prepare_threshold = None  # as DATABASE_PREPARED_STATEMENTS=0 makes it
    try:
        with connection.cursor() as cursor:
            cursor.execute("DEALLOCATE ALL")
        start = buy(UserFactory(), space)
        statements = prepared_statements()
    finally:
        connection.close()  # the next test gets a connection as the settings make it

    assert start.ticket.state == TicketState.HELD
    assert statements == []
