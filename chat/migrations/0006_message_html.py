from django.db import migrations, models


def render_existing(apps, schema_editor):
    """Every stored message gets its HTML, as a new one does when it is written."""
    from chat.markdown import render

    Message = apps.get_model("chat", "Message")
    batch = []
    for message in (
        Message.objects.filter(deleted_at__isnull=True).only("pk", "text").iterator(chunk_size=2000)
    ):
        message.html = render(message.text)
        batch.append(message)
        if len(batch) == 2000:
            Message.objects.bulk_update(batch, ["html"])
            batch = []
    Message.objects.bulk_update(batch, ["html"])


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0005_api_tokens_and_bots"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="html",
            field=models.TextField(blank=True, default="", editable=False),
        ),
        migrations.RunPython(render_existing, migrations.RunPython.noop),
    ]
