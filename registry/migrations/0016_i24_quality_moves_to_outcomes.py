"""Queries to sites and warnings saved anyway move to the data-quality package
(outcomes/quality/, issue 24): they leave the registry app's state only. Their tables, rows,
history, triggers, content types and permissions stay; outcomes 0015 takes them over."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0015_lock_before_recomputing"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name="dataqueryevent",
                    name="pgh_obj",
                ),
                migrations.RemoveField(
                    model_name="dataqueryevent",
                    name="answered_by",
                ),
                migrations.RemoveField(
                    model_name="dataqueryevent",
                    name="closed_by",
                ),
                migrations.RemoveField(
                    model_name="dataqueryevent",
                    name="content_type",
                ),
                migrations.RemoveField(
                    model_name="dataqueryevent",
                    name="pgh_context",
                ),
                migrations.RemoveField(
                    model_name="dataqueryevent",
                    name="raised_by",
                ),
                migrations.RemoveField(
                    model_name="dataqueryevent",
                    name="site",
                ),
                migrations.RemoveField(
                    model_name="warningacknowledgement",
                    name="content_type",
                ),
                migrations.RemoveField(
                    model_name="warningacknowledgement",
                    name="site",
                ),
                migrations.RemoveField(
                    model_name="warningacknowledgement",
                    name="user",
                ),
                migrations.RemoveField(
                    model_name="warningacknowledgementevent",
                    name="pgh_obj",
                ),
                migrations.RemoveField(
                    model_name="warningacknowledgementevent",
                    name="content_type",
                ),
                migrations.RemoveField(
                    model_name="warningacknowledgementevent",
                    name="pgh_context",
                ),
                migrations.RemoveField(
                    model_name="warningacknowledgementevent",
                    name="site",
                ),
                migrations.RemoveField(
                    model_name="warningacknowledgementevent",
                    name="user",
                ),
                migrations.DeleteModel(
                    name="DataQuery",
                ),
                migrations.DeleteModel(
                    name="DataQueryEvent",
                ),
                migrations.DeleteModel(
                    name="WarningAcknowledgement",
                ),
                migrations.DeleteModel(
                    name="WarningAcknowledgementEvent",
                ),
            ],
            database_operations=[],
        ),
    ]
