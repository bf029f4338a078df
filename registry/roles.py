"""The two database roles of a deployment: the owner, who runs migrations, and the
application's role, which the web processes, the worker and beat connect as.

The owner owns every table, so only it can TRUNCATE, ``ALTER TABLE … DISABLE TRIGGER`` or
``DROP TRIGGER``. The application's role owns nothing and gets, table by table, only what the
code needs: SELECT, INSERT, UPDATE and DELETE on the working tables (no DELETE on the
queries to sites, ``NO_DELETE_TABLES``); on the audit tables (every
table an append-only trigger of ``registry.audit`` guards) SELECT and INSERT only, plus UPDATE
of the few columns that are written once after the insert (pghistory's context of the running
transaction, an export's closing figures); SELECT only on ``django_migrations``. Never
TRUNCATE, REFERENCES or TRIGGER.

``grant_app_role`` runs as the owner after every ``migrate`` (``DATABASE_APP_ROLE`` makes
``migrate`` do it itself), so a new table is never left out. ``create_roles`` runs once, as a
superuser, when the database is set up (``manage.py db_roles create``).
"""

from __future__ import annotations

from django.db import connections
from psycopg import sql

# Audit tables with columns that are legitimately written after the insert; the refusal
# triggers (registry.audit, registry migration 0016) decide which changes are allowed.
AUDIT_UPDATABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "pghistory_context": ("metadata", "updated_at"),
    "api_exportlog": ("rows", "completed", "finished_at"),
}
READ_ONLY_TABLES = ("django_migrations",)
# Working tables whose rows are never deleted; their trigger allows only the designed updates
# (outcomes.quality.models.QUERY_STEPS_ONLY). Named here, not found by their trigger: outcomes
# owns the rule, and the registry app does not import it.
NO_DELETE_TABLES = ("registry_dataquery",)
AUDIT_TRIGGER_MARK = "The audit trail cannot be changed"


def audit_tables(*, using: str = "default") -> list[str]:
    """Tables of the current schema guarded by an append-only refusal trigger."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT c.relname FROM pg_trigger t"
            " JOIN pg_class c ON c.oid = t.tgrelid"
            " JOIN pg_proc p ON p.oid = t.tgfoid"
            " WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace"
            " AND p.prosrc LIKE %s ORDER BY 1",
            [f"%{AUDIT_TRIGGER_MARK}%"],
        )
        return [row[0] for row in cursor.fetchall()]


def grant_app_role(role: str, *, using: str = "default") -> dict[str, list[str]]:
    """Give ``role`` exactly the privileges the application needs on every table and
    sequence of the current schema, taking away anything else it had. Run as the owner.
    Returns the tables by kind (for the command's report)."""
    audit = audit_tables(using=using)
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c"
            " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')"
            " ORDER BY 1"
        )
        tables = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner"
            " WHERE r.rolname = %s",
            [role],
        )
        if cursor.fetchone()[0]:
            raise ValueError(
                f"The role {role} owns tables: it could drop their triggers. Give them to the "
                "owner first (REASSIGN OWNED BY … TO …)."
            )
        role_id = sql.Identifier(role)
        cursor.execute("SELECT current_schema()")
        schema = sql.Identifier(cursor.fetchone()[0])
        cursor.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, role_id))
        cursor.execute(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM {}").format(schema, role_id))
        kinds: dict[str, list[str]] = {"working": [], "audit": [], "no-delete": [], "read-only": []}
        for table in tables:
            table_id = sql.Identifier(table)
            cursor.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(table_id, role_id))
            if table in audit:
                privileges = sql.SQL("SELECT, INSERT")
                kinds["audit"].append(table)
            elif table in READ_ONLY_TABLES:
                privileges = sql.SQL("SELECT")
                kinds["read-only"].append(table)
            elif table in NO_DELETE_TABLES:
                privileges = sql.SQL("SELECT, INSERT, UPDATE")
                kinds["no-delete"].append(table)
            else:
                privileges = sql.SQL("SELECT, INSERT, UPDATE, DELETE")
                kinds["working"].append(table)
            cursor.execute(
                sql.SQL("GRANT {} ON TABLE {} TO {}").format(privileges, table_id, role_id)
            )
            if table in audit and table in AUDIT_UPDATABLE_COLUMNS:
                columns = sql.SQL(", ").join(map(sql.Identifier, AUDIT_UPDATABLE_COLUMNS[table]))
                cursor.execute(
                    sql.SQL("GRANT UPDATE ({}) ON TABLE {} TO {}").format(
                        columns, table_id, role_id
                    )
                )
        cursor.execute(
            sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(
                schema, role_id
            )
        )
    return kinds


def create_roles(
    *, owner: str, app: str, owner_password: str | None, app_password: str | None, using="default"
) -> None:
    """Create (or bring into line) the owner and the application's role, make the owner own
    the database and its schema, and let nobody else create objects in it. Run as a superuser
    (or a role with CREATEROLE that owns the database), once."""
    connection = connections[using]
    with connection.cursor() as cursor:
        for role, password in ((owner, owner_password), (app, app_password)):
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            verb = "ALTER" if cursor.fetchone() else "CREATE"
            statement = sql.SQL(
                "{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
            ).format(sql.SQL(verb), sql.Identifier(role))
            if password:
                statement = sql.SQL("{} PASSWORD {}").format(statement, sql.Literal(password))
            cursor.execute(statement)
        # An install that ran the application as the owner: that role becomes the
        # application's, and what it owned passes to the owner.
        cursor.execute(
            sql.SQL("REASSIGN OWNED BY {} TO {}").format(sql.Identifier(app), sql.Identifier(owner))
        )
        database = sql.Identifier(connection.settings_dict["NAME"])
        cursor.execute("SELECT current_schema()")
        schema = sql.Identifier(cursor.fetchone()[0])
        cursor.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(database, sql.Identifier(owner))
        )
        cursor.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(schema, sql.Identifier(owner)))
        cursor.execute(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM PUBLIC").format(schema))
        cursor.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(database))
        cursor.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, sql.Identifier(app))
        )
