"""Search on PostgreSQL: full-text, through GIN indexes, live spaces first (issue 16, acceptance 4)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rooms import selectors, services
from tests.rooms.scene import make_host, make_space

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def titles(query: str) -> list[str]:
    return [space.title for space in selectors.spaces_search(viewer=make_host(), query=query)]


def test_search_finds_a_space_by_a_word_of_its_title_or_of_its_topics():
    # given
    make_space(title="Late night jazz", topics=["music"])
    make_space(title="Startup pitches", topics=["business", "funding"])

    # when / then: whole words, any form of them, any case
    assert titles("jazz") == ["Late night jazz"]
    assert titles("Pitch") == ["Startup pitches"]
    assert titles("music") == ["Late night jazz"]
    assert titles("funding") == ["Startup pitches"]
    assert titles("opera") == []


def test_a_live_space_ranks_above_an_ended_one_with_the_same_words():
    # given: the ended one is newer, and matches twice (title and topic)
    live = make_space(title="Jazz and coffee")
    ended = make_space(title="Jazz and coffee", topics=["jazz"])
    services.space_end(actor=ended.host, space_id=ended.pk)

    # when
    found = list(selectors.spaces_search(viewer=live.host, query="jazz coffee"))

    # then
    assert [space.pk for space in found] == [live.pk, ended.pk]


def test_search_reads_the_gin_indexes():
    # given: tables this small are cheaper to scan, so scans are priced out for the plans
    make_space(title="Late night jazz", topics=["music"])
    viewer = make_host()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")

    # when: the queries a search makes (the transcript's matches, then the spaces), each explained
    with CaptureQueriesContext(connection) as queries:
        list(selectors.spaces_search(viewer=viewer, query="jazz"))
    plans = []
    with connection.cursor() as cursor:
        for query in queries.captured_queries:
            cursor.execute(f"EXPLAIN {query['sql']}")
            plans.append("\n".join(row[0] for row in cursor.fetchall()))

    # then
    assert len(plans) == 2
    assert "captionline_search" in plans[0], plans[0]
    assert "space_search" in plans[1], plans[1]
