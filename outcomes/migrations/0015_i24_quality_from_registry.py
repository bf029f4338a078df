"""Queries to sites and warnings saved anyway join the data-quality package (outcomes/quality/,
issue 24), keeping the registry app's tables and rows:

1. the four models (and their history models) enter the outcomes app's state only, on the same
   tables (registry 0016 took them out of the registry app's state);
2. their content types are relabelled registry → outcomes in place, so every row that points at
   them (permissions granted to the role groups, admin log entries) keeps pointing right, and
   each role keeps exactly the permissions it had (now ``outcomes.raise_dataquery`` …);
3. the history and append-only triggers are reinstalled under the names pgtrigger derives from
   the new app label, and the old ones (named after ``registry``) dropped, in this one
   transaction, so no write is ever left untracked and events are never written twice.
"""

import importlib

import django.contrib.postgres.fields
import django.db.models.deletion
import pgtrigger.compiler
import pgtrigger.migrations
import registry.validation
from django.conf import settings
from django.db import migrations, models


MOVED = ["dataquery", "dataqueryevent", "warningacknowledgement", "warningacknowledgementevent"]


def _old_triggers():
    """The triggers registry 0008 and 0009 installed on the moved tables (their last change)."""
    triggers = []
    for name in (
        "registry.migrations.0008_data_queries_and_warnings_saved_anyway",
        "registry.migrations.0009_audit_append_only_for_queries_and_warnings",
    ):
        for operation in importlib.import_module(name).Migration.operations:
            if isinstance(operation, pgtrigger.migrations.AddTrigger):
                triggers.append(operation.trigger)
    assert {t.sql.table for t in triggers} == {f"registry_{model}" for model in MOVED}
    return triggers


def drop_old_triggers(apps, schema_editor):
    for trigger in _old_triggers():
        schema_editor.execute(trigger.uninstall_sql, params=None)
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {trigger.sql.pgid}();", params=None)


def reinstall_old_triggers(apps, schema_editor):
    for trigger in _old_triggers():
        schema_editor.execute(trigger.install_sql, params=None)


def relabel(apps, old: str, new: str):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if ContentType.objects.filter(app_label=new, model=model).exists():
            # Only a content type created by hand could be here: merging two would re-point
            # rows, so stop and say so rather than guess.
            raise RuntimeError(
                f"content type {new}.{model} exists already; cannot move {old}.{model}"
            )
        ContentType.objects.filter(app_label=old, model=model).update(app_label=new)
    ContentType.objects.clear_cache()


def content_types_to_outcomes(apps, schema_editor):
    relabel(apps, "registry", "outcomes")


