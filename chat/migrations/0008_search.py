"""The index that message search reads (chat.search), made for the database in use.

PostgreSQL: a GIN index on the words of each message's text (the "simple" configuration),
an expression index that follows every insert, edit and deletion by itself.
SQLite: an FTS5 table over chat_message (external content: the text is not stored
twice), kept current by triggers, and filled with the messages already there.
Nothing changes in the models' state: the index lives beside them.

The SQL is written out here rather than imported, so that this migration does the same
whatever the code becomes; chat.search holds the same statements to repair the index,
and a test checks that the two agree.
"""

from collections.abc import Callable
from typing import Any

from django.db import migrations

POSTGRESQL_FORWARDS = [
    (
        "CREATE INDEX chat_message_text_search ON chat_message "
        "USING gin (to_tsvector('simple'::regconfig, text))"
    ),
]
POSTGRESQL_BACKWARDS = ["DROP INDEX IF EXISTS chat_message_text_search"]

SQLITE_FORWARDS = [
    (
        "CREATE VIRTUAL TABLE chat_message_fts USING fts5(text, content='chat_message', "
        "content_rowid='id', tokenize='unicode61 remove_diacritics 0')"
    ),
    (
        "CREATE TRIGGER chat_message_fts_insert AFTER INSERT ON chat_message BEGIN "
        "INSERT INTO chat_message_fts(rowid, text) VALUES (new.id, new.text); END"
    ),
    (
        "CREATE TRIGGER chat_message_fts_delete AFTER DELETE ON chat_message BEGIN "
        "INSERT INTO chat_message_fts(chat_message_fts, rowid, text) VALUES ('delete', old.id, old.text); END"
    ),
    (
        "CREATE TRIGGER chat_message_fts_update AFTER UPDATE OF text ON chat_message BEGIN "
        "INSERT INTO chat_message_fts(chat_message_fts, rowid, text) VALUES ('delete', old.id, old.text); "
        "INSERT INTO chat_message_fts(rowid, text) VALUES (new.id, new.text); END"
    ),
    # The messages already there.
    "INSERT INTO chat_message_fts(chat_message_fts) VALUES ('rebuild')",
]
SQLITE_BACKWARDS = [
    "DROP TRIGGER IF EXISTS chat_message_fts_insert",
    "DROP TRIGGER IF EXISTS chat_message_fts_delete",
    "DROP TRIGGER IF EXISTS chat_message_fts_update",
    "DROP TABLE IF EXISTS chat_message_fts",
]


def run(statements: dict[str, list[str]]) -> Callable[[Any, Any], None]:
    """An operation that runs the statements written for the database in use (none for others)."""

    def operation(apps: Any, schema_editor: Any) -> None:
        for statement in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return operation


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0007_rich_messages"),
    ]

    operations = [
        migrations.RunPython(
            run({"postgresql": POSTGRESQL_FORWARDS, "sqlite": SQLITE_FORWARDS}),
            run({"postgresql": POSTGRESQL_BACKWARDS, "sqlite": SQLITE_BACKWARDS}),
        ),
    ]
