"""Every row of docs/validation.md, walked through the admin, full_clean() and PostgreSQL.

The table in the document is this test's data: each row names a record of the fixture, a
field, a bad value, the message the person entering it reads and the constraint PostgreSQL
refuses with. After every refusal no row of the registry has changed.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pghistory.models
import pytest
from django import forms
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.urls import reverse
from django.utils.html import escape

from outcomes.followups.sweep import followups_ensure
from outcomes.models import FollowUp, QuestionnaireResponse
from outcomes.quality.models import WarningAcknowledgement
from registry.models import (
    Complication,
    Patient,
    PatientContact,
    Procedure,
    Site,
    TreatedLevel,
)
from registry.validation import site_today
from tests.factories import (
    make_complication,
    make_contact,
    make_patient,
    make_procedure,
    make_response,
    make_site,
)

DOC = Path(__file__).parents[2] / "docs" / "validation.md"
BIRTH = datetime.date(1950, 5, 17)
CONSENT = datetime.date(2025, 5, 20)
PROCEDURE = datetime.date(2025, 6, 2)
DEATH = datetime.date(2026, 7, 7)
TRACKED = [
    Site,
    Patient,
    PatientContact,
    Procedure,
    TreatedLevel,
    Complication,
    QuestionnaireResponse,
    FollowUp,
    WarningAcknowledgement,
]


@dataclass(frozen=True)
class Row:
    id: str
    record: str
    field: str
    bad_input: str
    given: str
    message: str
    database: str

    def __str__(self) -> str:
        return self.id


def read_table() -> list[Row]:
    text = DOC.read_text()
    body = text.split("<!-- validation-table:start -->")[1].split("<!-- validation-table:end -->")[
        0
    ]
    rows = []
    for line in body.strip().splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows.append(Row(*cells[:3], cells[3].strip("`"), *cells[4:]))
    return rows


ROWS = read_table()


def test_the_table_has_at_least_forty_distinct_rows():
    assert len(ROWS) >= 40
    assert len({row.id for row in ROWS}) == len(ROWS)
    assert len({(row.record, row.field, row.bad_input) for row in ROWS}) == len(ROWS)


@pytest.fixture
def world(db):
    site = make_site("VAL")
    patient = make_patient(
        site, registry_id="VAL-00001", date_of_birth=BIRTH, consent_date=CONSENT, karnofsky=70
    )
    contact = make_contact(patient)
    procedure = make_procedure(patient, "osteoporotic", date=PROCEDURE)
    complication = make_complication(procedure, date=datetime.date(2025, 6, 10))
    response = make_response(
        procedure, "month_12", vas_pain=30, eq_vas=70, answered_on=datetime.date(2026, 6, 2)
    )
    followups_ensure(procedure_ids=[procedure.pk])
    return {
        "site": site,
        "patient": patient,
        "contact": contact,
        "procedure": procedure,
        "level": procedure.levels.get(),
        "complication": complication,
        "response": response,
        "followup": FollowUp.objects.get(procedure=procedure, timepoint="month_3"),
    }


EVENT_MODELS = [model for model in apps.get_models() if issubclass(model, pghistory.models.Event)]


def snapshot() -> dict:
    """Every row of every registry table, and the number of audit events."""
    state = {model.__name__: sorted(map(repr, model.objects.values())) for model in TRACKED}
    state["events"] = [model.objects.count() for model in EVENT_MODELS]
    return state


def resolve(row: Row, world) -> object:
    """The bad input as a Python value of the field's type."""
    raw = row.bad_input
    text_field = (models.CharField, models.TextField)
    field = next((f for f in world[row.record]._meta.fields if f.name == row.field), None)
    if isinstance(field, text_field) and not getattr(field, "choices", None):
        return raw  # ids and free text stay text ("0101501234" keeps its leading zero)
    anchors = {
        "today": site_today(world["site"].time_zone),
        "birth": BIRTH,
        "consent": CONSENT,
        "procedure": PROCEDURE,
        "death": DEATH,
    }
    relative = re.fullmatch(r"(today|birth|consent|procedure|death)([+-]\d+)?", raw)
    if relative:
        return anchors[relative[1]] + datetime.timedelta(days=int(relative[2] or 0))
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        return datetime.date.fromisoformat(raw)
    if raw.startswith("["):
        return [item.strip() for item in raw.strip("[]").split(",")]
    if re.fullmatch(r"-?\d+", raw):
        return int(raw)
    if re.fullmatch(r"-?\d+\.\d+", raw):
        return Decimal(raw)
    return raw


def expected_message(row: Row) -> str:
    return row.message.format(procedure=PROCEDURE.isoformat(), death=DEATH.isoformat())


def prepare(row: Row, world) -> None:
    if row.given == "deceased":
        Patient.objects.filter(pk=world["patient"].pk).update(date_of_death=DEATH)
        world["patient"].refresh_from_db()
    else:
        assert row.given == "", f"unknown precondition {row.given!r}"


