"""When a webhook event is due to be handled again; events already `started` keep their 10-minute timeout."""

from datetime import timedelta

from django.db import migrations, models
from django.db.models import F


def started_timeout(apps, schema_editor):
    WebhookEvent = apps.get_model("ticketing", "WebhookEvent")
    WebhookEvent.objects.filter(status="started", started_at__isnull=False).update(
        next_attempt_at=F("started_at") + timedelta(minutes=10)
    )


class Migration(migrations.Migration):
    dependencies = [
        ("ticketing", "0002_space_numbers_backfill"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookevent",
            name="next_attempt_at",
            field=models.DateTimeField(
                blank=True,
                db_index=True,
                help_text="Started: when its handler counts as dead. Failed: when the task tries again. Else empty.",
                null=True,
            ),
        ),
        migrations.RunPython(started_timeout, migrations.RunPython.noop),
    ]
