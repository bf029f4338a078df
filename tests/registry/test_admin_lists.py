"""Change lists built for registry scale (registry.admin_lists, registry.project.auth): the
estimated count, the site and year filters, one query for roles and permissions, and a
session renewed at most once a minute. The timings at 1M levels are in
tests/benchmarks/test_admin_benchmark.py; these tests hold the behaviour."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from registry.admin_lists import EstimatedCountPaginator
from registry.models import Procedure
from tests.factories import make_patient, make_procedure

PROCEDURES = reverse("admin:registry_procedure_changelist")
PATIENTS = reverse("admin:registry_patient_changelist")


def listed(response) -> list:
    assert response.status_code == 200, response.status_code
    return list(response.context["cl"].result_list)


@pytest.fixture
def two_sites(site_a, site_b):
    a = [make_procedure(make_patient(site_a), "osteoporotic") for _ in range(3)]
    b = [make_procedure(make_patient(site_b), "metastasis") for _ in range(2)]
    return a, b


def test_a_short_list_is_counted_exactly(client, manager, two_sites):
    client.force_login(manager)
    response = client.get(PROCEDURES)
    cl = response.context["cl"]
    assert (cl.result_count, cl.paginator.estimated) == (5, False)
    assert "about" not in response.content.decode()


def test_a_long_list_shows_an_estimate_and_pages_past_it(client, manager, site_a, monkeypatch):
    for day in range(12):
        make_procedure(make_patient(site_a), "osteoporotic", date=datetime.date(2026, 1, 1 + day))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE registry_procedure")
    monkeypatch.setattr(EstimatedCountPaginator, "EXACT_UP_TO", 5)
    client.force_login(manager)
    response = client.get(PROCEDURES, {"p": "1"})
    cl = response.context["cl"]
    assert cl.paginator.estimated is True
    # Never fewer than the rows the capped count saw; the planner's figure otherwise.
    assert cl.result_count >= 6
    assert f"about {cl.result_count} procedures (estimated)" in response.content.decode()
    # A page beyond the estimated end is empty, not an error.
    assert client.get(PROCEDURES, {"p": "40"}).status_code == 200


def test_site_filter_offers_the_users_sites_and_filters_by_code(client, manager, two_sites):
    a, b = two_sites
    client.force_login(manager)
    response = client.get(PROCEDURES, {"site": "BBB"})
    assert {p.pk for p in listed(response)} == {p.pk for p in b}
    spec = next(
        s
        for s in response.context["cl"].filter_specs
        if getattr(s, "parameter_name", None) == "site"
    )
    assert [code for code, _label in spec.lookup_choices] == ["AAA", "BBB"]
    # The same filter on levels, which reach the site through procedure and patient.
    levels = client.get(reverse("admin:registry_treatedlevel_changelist"), {"site": "AAA"})
    assert {level.procedure_id for level in listed(levels)} == {p.pk for p in a}


def test_site_filter_for_another_sites_code_lists_nothing(client, staff_a, two_sites):
    client.force_login(staff_a)
    response = client.get(PROCEDURES)
    spec = next(
        s
        for s in response.context["cl"].filter_specs
        if getattr(s, "parameter_name", None) == "site"
    )
    assert [code for code, _label in spec.lookup_choices] == ["AAA"]
    assert listed(client.get(PROCEDURES, {"site": "BBB"})) == []
    assert listed(client.get(PROCEDURES, {"site": "ZZZ"})) == []


def test_year_filter_lists_years_newest_first_and_filters_by_a_date_range(client, manager, site_a):
    old = make_procedure(make_patient(site_a), "osteoporotic", date=datetime.date(2024, 12, 31))
    new = make_procedure(make_patient(site_a), "osteoporotic", date=datetime.date(2026, 1, 1))
    client.force_login(manager)
    response = client.get(PROCEDURES)
    spec = next(
        s
        for s in response.context["cl"].filter_specs
        if getattr(s, "parameter_name", None) == "date__year"
    )
    assert [year for year, _label in spec.lookup_choices] == ["2026", "2025", "2024"]
    assert [p.pk for p in listed(client.get(PROCEDURES, {"date__year": "2024"}))] == [old.pk]
    assert [p.pk for p in listed(client.get(PROCEDURES, {"date__year": "2026"}))] == [new.pk]
    # Not a year at all: refused on every URL by the one middleware (issue 25).
    assert client.get(PROCEDURES, {"date__year": "20x6"}).status_code == 400


def test_procedure_list_shows_stored_cohort_and_level_count(client, manager, site_a):
    procedure = make_procedure(make_patient(site_a), "osteoporotic", "haemangioma")
    client.force_login(manager)
    response = client.get(PROCEDURES, {"cohort": "other"})
    (row,) = listed(response)
    assert (row.pk, row.cohort, row.level_count) == (procedure.pk, "other", 2)
    assert listed(client.get(PROCEDURES, {"cohort": "pathologic"})) == []


def test_patient_list_filters_by_stored_index_cohort_and_searches_part_of_an_id(
    client, manager, site_a
):
    patient = make_patient(site_a)
    make_procedure(patient, "metastasis", date=datetime.date(2026, 1, 2))
    make_procedure(patient, "osteoporotic", date=datetime.date(2026, 2, 2))
    other = make_patient(site_a)
    make_procedure(other, "osteoporotic")
    client.force_login(manager)
    assert listed(client.get(PATIENTS, {"cohort": "pathologic"})) == [patient]
    assert listed(client.get(PATIENTS, {"cohort": "osteoporotic"})) == [other]
    digits = patient.registry_id.split("-")[1]
    assert listed(client.get(PATIENTS, {"q": digits})) == [patient]


def test_roles_and_permissions_are_read_in_one_query(client, staff_a, two_sites):
    client.force_login(staff_a)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(PROCEDURES).status_code == 200
    auth = [q["sql"] for q in queries.captured_queries if "auth_group" in q["sql"]]
    assert len(auth) == 1, auth
    assert "auth_user_user_permissions" in auth[0]


def test_a_site_user_sees_only_their_sites_procedures_in_eight_queries(client, staff_a, two_sites):
    a, _b = two_sites
    client.force_login(staff_a)
    client.get(PROCEDURES)  # the first request renews the new session
    with CaptureQueriesContext(connection) as queries:
        response = client.get(PROCEDURES)
    assert {p.pk for p in listed(response)} == {p.pk for p in a}
    assert len(queries) <= 8, [q["sql"][:80] for q in queries.captured_queries]


def test_the_session_is_written_at_most_once_a_minute(client, staff_a, time_machine):
    time_machine.move_to("2026-03-02 09:00Z", tick=False)
    client.force_login(staff_a)

    def session_writes() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(PATIENTS).status_code == 200
        writes = sum('UPDATE "django_session"' in q["sql"] for q in queries.captured_queries)
        return writes, len(queries)

    assert session_writes()[0] == 1  # renews
    time_machine.move_to("2026-03-02 09:00:30Z", tick=False)
    not_written, page = session_writes()
    assert not_written == 0
    time_machine.move_to("2026-03-02 09:01:01Z", tick=False)
    written, renewed_page = session_writes()
    assert written == 1
    # The renewal costs the page one statement: no SAVEPOINT/RELEASE (issue 32: it cost 3).
    assert renewed_page == page + 1


def test_a_renewed_session_keeps_its_data_and_lasts_another_idle_period(
    client, staff_a, time_machine
):
    from django.contrib.sessions.models import Session

    from registry.project.middleware import RenewSessionMiddleware

    time_machine.move_to("2026-03-02 09:00Z", tick=False)
    client.force_login(staff_a)
    client.get(PATIENTS)
    time_machine.move_to("2026-03-02 09:10Z", tick=False)
    client.get(PATIENTS)
    row = Session.objects.get(session_key=client.session.session_key)
    assert row.expire_date == datetime.datetime(2026, 3, 2, 9, 40, tzinfo=datetime.UTC)
    data = row.get_decoded()
    assert data[RenewSessionMiddleware.KEY] == int(
        datetime.datetime(2026, 3, 2, 9, 10, tzinfo=datetime.UTC).timestamp()
    )
    assert data["_auth_user_id"] == str(staff_a.pk)


def test_a_procedure_list_count_does_not_group_levels(client, manager, two_sites):
    """The level count is a subquery per listed row; no GROUP BY over every procedure."""
    client.force_login(manager)
    with CaptureQueriesContext(connection) as queries:
        client.get(PROCEDURES)
    main = [q["sql"] for q in queries.captured_queries if 'FROM "registry_procedure"' in q["sql"]]
    assert main, "the list's queries"
    assert not any('GROUP BY "registry_procedure"."id"' in sql for sql in main)
    assert Procedure.objects.count() == 5


def test_export_log_list_filters_by_year_without_listing_every_resource(client, manager):
    """One row per API read: the log grows into millions, so its list offers no SELECT
    DISTINCT of resources and filters years by the timestamp's index."""
    from api.models import ExportLog

    for year, resource in [(2025, "levels.csv"), (2026, "procedures")]:
        ExportLog.objects.create(
            user=manager,
            kind="export",
            resource=resource,
            started_at=datetime.datetime(year, 6, 1, 12, tzinfo=datetime.UTC),
        )
    client.force_login(manager)
    url = reverse("admin:api_exportlog_changelist")
    response = client.get(url)
    parameters = {getattr(s, "parameter_name", None) for s in response.context["cl"].filter_specs}
    assert "started_at__year" in parameters
    assert not any("resource" in (spec.title or "") for spec in response.context["cl"].filter_specs)
    assert [log.resource for log in listed(client.get(url, {"started_at__year": "2025"}))] == [
        "levels.csv"
    ]
    assert [log.resource for log in listed(client.get(url, {"q": "procedures"}))] == ["procedures"]
