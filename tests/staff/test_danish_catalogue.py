"""Staff pages in English and Danish: the Danish catalogue has no empty or fuzzy message, every
field and model name staff see can be translated and is, and the entry pages and the import page
really show Danish labels in Danish (and English ones in English)."""

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.utils import translation
from django.utils.functional import Promise
from django.utils.text import capfirst

from registry.models import Patient, PatientContact, Procedure, TreatedLevel
from tests.api.test_imports import SAMPLE
from tests.factories import make_site, make_user

CATALOGUE = settings.BASE_DIR / "locale" / "da" / "LC_MESSAGES" / "django.po"
OUR_APPS = ("registry", "outcomes", "api")


def gettext_tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"gettext's {name} is missing: run the tests with `make test`"
    return path


def entries(po_text: str) -> list[tuple[list[str], dict[str, str]]]:
    """The entries of a .po text: their comment lines and their strings (``msgid``,
    ``msgid_plural``, ``msgstr`` or ``msgstr[n]``, each joined from its quoted lines)."""
    found = []
    for block in po_text.split("\n\n"):
        comments, strings, key = [], {}, None
        for line in block.splitlines():
            if line.startswith("#"):
                comments.append(line)
            elif line.startswith('"') and key:
                strings[key] += line[1:-1]
            elif " " in line:
                key, quoted = line.split(" ", 1)
                strings[key] = quoted[1:-1]
        if strings:
            found.append((comments, strings))
    return found


def msgids(po_text: str) -> list[str]:
    """The msgids of a .po text, in order (the header, whose msgid is empty, left out)."""
    return [strings["msgid"] for _comments, strings in entries(po_text) if strings["msgid"]]


