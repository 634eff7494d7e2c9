"""Message.chat and Event.chat lose their index of their own: the tables' other indexes lead
with the chat. With it, PostgreSQL counted a member's unread messages by reading the chat's
whole history through it, instead of the (chat, id) index from the last read id on.

Only the index is dropped (DROP INDEX): an AlterField would make SQLite copy the messages'
table, which drops the full-text search's triggers on it.
"""

import django.db.models.deletion
from django.db import migrations, models

TABLES = ("chat_message", "chat_event")


def drop_chat_indexes(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        for table in TABLES:
            for name, details in connection.introspection.get_constraints(cursor, table).items():
                alone = details["columns"] == ["chat_id"]
                if alone and details["index"] and not details["unique"] and not details["primary_key"]:
                    schema_editor.execute(f"DROP INDEX {schema_editor.quote_name(name)}")


def create_chat_indexes(apps, schema_editor):
    for model_name in ("message", "event"):
        model = apps.get_model("chat", model_name)
        schema_editor.add_index(model, models.Index(fields=["chat"], name=f"chat_{model_name}_chat_alone"))


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0009_attachments"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="event",
                    name="chat",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="events",
                        to="chat.chat",
                    ),
                ),
                migrations.AlterField(
                    model_name="message",
                    name="chat",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="messages",
                        to="chat.chat",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop_chat_indexes, create_chat_indexes)],
        ),
    ]