def content_types_to_registry(apps, schema_editor):
    relabel(apps, "outcomes", "registry")


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("outcomes", "0014_translatable_field_names"),
        ("pghistory", "0007_auto_20250421_0444"),
        ("registry", "0016_i24_quality_moves_to_outcomes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="DataQuery",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("object_id", models.PositiveBigIntegerField(verbose_name="object id")),
                        ("record_label", models.CharField(max_length=200, verbose_name="record")),
                        ("field_name", models.CharField(max_length=64, verbose_name="field")),
                        (
                            "comment",
                            models.TextField(
                                validators=[registry.validation.validate_no_cpr],
                                verbose_name="question",
                            ),
                        ),
                        (
                            "state",
                            models.CharField(
                                choices=[
                                    ("open", "Open"),
                                    ("answered", "Answered"),
                                    ("closed", "Closed"),
                                ],
                                default="open",
                                max_length=8,
                                verbose_name="state",
                            ),
                        ),
                        (
                            "answer",
                            models.TextField(
                                blank=True,
                                validators=[registry.validation.validate_no_cpr],
                                verbose_name="answer",
                            ),
                        ),
                        (
                            "raised_at",
                            models.DateTimeField(auto_now_add=True, verbose_name="raised at"),
                        ),
                        (
                            "answered_at",
                            models.DateTimeField(blank=True, null=True, verbose_name="answered at"),
                        ),
                        (
                            "closed_at",
                            models.DateTimeField(blank=True, null=True, verbose_name="closed at"),
                        ),
                        (
                            "updated_at",
                            models.DateTimeField(
                                auto_now=True, db_index=True, verbose_name="updated at"
                            ),
                        ),
                        (
                            "answered_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                                verbose_name="answered by",
                            ),
                        ),
                        (
                            "closed_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                                verbose_name="closed by",
                            ),
                        ),
                        (
                            "content_type",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="contenttypes.contenttype",
                                verbose_name="content type",
                            ),
                        ),
                        (
                            "raised_by",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                                verbose_name="raised by",
                            ),
                        ),
                        (
                            "site",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="data_queries",
                                to="registry.site",
                                verbose_name="site",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "query to site",
                        "verbose_name_plural": "queries to sites",
                        "db_table": "registry_dataquery",
                        "ordering": ["-raised_at", "-pk"],
                        "permissions": [
                            ("raise_dataquery", "Can raise, close and reopen queries to sites"),
                            ("answer_dataquery", "Can answer queries to sites"),
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="DataQueryEvent",
                    fields=[
                        ("pgh_id", models.AutoField(primary_key=True, serialize=False)),
                        ("pgh_created_at", models.DateTimeField(auto_now_add=True)),
                        ("pgh_label", models.TextField(help_text="The event label.")),
                        ("id", models.BigIntegerField()),
                        ("object_id", models.PositiveBigIntegerField(verbose_name="object id")),
                        ("record_label", models.CharField(max_length=200, verbose_name="record")),
                        ("field_name", models.CharField(max_length=64, verbose_name="field")),
                        (
                            "comment",
                            models.TextField(
                                validators=[registry.validation.validate_no_cpr],
                                verbose_name="question",
                            ),
                        ),
                        (
                            "state",
                            models.CharField(
                                choices=[
                                    ("open", "Open"),
                                    ("answered", "Answered"),
                                    ("closed", "Closed"),
                                ],
                                default="open",
                                max_length=8,
                                verbose_name="state",
                            ),
                        ),
                        (
                            "answer",
                            models.TextField(
                                blank=True,
                                validators=[registry.validation.validate_no_cpr],
                                verbose_name="answer",
                            ),
                        ),
                        (
                            "raised_at",
                            models.DateTimeField(auto_now_add=True, verbose_name="raised at"),
                        ),
                        (
                            "answered_at",
                            models.DateTimeField(blank=True, null=True, verbose_name="answered at"),
                        ),
                        (
                            "closed_at",
                            models.DateTimeField(blank=True, null=True, verbose_name="closed at"),
                        ),
                        (
                            "answered_by",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                related_query_name="+",
                                to=settings.AUTH_USER_MODEL,
                                verbose_name="answered by",
                            ),
                        ),
                        (
                            "closed_by",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                related_query_name="+",
                                to=settings.AUTH_USER_MODEL,
                                verbose_name="closed by",
                            ),
                        ),
                        (
                            "content_type",
                            models.ForeignKey(
                                db_constraint=False,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                related_query_name="+",
                                to="contenttypes.contenttype",
                                verbose_name="content type",
                            ),
                        ),
                        (
                            "pgh_context",
                            models.ForeignKey(
                                db_constraint=False,
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to="pghistory.context",
                            ),
                        ),
                        (
                            "pgh_obj",
                            models.ForeignKey(
                                db_constraint=False,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="events",
                                to="outcomes.dataquery",
                            ),
                        ),
                        (
                            "raised_by",
                            models.ForeignKey(
                                db_constraint=False,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                related_query_name="+",
                                to=settings.AUTH_USER_MODEL,
                                verbose_name="raised by",
                            ),
                        ),
                        (
                            "site",
                            models.ForeignKey(
                                db_constraint=False,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                related_query_name="+",
                                to="registry.site",
                                verbose_name="site",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "registry_dataqueryevent",
                        "abstract": False,
                    },
                ),
                migrations.CreateModel(
                    name="WarningAcknowledgement",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("object_id", models.PositiveBigIntegerField(verbose_name="object id")),
                        (
                            "codes",
                            django.contrib.postgres.fields.ArrayField(
                                base_field=models.CharField(max_length=40),
                                size=None,
                                verbose_name="codes",
                            ),
                        ),
                        ("messages", models.JSONField(default=list, verbose_name="messages")),
                        (
                            "reason",
                            models.TextField(
                                validators=[registry.validation.validate_no_cpr],
                                verbose_name="reason",
                            ),
                        ),
                        (
                            "created_at",
                            models.DateTimeField(auto_now_add=True, verbose_name="created at"),
                        ),
                        (
                            "content_type",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="contenttypes.contenttype",
                                verbose_name="content type",
                            ),
                        ),
                        (
                            "site",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="registry.site",
                                verbose_name="site",
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                                verbose_name="user",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "warning saved anyway",
                        "verbose_name_plural": "warnings saved anyway",
                        "db_table": "registry_warningacknowledgement",
                        "ordering": ["-created_at", "-pk"],
                    },
                ),
                migrations.CreateModel(
                    name="WarningAcknowledgementEvent",
                    fields=[
                        ("pgh_id", models.AutoField(primary_key=True, serialize=False)),
                        ("pgh_created_at", models.DateTimeField(auto_now_add=True)),
                        ("pgh_label", models.TextField(help_text="The event label.")),
                        ("id", models.BigIntegerField()),
                        ("object_id", models.PositiveBigIntegerField(verbose_name="object id")),
                        (
                            "codes",
                            django.contrib.postgres.fields.ArrayField(
                                base_field=models.CharField(max_length=40),
                                size=None,
                                verbose_name="codes",
                            ),
                        ),
                        ("messages", models.JSONField(default=list, verbose_name="messages")),
                        (
                            "reason",
                            models.TextField(
                                validators=[registry.validation.validate_no_cpr],
                                verbose_name="reason",
                            ),
                        ),
                        (
                            "content_type",
                            models.ForeignKey(
                                db_constraint=False,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                related_query_name="+",
                                to="contenttypes.contenttype",
                                verbose_name="content type",
                            ),
                        ),
                        (
                            "pgh_context",
                            models.ForeignKey(
                                db_constraint=False,
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to="pghistory.context",
                            ),
                        ),
                        (
                            "pgh_obj",
                            models.ForeignKey(
                                db_constraint=False,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="events",
                                to="outcomes.warningacknowledgement",
                            ),
                        ),
                        (
                            "site",
                            models.ForeignKey(
                                db_constraint=False,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                related_query_name="+",
                                to="registry.site",
                                verbose_name="site",
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                related_query_name="+",
                                to=settings.AUTH_USER_MODEL,
                                verbose_name="user",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "registry_warningacknowledgementevent",
                        "abstract": False,
                    },
                ),
                migrations.AddIndex(
                    model_name="dataquery",
                    index=models.Index(
                        fields=["content_type", "object_id"], name="dataquery_record_idx"
                    ),
                ),
                migrations.AddIndex(
                    model_name="dataquery",
                    index=models.Index(
                        condition=models.Q(("state", "closed"), _negated=True),
                        fields=["site"],
                        name="dataquery_unresolved_idx",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="dataquery",
                    constraint=models.CheckConstraint(
                        condition=models.Q(("comment__regex", "^\\s*$"), _negated=True),
                        name="dataquery_comment_given",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="dataquery",
                    constraint=models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("state", "answered"), _negated=True),
                            models.Q(("answer__regex", "^\\s*$"), _negated=True),
                            _connector="OR",
                        ),
                        name="dataquery_answered_has_answer",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="dataquery",
                    constraint=models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("state", "closed"), _negated=True),
                            ("closed_at__isnull", False),
                            _connector="OR",
                        ),
                        name="dataquery_closed_has_time",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="dataquery",
                    constraint=models.CheckConstraint(
                        condition=models.Q(
                            models.Q(
                                registry.validation.CprShaped(models.F("comment")), _negated=True
                            ),
                            models.Q(
                                registry.validation.CprShaped(models.F("answer")), _negated=True
                            ),
                        ),
                        name="dataquery_no_cpr_number",
                        violation_error_message="This looks like a CPR number (DDMMYY-XXXX). National ids must never be entered in the registry: remove it.",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="dataquery",
                    constraint=models.CheckConstraint(
                        condition=models.Q(("state__in", ["open", "answered", "closed"])),
                        name="dataquery_state_valid",
                    ),
                ),
                migrations.AddIndex(
                    model_name="warningacknowledgement",
                    index=models.Index(
                        fields=["content_type", "object_id"], name="warningack_record_idx"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="warningacknowledgement",
                    constraint=models.CheckConstraint(
                        condition=models.Q(("reason__regex", "^\\s*$"), _negated=True),
                        name="warningack_reason_given",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="warningacknowledgement",
                    constraint=models.CheckConstraint(
                        condition=models.Q(
                            registry.validation.CprShaped(models.F("reason")), _negated=True
                        ),
                        name="warningacknowledgement_no_cpr_number",
                        violation_error_message="This looks like a CPR number (DDMMYY-XXXX). National ids must never be entered in the registry: remove it.",
                    ),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_to_outcomes, content_types_to_registry),
        migrations.RunPython(drop_old_triggers, reinstall_old_triggers),
        pgtrigger.migrations.AddTrigger(
            model_name="dataquery",
            trigger=pgtrigger.compiler.Trigger(
                name="insert_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "registry_dataqueryevent" ("answer", "answered_at", "answered_by_id", "closed_at", "closed_by_id", "comment", "content_type_id", "field_name", "id", "object_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "raised_at", "raised_by_id", "record_label", "site_id", "state") VALUES (NEW."answer", NEW."answered_at", NEW."answered_by_id", NEW."closed_at", NEW."closed_by_id", NEW."comment", NEW."content_type_id", NEW."field_name", NEW."id", NEW."object_id", _pgh_attach_context(), NOW(), \'insert\', NEW."id", NEW."raised_at", NEW."raised_by_id", NEW."record_label", NEW."site_id", NEW."state"); RETURN NULL;',
                    hash="5eb2869b2da835d433c66c75bc57671c7704e526",
                    operation="INSERT",
                    pgid="pgtrigger_insert_insert_83fcd",
                    table="registry_dataquery",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="dataquery",
            trigger=pgtrigger.compiler.Trigger(
                name="update_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition='WHEN (OLD."answer" IS DISTINCT FROM (NEW."answer") OR OLD."answered_at" IS DISTINCT FROM (NEW."answered_at") OR OLD."answered_by_id" IS DISTINCT FROM (NEW."answered_by_id") OR OLD."closed_at" IS DISTINCT FROM (NEW."closed_at") OR OLD."closed_by_id" IS DISTINCT FROM (NEW."closed_by_id") OR OLD."comment" IS DISTINCT FROM (NEW."comment") OR OLD."content_type_id" IS DISTINCT FROM (NEW."content_type_id") OR OLD."field_name" IS DISTINCT FROM (NEW."field_name") OR OLD."id" IS DISTINCT FROM (NEW."id") OR OLD."object_id" IS DISTINCT FROM (NEW."object_id") OR OLD."raised_at" IS DISTINCT FROM (NEW."raised_at") OR OLD."raised_by_id" IS DISTINCT FROM (NEW."raised_by_id") OR OLD."record_label" IS DISTINCT FROM (NEW."record_label") OR OLD."site_id" IS DISTINCT FROM (NEW."site_id") OR OLD."state" IS DISTINCT FROM (NEW."state"))',
                    func='INSERT INTO "registry_dataqueryevent" ("answer", "answered_at", "answered_by_id", "closed_at", "closed_by_id", "comment", "content_type_id", "field_name", "id", "object_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "raised_at", "raised_by_id", "record_label", "site_id", "state") VALUES (NEW."answer", NEW."answered_at", NEW."answered_by_id", NEW."closed_at", NEW."closed_by_id", NEW."comment", NEW."content_type_id", NEW."field_name", NEW."id", NEW."object_id", _pgh_attach_context(), NOW(), \'update\', NEW."id", NEW."raised_at", NEW."raised_by_id", NEW."record_label", NEW."site_id", NEW."state"); RETURN NULL;',
                    hash="e14aeb7c5a8b184782bfc5d8953905d129a8f9d6",
                    operation="UPDATE",
                    pgid="pgtrigger_update_update_57f05",
                    table="registry_dataquery",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="dataquery",
            trigger=pgtrigger.compiler.Trigger(
                name="delete_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "registry_dataqueryevent" ("answer", "answered_at", "answered_by_id", "closed_at", "closed_by_id", "comment", "content_type_id", "field_name", "id", "object_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "raised_at", "raised_by_id", "record_label", "site_id", "state") VALUES (OLD."answer", OLD."answered_at", OLD."answered_by_id", OLD."closed_at", OLD."closed_by_id", OLD."comment", OLD."content_type_id", OLD."field_name", OLD."id", OLD."object_id", _pgh_attach_context(), NOW(), \'delete\', OLD."id", OLD."raised_at", OLD."raised_by_id", OLD."record_label", OLD."site_id", OLD."state"); RETURN NULL;',
                    hash="84f68fe756e08dada45c51e900f5208fd5f29c14",
                    operation="DELETE",
                    pgid="pgtrigger_delete_delete_c9683",
                    table="registry_dataquery",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="dataqueryevent",
            trigger=pgtrigger.compiler.Trigger(
                name="append_only",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func="RAISE EXCEPTION 'pgtrigger: Cannot update or delete rows from % table', TG_TABLE_NAME;",
                    hash="1d9b7634fdd26be85037abf062b1e477b19bdf92",
                    operation="UPDATE OR DELETE",
                    pgid="pgtrigger_append_only_449f9",
                    table="registry_dataqueryevent",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="warningacknowledgement",
            trigger=pgtrigger.compiler.Trigger(
                name="insert_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "registry_warningacknowledgementevent" ("codes", "content_type_id", "id", "messages", "object_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "reason", "site_id", "user_id") VALUES (NEW."codes", NEW."content_type_id", NEW."id", NEW."messages", NEW."object_id", _pgh_attach_context(), NOW(), \'insert\', NEW."id", NEW."reason", NEW."site_id", NEW."user_id"); RETURN NULL;',
                    hash="494cd5068e2708d97b86e7071b511fdcacbd519f",
                    operation="INSERT",
                    pgid="pgtrigger_insert_insert_e5bb5",
                    table="registry_warningacknowledgement",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="warningacknowledgement",
            trigger=pgtrigger.compiler.Trigger(
                name="update_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition='WHEN (OLD."codes" IS DISTINCT FROM (NEW."codes") OR OLD."content_type_id" IS DISTINCT FROM (NEW."content_type_id") OR OLD."id" IS DISTINCT FROM (NEW."id") OR OLD."messages" IS DISTINCT FROM (NEW."messages") OR OLD."object_id" IS DISTINCT FROM (NEW."object_id") OR OLD."reason" IS DISTINCT FROM (NEW."reason") OR OLD."site_id" IS DISTINCT FROM (NEW."site_id") OR OLD."user_id" IS DISTINCT FROM (NEW."user_id"))',
                    func='INSERT INTO "registry_warningacknowledgementevent" ("codes", "content_type_id", "id", "messages", "object_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "reason", "site_id", "user_id") VALUES (NEW."codes", NEW."content_type_id", NEW."id", NEW."messages", NEW."object_id", _pgh_attach_context(), NOW(), \'update\', NEW."id", NEW."reason", NEW."site_id", NEW."user_id"); RETURN NULL;',
                    hash="7c27bd0849b4120d0743b29bdddce84039d9e461",
                    operation="UPDATE",
                    pgid="pgtrigger_update_update_57ac4",
                    table="registry_warningacknowledgement",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="warningacknowledgement",
            trigger=pgtrigger.compiler.Trigger(
                name="delete_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "registry_warningacknowledgementevent" ("codes", "content_type_id", "id", "messages", "object_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "reason", "site_id", "user_id") VALUES (OLD."codes", OLD."content_type_id", OLD."id", OLD."messages", OLD."object_id", _pgh_attach_context(), NOW(), \'delete\', OLD."id", OLD."reason", OLD."site_id", OLD."user_id"); RETURN NULL;',
                    hash="2e52ea0360b10779672f8f6fa03d8309631810c5",
                    operation="DELETE",
                    pgid="pgtrigger_delete_delete_e4616",
                    table="registry_warningacknowledgement",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="warningacknowledgementevent",
            trigger=pgtrigger.compiler.Trigger(
                name="append_only",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func="RAISE EXCEPTION 'pgtrigger: Cannot update or delete rows from % table', TG_TABLE_NAME;",
                    hash="137c6af3f55728f2da20441815763160b8fff42a",
                    operation="UPDATE OR DELETE",
                    pgid="pgtrigger_append_only_ea817",
                    table="registry_warningacknowledgementevent",
                    when="BEFORE",
                ),
            ),
        ),
    ]
