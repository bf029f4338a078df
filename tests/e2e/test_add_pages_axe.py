"""axe-core on the admin's add pages as a nurse first opens them, with the autocomplete box
(select2) still empty: procedure, questionnaire response and complication entry, in English and
Danish. An empty select2 box is labelled by nothing but its placeholder, so these are the pages
where a screen reader user would meet an unnamed combobox."""

import pytest
from django.urls import reverse

from tests.e2e.axe import assert_accessible
from tests.e2e.test_questionnaire_browser import browser, shoot  # noqa: F401
from tests.factories import make_patient, make_procedure, make_site, make_user

DESKTOP = {"viewport": {"width": 1280, "height": 900}}

# Each add page and its autocomplete field.
ADD_PAGES = [
    ("admin:registry_procedure_add", "patient"),
    ("admin:outcomes_questionnaireresponse_add", "procedure"),
    ("admin:registry_complication_add", "patient"),
]
LABELS = {
    "en": {"patient": "Patient", "procedure": "Procedure"},
    "da": {"patient": "Patient", "procedure": "Indgreb"},
}


@pytest.fixture
def logged_in(browser, live_server):  # noqa: F811
    """A site nurse logged in, with a patient and a procedure at their site (so the boxes have
    something to offer), in a browser whose language is chosen per test."""
    site = make_site("AXE", name="Axe Spine Centre")
    nurse = make_user("Site staff", site, username="nurse.axe")
    make_procedure(make_patient(site), "osteoporotic")
    contexts = []

    def log_in(language: str):
        context = browser.new_context(**DESKTOP, locale={"en": "en-GB", "da": "da-DK"}[language])
        contexts.append(context)
        page = context.new_page()
        page.goto(live_server.url + reverse("admin:login"))
        page.locator("#id_username").fill(nurse.username)
        page.locator("#id_password").fill("pw-for-tests-only")
        page.locator("input[type=submit]").click()
        page.wait_for_url(live_server.url + reverse("admin:index"))
        return page

    yield log_in, live_server.url
    for context in contexts:
        context.close()


@pytest.mark.parametrize("language", ["en", "da"])
@pytest.mark.parametrize(("url_name", "field"), ADD_PAGES)
def test_add_page_with_an_empty_autocomplete_box_has_no_serious_violation(
    logged_in, language, url_name, field
):
    log_in, base = logged_in
    page = log_in(language)
    page.goto(base + reverse(url_name))
    assert page.locator("html").get_attribute("lang") == language
    # select2 has replaced the <select> once its combobox follows it; the box is still empty.
    combobox = page.locator(f"#id_{field} + .select2-container [role=combobox]")
    combobox.wait_for(state="visible")
    assert page.locator(f"#id_{field}").input_value() == ""
    # The combobox (and the text box inside it) is named by the field's label, in the page's
    # language, whatever select2 put there.
    label = LABELS[language][field]
    assert page.get_by_role("combobox", name=f"{label}:", exact=True).count() == 1
    assert_accessible(page, f"{url_name} ({language}, empty {field} box)")
    # Opening the box renders select2's dropdown (search field, result list): checked too.
    # From the keyboard, as a screen reader user would, and immune to the page still settling
    # under a mouse click.
    combobox.press("Enter")
    # The options have loaded when the "Searching…" line has given way to them.
    page.locator(f"#select2-id_{field}-results [role=option][aria-selected]").first.wait_for()
    search = page.locator(".select2-container--open .select2-search__field")
    assert page.get_by_role("searchbox", name=f"{label}:", exact=True).count() == 1
    controlled = combobox.get_attribute("aria-controls")
    assert controlled == f"select2-id_{field}-results" == search.get_attribute("aria-controls")
    shoot(page, f"add-{url_name.split(':')[1]}-{language}-open")
    assert_accessible(page, f"{url_name} ({language}, {field} box open)")
