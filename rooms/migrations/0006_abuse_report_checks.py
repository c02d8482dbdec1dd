# The checks of 0005's fields, in a migration of their own: on PostgreSQL a table can't be
# altered in the transaction that has just updated its rows (pending trigger events).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("rooms", "0005_abuse_reports_keep_usernames"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="abusereport",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("space__isnull", False), models.Q(("reported_username", ""), _negated=True), _connector="OR"
                ),
                name="report_has_subject",
            ),
        ),
        migrations.AddConstraint(
            model_name="abusereport",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("reported_user__isnull", True), models.Q(("reported_username", ""), _negated=True), _connector="OR"
                ),
                name="report_keeps_reported_name",
            ),
        ),
        migrations.AddConstraint(
            model_name="abusereport",
            constraint=models.CheckConstraint(
                condition=models.Q(("reporter_username", ""), _negated=True), name="report_keeps_reporter_name"
            ),
        ),
    ]