def unfinished_messages(catalogue: Path) -> dict[str, list[str]]:
    """Messages of ``catalogue`` still to translate: those with an empty translation (or an
    empty plural form) and the fuzzy ones. gettext's msgattrib reads the catalogue and writes
    it back one entry per block; obsolete entries, kept by makemessages for reference and never
    used, are left out."""
    normalised = subprocess.run(  # noqa: S603 (a fixed gettext tool on our own file)
        [gettext_tool("msgattrib"), "--no-obsolete", "--no-wrap", str(catalogue)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    unfinished: dict[str, list[str]] = {"empty": [], "fuzzy": []}
    for comments, strings in entries(normalised):
        if not strings["msgid"]:
            continue  # the header
        translations = [value for key, value in strings.items() if key.startswith("msgstr")]
        if not all(translations):
            unfinished["empty"].append(strings["msgid"])
        if any(line.startswith("#,") and "fuzzy" in line for line in comments):
            unfinished["fuzzy"].append(strings["msgid"])
    return unfinished


def test_the_check_finds_empty_and_fuzzy_messages(tmp_path):
    sample = tmp_path / "django.po"
    sample.write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "patient"\nmsgstr "patient"\n\n'
        'msgid "Two\\nlines"\nmsgstr ""\n"To\\n"\n"linjer"\n\n'
        'msgid "sex"\nmsgstr ""\n\n'
        '#, fuzzy\nmsgid "consent date"\nmsgstr "Samtykke"\n\n'
        'msgid "%(n)s problem"\nmsgid_plural "%(n)s problems"\nmsgstr[0] "%(n)s problem"\n'
        'msgstr[1] ""\n\n'
        '#~ msgid "as of"\n#~ msgstr ""\n',
        encoding="utf-8",
    )
    assert unfinished_messages(sample) == {
        "empty": ["sex", "%(n)s problem"],
        "fuzzy": ["consent date"],
    }


def test_every_danish_message_is_translated_and_none_is_fuzzy():
    assert unfinished_messages(CATALOGUE) == {"empty": [], "fuzzy": []}


def test_danish_translations_keep_every_placeholder():
    result = subprocess.run(  # noqa: S603 (a fixed gettext tool on our own file)
        [gettext_tool("msgfmt"), "--check", "-o", os.devnull, str(CATALOGUE)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def staff_models() -> list:
    """Our models with an admin page, and the models of their inlines."""
    models = set()
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label in OUR_APPS:
            models.add(model)
            models.update(inline.model for inline in model_admin.inlines)
    return sorted(models, key=lambda model: model._meta.label)


def test_every_field_and_model_name_staff_see_is_in_the_danish_catalogue():
    catalogue = set(msgids(CATALOGUE.read_text(encoding="utf-8")))
    models = staff_models()
    assert {"registry.Procedure", "registry.TreatedLevel", "outcomes.FollowUp"} <= {
        model._meta.label for model in models
    }
    names = {}
    for model in models:
        names[f"{model._meta.label} (model)"] = model._meta.original_attrs.get("verbose_name")
        names[f"{model._meta.label} (plural)"] = model._meta.original_attrs.get(
            "verbose_name_plural"
        )
        for field in model._meta.get_fields():
            if field.concrete and not field.auto_created:
                names[f"{model._meta.label}.{field.name}"] = field.verbose_name
    # Django names a field or model without a translatable name itself, in English only.
    untranslatable = sorted(where for where, name in names.items() if not isinstance(name, Promise))
    assert untranslatable == []
    with translation.override("en"):
        missing = sorted(where for where, name in names.items() if str(name) not in catalogue)
    assert missing == []


class Labels(HTMLParser):
    """The labels of a page's form fields (``for`` → text) and every piece of visible text."""

    def __init__(self, html: str):
        super().__init__()
        self.labels: dict[str, str] = {}
        self.texts: set[str] = set()
        self._label_for: str | None = None
        self._hidden = 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "template"):
            self._hidden += 1
        if tag == "label":
            self._label_for = dict(attrs).get("for")
            if self._label_for:
                self.labels[self._label_for] = ""
        if tag == "input" and dict(attrs).get("type") == "submit":
            self.texts.add(dict(attrs).get("value", ""))

    def handle_endtag(self, tag):
        if tag in ("script", "style", "template"):
            self._hidden -= 1
        if tag == "label":
            self._label_for = None

    def handle_data(self, data):
        text = data.strip()
        if self._hidden or not text:
            return
        self.texts.add(text.rstrip(":"))
        if self._label_for:
            self.labels[self._label_for] = (self.labels[self._label_for] + " " + text).strip()


def get_page(client, url: str, language: str) -> Labels:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    response = client.get(url)
    assert response.status_code == 200
    assert f'lang="{language}"' in response.content.decode()
    return Labels(response.content.decode())


def assert_labels_are_the_model_names(page: Labels, model, prefix: str, language: str) -> int:
    """Each label of a model field on the page is the field's name in ``language``; returns
    how many were checked."""
    checked = 0
    with translation.override(language):
        for field in model._meta.concrete_fields:
            label = page.labels.get(f"id_{prefix}{field.name}")
            if label is not None:
                assert label.rstrip(":") == capfirst(str(field.verbose_name)), field.name
                checked += 1
    return checked


# Labels of the entry pages in each language; each language's labels must not show in the other.
PROCEDURE_LABELS = {
    "da": {"Teknik", "Anæstesi", "Billedvejledning", "Indikation", "Biopsi taget", "Ætiologi",
           "Niveau", "Adgang", "Cementlækage", "Lækagesteder", "Gem alligevel", "Advarsler"},
    "en": {"Technique", "Anaesthesia", "Image guidance", "Indication", "Biopsy taken",
           "Etiology", "Level", "Approach", "Cement leakage", "Leakage sites", "Save anyway",
           "Warnings"},
}  # fmt: skip
PATIENT_LABELS = {
    "da": {"Køn", "Fødselsdato", "Samtykkedato", "Dødsdato", "Dødsårsag", "Primærtumor",
           "Foretrukket sprog", "Samtykke til kontakt", "Patientkontakt"},
    "en": {"Sex", "Date of birth", "Consent date", "Date of death", "Cause of death",
           "Primary tumour", "Preferred language", "Consent to contact", "Patient contact"},
}  # fmt: skip
IMPORT_LABELS = {
    "da": {"Filer", "Afdeling", "Kontrollér filerne", "Forhåndsvisning: intet er gemt endnu",
           "tabel", "ville blive oprettet", "uændret", "Importér disse filer"},
    "en": {"Files", "Site", "Check the files", "Preview: nothing is saved yet", "table",
           "would create", "unchanged", "Import these files"},
}  # fmt: skip
OTHER = {"da": "en", "en": "da"}


@pytest.mark.parametrize("language", ["da", "en"])
def test_procedure_add_page_shows_its_labels_in_the_chosen_language(client_a, site_a, language):
    page = get_page(client_a, "/admin/registry/procedure/add/", language)
    assert PROCEDURE_LABELS[language] <= page.texts
    assert PROCEDURE_LABELS[OTHER[language]] & page.texts == set()
    checked = assert_labels_are_the_model_names(page, Procedure, "", language)
    checked += assert_labels_are_the_model_names(page, TreatedLevel, "levels-0-", language)
    assert checked >= 20


@pytest.mark.parametrize("language", ["da", "en"])
def test_patient_add_page_shows_its_labels_in_the_chosen_language(client_a, site_a, language):
    page = get_page(client_a, "/admin/registry/patient/add/", language)
    assert PATIENT_LABELS[language] <= page.texts
    assert PATIENT_LABELS[OTHER[language]] & page.texts == set()
    checked = assert_labels_are_the_model_names(page, Patient, "", language)
    checked += assert_labels_are_the_model_names(page, PatientContact, "contact-0-", language)
    assert checked >= 15


@pytest.mark.parametrize("language", ["da", "en"])
def test_import_page_and_its_preview_are_in_the_chosen_language(client, db, language):
    # The sample files are Aarhus patients.
    client.force_login(make_user("Site staff", make_site("AAR"), username="staff.aar"))
    page = get_page(client, "/admin/import/", language)
    files = [open(path, "rb") for path in sorted(SAMPLE.glob("*.csv"))]  # noqa: SIM115
    try:
        response = client.post("/admin/import/", {"files": files})
    finally:
        for handle in files:
            handle.close()
    preview = Labels(response.content.decode())
    texts = page.texts | preview.texts
    assert IMPORT_LABELS[language] <= texts
    assert IMPORT_LABELS[OTHER[language]] & texts == set()


def test_admin_index_names_apps_and_models_in_danish(client_a):
    page = get_page(client_a, "/admin/", "da")
    assert {"Register", "Opfølgning og udfald", "Indgreb", "Behandlede hvirvler"} <= page.texts
    assert {"Outcomes", "Procedures", "Treated levels", "Follow ups"} & page.texts == set()


def test_danish_report_page_has_danish_controls_tables_and_notes_and_names_what_stays_english(
    client_a, site_a
):
    """The report's tables and the notes under them follow the page's language; its drawn
    charts and test names stay English (the papers' language): the page says so, and
    downloads stay English unless asked for Danish."""
    from tests.factories import make_patient, make_procedure

    make_procedure(make_patient(site_a), "osteoporotic")
    html = client_a.get("/admin/reports/cohorts/", HTTP_ACCEPT_LANGUAGE="da").content.decode()
    page = get_page(client_a, "/admin/reports/cohorts/", "da")
    assert {"Indeksindgreb fra", "Dataskæringsdato", "Vis"} <= page.texts
    assert "De tegnede diagrammer og navnene på de statistiske test er på engelsk." in html
    assert "Download på dit sprog:" in html
    tables = html.split('<div lang="da">')[1]
    assert "Tabel 1. Patienter, behandlede hvirvler og komplikationer" in tables
    assert "Table 1. Patients" not in html
    assert '<ul class="footnotes"><li>Afdelinger:' in tables
    assert 'lang="en"' not in html.split('<div id="content-main">', 1)[1]  # not the switcher
    english = get_page(client_a, "/admin/reports/cohorts/", "en")
    assert not any("tegnede diagrammer" in text for text in english.texts)
    assert not any("Download på dit sprog" in text for text in english.texts)
    assert "Table 1. Patients, treated vertebrae and complications" in english.texts
