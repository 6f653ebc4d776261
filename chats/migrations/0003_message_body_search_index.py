"""The GIN index behind message search on PostgreSQL (chats.search): the
expression is exactly the one Django writes for
SearchVector("body", config="russian"), and the index is partial like the
search (deleted messages are never found). Other databases have no such
index and search without it."""

from django.db import migrations

INDEX_NAME = "chats_message_body_search"


def index_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS " + INDEX_NAME + " ON chats_message "
        "USING gin (to_tsvector('russian'::regconfig, COALESCE(body, ''))) WHERE deleted_at IS NULL"
    )


def index_drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS " + INDEX_NAME)


class Migration(migrations.Migration):
    dependencies = [
        ("chats", "0002_moderation_and_held_messages"),
    ]

    operations = [
        migrations.RunPython(index_create, index_drop, elidable=False),
    ]
