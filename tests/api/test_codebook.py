"""Value labels, display formats and label lengths in the dictionary, SPSS and Stata; list
columns as 0/1 dummies."""

import re

import pyreadstat
import pytest
from django.utils import translation

from api.exports import EXPORTS, NAME_MAX
from api.statexports import shorten, variables
from outcomes.models import EQ5D_FIELDS, ODI_FIELDS
from outcomes.questionnaire import items
from tests.api.conftest import token_client
from tests.api.test_exports import read_csv
from tests.api.test_statexports import download


def english(choices) -> dict[int, str]:
    with translation.override("en"):
        return {value: str(text) for value, text in choices}


def expected_item_labels() -> dict[str, dict[int, str]]:
    expected = {name: english(items.odi_choices(name[4:])) for name in ODI_FIELDS}
    for levels in (3, 5):
        for name in EQ5D_FIELDS:
            dimension = name[5:]
            expected[f"eq5d_{levels}l_{dimension}"] = english(items.eq5d_choices(dimension, levels))
    return expected


def test_every_eq5d_and_odi_item_has_the_patients_wording_as_value_labels(
    registry, api_a, tmp_path
):
    expected = expected_item_labels()
    assert len(expected) == 10 + 2 * 5
    assert expected["eq5d_3l_mobility"][3] != expected["eq5d_5l_mobility"][3]
    _frame, sav = pyreadstat.read_sav(download(api_a, "/api/v1/exports/responses.sav", tmp_path))
    _frame, dta = pyreadstat.read_dta(download(api_a, "/api/v1/exports/responses.dta", tmp_path))
    assert {name: dta.variable_value_labels[name] for name in expected} == expected
    # SPSS keeps 120 bytes of a value label: the longest ODI answers end at a word, with "..."
    in_spss = {n: {c: shorten(t, 120) for c, t in ch.items()} for n, ch in expected.items()}
    assert {name: sav.variable_value_labels[name] for name in expected} == in_spss
    assert sav.variable_value_labels["odi_lifting"][3].endswith("conveniently...")
    dictionary = {
        r["column"]: r
        for r in read_csv(api_a, "/api/v1/exports/dictionary.csv")
        if r["file"] == "responses.csv"
    }
    for name, choices in expected.items():
        for code, text in choices.items():
            assert f"{code} = {text}" in dictionary[name]["allowed"]


def test_per_version_eq5d_columns_hold_only_their_versions_answers(registry, api_a, tmp_path):
    rows = read_csv(api_a, "/api/v1/exports/responses.csv")
    baseline = next(
        r
        for r in rows
        if r["procedure_id"] == str(registry["osteo"].pk) and r["timepoint"] == "baseline"
    )
    assert baseline["eq5d_version"] == "5L"  # the site's version
    assert (baseline["eq5d_mobility"], baseline["eq5d_5l_mobility"]) == ("3", "3")
    assert baseline["eq5d_3l_mobility"] == ""
    frame, meta = pyreadstat.read_sav(
        download(api_a, "/api/v1/exports/responses.sav", tmp_path), apply_value_formats=True
    )
    shown = frame.loc[frame["response_id"] == int(baseline["response_id"]), "eq5d_5l_mobility"]
    assert shown.iloc[0] == "I have moderate problems in walking about"


def test_numbers_are_displayed_with_the_dictionarys_decimals(registry, api_a, tmp_path):
    dictionary = {
        (r["file"], r["column"]): r["decimals"]
        for r in read_csv(api_a, "/api/v1/exports/dictionary.csv")
    }
    assert dictionary["responses.csv", "eq5d_index"] == "3"
    assert dictionary["responses.csv", "odi_score"] == "1"
    assert dictionary["responses.csv", "vas_pain"] == "0"
    assert dictionary["responses.csv", "timepoint"] == ""
    _frame, sav = pyreadstat.read_sav(download(api_a, "/api/v1/exports/responses.sav", tmp_path))
    _frame, dta = pyreadstat.read_dta(download(api_a, "/api/v1/exports/responses.dta", tmp_path))
    assert sav.original_variable_types["eq5d_index"] == "F8.3"
    assert sav.original_variable_types["odi_score"] == "F8.1"
    assert sav.original_variable_types["vas_pain"] == "F8.0"
    assert dta.original_variable_types["eq5d_index"] == "%8.3f"


def test_long_labels_are_shortened_at_a_word(registry, api_a, tmp_path):
    assert shorten("short", 80) == "short"
    text = "Days from the index procedure to death, or to withdrawal of consent or today"
    short = shorten(text, 40)
    assert short == "Days from the index procedure to..." and len(short) <= 40
    assert shorten("Ærø " * 40, 30).encode().__len__() <= 30
    _frame, dta = pyreadstat.read_dta(download(api_a, "/api/v1/exports/analysis.dta", tmp_path))
    label = dict(zip(dta.column_names, dta.column_labels, strict=True))["survival_days"]
    assert len(label) <= 80 and label.endswith("...")
    words = label.removesuffix("...").split()
    full = "Days from the index procedure to death, or to withdrawal of consent or today when"
    assert words == full.split()[: len(words)]  # whole words only


def test_list_columns_also_come_as_dummies(registry, api_a, tmp_path):
    rows = read_csv(api_a, "/api/v1/exports/levels.csv")
    leaking = next(r for r in rows if r["cement_leakage"] == "true")
    assert leaking["leakage_sites"] == "paravertebral"
    assert leaking["leak_paravertebral"] == "true"
    dummies = [c for c in leaking if c.startswith("leak_")]
    assert len(dummies) > 2
    assert all(leaking[c] == "false" for c in dummies if c != "leak_paravertebral")
    frame, meta = pyreadstat.read_sav(download(api_a, "/api/v1/exports/levels.sav", tmp_path))
    assert sorted(frame["leak_paravertebral"].tolist()) == [0, 0, 0, 1]
    assert meta.variable_value_labels["leak_paravertebral"] == {0: "No", 1: "Yes"}
    procedures = read_csv(api_a, "/api/v1/exports/procedures.csv")
    assert any(c.startswith("contra_a_") for c in procedures[0])


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_every_export_downloads_as_stata_with_names_stata_accepts(
    registry, manager, tmp_path, name
):
    """Stata takes names of at most 32 characters, readstat 31 when the variable has value labels
    (a dummy with 32 made every levels.dta a 500)."""
    names = [variable.name for variable in variables(EXPORTS[name])]
    too_long = [n for n in names if len(n) > NAME_MAX or not re.fullmatch(r"[A-Za-z_]\w*", n)]
    assert too_long == []
    stem = name.removesuffix(".csv")
    url = f"/api/v1/exports/{stem}.dta"
    frame, _meta = pyreadstat.read_dta(download(token_client(manager), url, tmp_path))
    assert list(frame.columns) == names
    assert len(frame) > 0
