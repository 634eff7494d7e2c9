from django.db import migrations


def create_general(apps, schema_editor):
    Chat = apps.get_model("chat", "Chat")
    Chat.objects.get_or_create(
        name="General", kind="room", visibility="public", auto_join=True, defaults={"created_by": None}
    )


class Migration(migrations.Migration):
    dependencies = [("chat", "0001_initial")]

    operations = [migrations.RunPython(create_general, migrations.RunPython.noop)]
