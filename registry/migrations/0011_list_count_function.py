"""registry_list_count(query, cap): the row count of an admin list in one round trip.

Counts exactly up to ``cap`` rows (a count that stops there); past it, returns the planner's
estimate of the query's rows (no rows read) and says so. Called by
``registry.admin_lists.EstimatedCountPaginator`` with SQL compiled by Django from the list's
queryset, never with text from a request.
"""

from django.db import migrations

CREATE = r"""
CREATE OR REPLACE FUNCTION registry_list_count(query text, cap integer)
RETURNS TABLE (n bigint, estimated boolean)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    capped bigint;
    plan json;
BEGIN
    EXECUTE format('SELECT count(*) FROM (%s LIMIT %s) AS capped', query, cap + 1) INTO capped;
    IF capped <= cap THEN
        RETURN QUERY SELECT capped, false;
        RETURN;
    END IF;
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || query INTO plan;
    RETURN QUERY SELECT greatest(capped, (plan -> 0 -> 'Plan' ->> 'Plan Rows')::numeric::bigint),
                        true;
END
$$;
"""

DROP = "DROP FUNCTION IF EXISTS registry_list_count(text, integer);"


class Migration(migrations.Migration):
    dependencies = [("registry", "0010_stored_cohort_and_index_procedure")]

    operations = [migrations.RunSQL(CREATE, DROP)]
