"""Data freezes: files matching their manifest, read-only in the database, listed and
downloaded by registry managers only, and byte-identical after later data changes."""

import csv
import hashlib
import io

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, transaction

from api.models import DataFreeze, DataFreezeFile, ExportLog
from outcomes.models import QuestionnaireResponse
from tests.api.conftest import token_client
from tests.factories import make_response, make_user


@pytest.fixture
def manager(db):
    return make_user("Registry manager", username="freeze.manager")


def freeze(manager, name="paper-2026", as_of="2025-12-31"):
    call_command("freeze_data", name, "--as-of", as_of, "--by", manager.username)
    return DataFreeze.objects.get(name=name)


def test_freeze_files_match_their_manifest(registry, manager):
    frozen = freeze(manager)
    files = {f.name: f for f in frozen.files.all()}
    listed = {entry["name"]: entry for entry in frozen.manifest["files"]}
    assert set(files) == set(listed) | {"freeze-paper-2026_manifest.json"}
    assert "freeze-paper-2026_long.csv" in listed and "freeze-paper-2026_cohort-report.md" in files
    for name, entry in listed.items():
        content = bytes(files[name].content)
        assert hashlib.sha256(content).hexdigest() == entry["sha256"] == files[name].sha256
        assert len(content) == entry["bytes"]
        if entry["rows"] is not None and name.endswith(".csv"):
            assert len(list(csv.reader(io.StringIO(content.decode())))) - 1 == entry["rows"]
    responses = listed["freeze-paper-2026_responses.csv"]
    assert responses["rows"] == QuestionnaireResponse.objects.count()  # every site
    report = bytes(files["freeze-paper-2026_cohort-report.md"].content).decode()
    assert "From data freeze paper-2026 (as of 2025-12-31)." in report


def test_freeze_is_read_only_even_to_raw_sql(registry, manager):
    frozen = freeze(manager)
    with pytest.raises(DatabaseError), transaction.atomic():
        DataFreezeFile.objects.filter(freeze=frozen).update(content=b"forged")
    with pytest.raises(DatabaseError), transaction.atomic():
        DataFreeze.objects.filter(pk=frozen.pk).delete()
    with pytest.raises(CommandError, match="never replaced"):
        freeze(manager)
    with pytest.raises(CommandError, match="not a registry manager"):
        freeze(make_user("Auditor", username="not.manager"), name="other")
    with pytest.raises(CommandError, match="lower-case"):
        freeze(manager, name="Bad Name")


def test_freeze_downloads_stay_byte_identical_after_data_changes(registry, manager, api_a):
    frozen = freeze(manager)
    client = token_client(manager)
    listing = client.get("/api/v1/freezes")
    assert listing.status_code == 200
    entries = {e["name"]: e for e in listing.json()[0]["files"]}
    before = {name: client.get(e["url"]).content for name, e in entries.items()}
    for name, content in before.items():
        assert hashlib.sha256(content).hexdigest() == entries[name]["sha256"]

    # later: answers change and new ones arrive
    response = QuestionnaireResponse.objects.get(procedure=registry["osteo"], timepoint="baseline")
    response.vas_pain = 10
    response.save()
    make_response(registry["second"], "month_3", vas_pain=5)
    live = b"".join(client.get("/api/v1/exports/responses.csv").streaming_content)
    assert live != before["freeze-paper-2026_responses.csv"]
    after = {name: client.get(e["url"]).content for name, e in entries.items()}
    assert after == before
    download = client.get(entries["freeze-paper-2026_long.csv"]["url"])
    assert 'filename="freeze-paper-2026_long.csv"' in download["Content-Disposition"]
    assert ExportLog.objects.filter(resource=f"freeze/{frozen.name}", kind="read").count() == (
        2 * len(entries) + 1
    )
    # not for auditors
    assert api_a.get("/api/v1/freezes").status_code == 403
    assert api_a.get(entries["freeze-paper-2026_long.csv"]["url"]).status_code == 403
