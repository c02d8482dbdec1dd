# Full-text search (issue 16), on PostgreSQL only: SQLite searches by substring.
#
# A space's words are kept in a stored generated column, `search_words` (PostgreSQL computes it on
# every write of the title or topics), with a GIN index: a search then finds its spaces through the
# index and ranks them from the stored vector, rather than parsing every match's title again to rank
# it. The column is PostgreSQL's alone, so the model doesn't declare it; `rooms.selectors` reads it
# on PostgreSQL (`SPACE_WORDS`). Transcripts are searched through an expression index, built on the
# expression the selector matches with (`CAPTION_WORDS`): an expression index serves only the same
# expression.
#
# PostgreSQL won't change the type of a column a generated column reads: a later migration that alters
# `title` or `topics` drops `search_words` first and adds it back after (SPACE_WORDS_UNDO, SPACE_WORDS).

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import migrations

SPACE_WORDS = """
    ALTER TABLE rooms_space ADD COLUMN search_words tsvector GENERATED ALWAYS AS (
        to_tsvector('english'::regconfig, COALESCE(title, '') || ' ' || COALESCE(topics, ''))
    ) STORED;
    CREATE INDEX space_search ON rooms_space USING gin (search_words);
"""
SPACE_WORDS_UNDO = "DROP INDEX space_search; ALTER TABLE rooms_space DROP COLUMN search_words;"
CAPTION_INDEX = GinIndex(SearchVector("text", config="english"), name="captionline_search")


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(SPACE_WORDS)
    schema_editor.add_index(apps.get_model("rooms", "captionline"), CAPTION_INDEX)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.remove_index(apps.get_model("rooms", "captionline"), CAPTION_INDEX)
    schema_editor.execute(SPACE_WORDS_UNDO)


class Migration(migrations.Migration):
    dependencies = [
        ("rooms", "0006_abuse_report_checks"),
    ]

    operations = [migrations.RunPython(create, drop)]
