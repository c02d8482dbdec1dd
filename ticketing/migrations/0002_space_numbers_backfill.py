"""Tickets sold and revenue for the host's numbers, for spaces that sold tickets before they were counted."""

from django.db import migrations
from django.db.models import Count, Sum


def backfill(apps, schema_editor):
    Ticket = apps.get_model("ticketing", "Ticket")
    SpaceNumbers = apps.get_model("rooms", "SpaceNumbers")
    sold = Ticket.objects.filter(state="paid").values("space_id", "currency").annotate(n=Count("pk"), total=Sum("amount_minor"))
    for row in sold:
        numbers, _ = SpaceNumbers.objects.get_or_create(space_id=row["space_id"])
        numbers.tickets_sold = row["n"]
        numbers.revenue_minor = row["total"]
        numbers.revenue_currency = row["currency"]
        numbers.save(update_fields=["tickets_sold", "revenue_minor", "revenue_currency"])


class Migration(migrations.Migration):
    dependencies = [
        ("rooms", "0004_space_numbers"),
        ("ticketing", "0001_initial"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
