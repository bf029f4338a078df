"""Names, phones and emails never leave through an export, an API response or a report, for
any role (the staff who may see them on the staff pages included)."""

import pytest
from django.urls import reverse

from api import exports, statexports
from tests.api.conftest import token_client

# Ann Secret's phone, stored as +4531123456 and shown to staff as +45 31 12 34 56.
SECRETS = ("Ann Secret", "ann.secret", "Test Patient", "31123456", "31 12 34 56")


def paths() -> list[str]:
    found = [f"/api/v1/exports/{name}" for name in exports.EXPORTS]
    found += [
        f"/api/v1/exports/{name.removesuffix('.csv')}.{fmt.suffix}"
        for name in exports.EXPORTS
        for fmt in statexports.FORMATS.values()
    ]
    found += [
        "/api/v1/exports/dictionary.csv",
        "/api/v1/patients",
        "/api/v1/procedures",
        "/api/v1/levels",
        "/api/v1/complications",
        "/api/v1/followups",
        "/api/v1/responses",
        "/api/v1/queries",
        "/api/v1/reports/cohorts",
        "/api/v1/fhir/QuestionnaireResponse",
    ]
    return found


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.parametrize("role", ["staff_a", "manager"])
def test_no_export_or_api_response_holds_a_name_or_contact(registry, request, role):
    client = token_client(request.getfixturevalue(role))
    answered = 0
    for path in paths():
        response = client.get(path)
        if response.status_code == 403:
            continue
        assert response.status_code == 200, path
        answered += 1
        content = body(response)
        for secret in SECRETS:
            assert secret.encode() not in content, (path, secret)
    assert answered >= 20


def test_no_report_page_or_download_holds_a_name(registry, client, manager):
    client.force_login(manager)
    page = client.get(reverse("cohort_report"))
    assert page.status_code == 200
    contents = [page.content]
    for fmt in ("csv", "tidy", "md", "docx"):
        response = client.get(reverse("cohort_report"), {"format": fmt})
        if response.status_code == 200:
            contents.append(body(response))
    patients = client.get(reverse("cohort_report_patients"), {"cell": "t1.n.osteoporotic"})
    contents.append(patients.content)
    assert len(contents) >= 4
    for content in contents:
        for secret in SECRETS:
            assert secret.encode() not in content