# --- The model door: full_clean() ----------------------------------------------------------

MODEL_DOOR_SKIPS = {"none", "-1", "5"}  # level lists and form counts exist only in forms


def full_clean_refuses(world, row) -> None:
    if row.field.endswith("_FORMS") or row.bad_input == "none":
        return  # form data only: covered by the admin and the database doors
    before = snapshot()
    if row.bad_input == "T12 twice":
        record = TreatedLevel(
            procedure=world["procedure"],
            level=TreatedLevel.Level.T12,
            etiology="osteoporotic",
            approach="bipedicular",
            cement_volume_ml=Decimal("3.0"),
        )
    else:
        record = type(world[row.record]).objects.get(pk=world[row.record].pk)
        setattr(record, row.field, resolve(row, world))
    with pytest.raises(ValidationError) as refusal:
        record.full_clean()
    assert any(expected_message(row) in message for message in refusal.value.messages), (
        refusal.value.messages
    )
    assert snapshot() == before


# --- The database door ---------------------------------------------------------------------


def database_refuses(world, row) -> None:
    if row.database.startswith("—"):
        assert row.field.endswith("_FORMS"), "only form data may lack a database rule"
        return
    before = snapshot()
    record = world[row.record]
    with pytest.raises(IntegrityError) as refusal, transaction.atomic():
        if row.bad_input == "none":
            TreatedLevel.objects.filter(procedure=record).delete()
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        elif row.bad_input == "T12 twice":
            level = world["level"]
            level.pk = None
            level.save()
        else:
            type(record).objects.filter(pk=record.pk).update(**{row.field: resolve(row, world)})
    assert refusal.value.__cause__.diag.constraint_name == row.database
    assert snapshot() == before


# --- The admin door ------------------------------------------------------------------------


def form_data(form) -> dict:
    """What a browser would post for ``form`` as rendered (its current values)."""
    data = {}
    for bound in form:
        value = bound.value()
        field = bound.field
        if isinstance(field, forms.NullBooleanField):
            data[bound.html_name] = {True: "true", False: "false"}.get(value, "unknown")
        elif isinstance(field, forms.BooleanField):
            if value:
                data[bound.html_name] = "on"
        elif isinstance(value, list | tuple):
            data[bound.html_name] = [str(item) for item in value]
        elif value is not None:
            data[bound.html_name] = str(value)
    return data


def page_data(page) -> dict:
    data = form_data(page.context["adminform"].form)
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update(form_data(formset.management_form))
        for form in formset.forms:
            data.update(form_data(form))
    return data


ADMIN_PAGES = {
    # record: (admin page of, name prefix of its fields)
    "patient": ("patient", ""),
    "contact": ("patient", "contact-0-"),
    "procedure": ("procedure", ""),
    "level": ("procedure", "levels-0-"),
    "complication": ("complication", ""),
    "response": ("response", ""),
    "followup": ("followup", ""),
    "site": ("site", ""),
}


def as_post(value) -> object:
    if isinstance(value, list):
        return value
    return value.isoformat() if isinstance(value, datetime.date) else str(value)


def admin_refuses(world, row, client) -> None:
    page_of, prefix = ADMIN_PAGES[row.record]
    record = world[page_of]
    meta = record._meta
    url = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[record.pk])
    data = page_data(client.get(url))
    if row.bad_input == "none":
        data["levels-0-DELETE"] = "on"
    elif row.bad_input == "T12 twice":
        data.update(
            {
                "levels-1-level": str(TreatedLevel.Level.T12),
                "levels-1-etiology": "osteoporotic",
                "levels-1-approach": "bipedicular",
                "levels-1-cement_volume_ml": "3.0",
            }
        )
    elif row.field.endswith("_FORMS"):
        data[row.field] = row.bad_input
    else:
        data[prefix + row.field] = as_post(resolve(row, world))
    before = snapshot()
    response = client.post(url, data)
    assert response.status_code == 200, "the change was saved"
    assert escape(expected_message(row)) in response.content.decode()
    assert snapshot() == before


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_row_is_refused_at_every_door_and_nothing_saved_changes(world, row, client, manager):
    prepare(row, world)
    client.force_login(manager)
    full_clean_refuses(world, row)
    database_refuses(world, row)
    if row.field != "registry_id":  # generated per site: the admin offers no field to type in
        admin_refuses(world, row, client)


def test_the_unchanged_admin_pages_save(world, client, manager):
    """The admin door's baseline: posting each page as rendered is accepted, so the refusals
    above come from the bad value and nothing else."""
    client.force_login(manager)
    for record in {page for page, _prefix in ADMIN_PAGES.values()}:
        obj = world[record]
        meta = obj._meta
        url = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
        response = client.post(url, page_data(client.get(url)))
        assert response.status_code == 302, (
            record,
            response.context and response.context.get("errors"),
        )
