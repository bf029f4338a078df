"""The complication add page in Chromium: it loads once when opened from the record (select2's
start-up "change" on the patient box reloaded it, up to 13 times in 8 s), and a patient chosen
by the user reloads it with everything typed so far kept."""

from django.urls import reverse

from tests.e2e.axe import assert_accessible
from tests.e2e.test_questionnaire_browser import browser  # noqa: F401
from tests.e2e.test_staff_browser import nurse_page  # noqa: F401
from tests.factories import make_patient, make_procedure


def _settled(page) -> None:
    """The page has loaded, select2 has built its box and no request is in flight."""
    page.wait_for_load_state("load")
    page.locator(".field-patient .select2-container").wait_for()
    page.wait_for_load_state("networkidle")


def test_complication_page_opened_20_times_from_the_record_never_reloads_itself(nurse_page):  # noqa: F811
    page, patient, procedure, base = nurse_page
    record = base + reverse("staff_record", args=[patient.registry_id])
    loads = []
    page.on("load", lambda: loads.append(page.url))
    for opening in range(20):
        page.goto(record)
        loads.clear()
        page.get_by_role("link", name="Add a complication").click()
        _settled(page)
        # A marker set after start-up survives only if the page was not loaded again.
        page.evaluate(f"window.__opened = {opening}")
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__opened") == opening
        assert len(loads) == 1, f"opening {opening + 1}: loaded {len(loads)} times: {loads}"
        assert f"patient={patient.pk}" in page.url
    assert_accessible(page, "complication add page")


def test_a_patient_chosen_by_the_user_reloads_with_the_typed_input_kept(nurse_page):  # noqa: F811
    page, patient, procedure, base = nurse_page
    other = make_patient(patient.site)
    other_procedure = make_procedure(other, "osteoporotic")
    record = base + reverse("staff_record", args=[patient.registry_id])
    page.goto(record)
    page.get_by_role("link", name="Add a complication").click()
    _settled(page)
    page.locator("#id_description").fill("Haematoma at the puncture site")
    page.locator("#id_relation").select_option("probable")

    page.locator(".field-patient .select2-selection").click()
    page.locator(".select2-search__field").fill(other.registry_id)
    with page.expect_navigation():
        page.locator(".select2-results__option", has_text=other.registry_id).click()
    _settled(page)

    assert f"patient={other.pk}" in page.url
    assert page.locator("#id_description").input_value() == "Haematoma at the puncture site"
    assert page.locator("#id_relation").input_value() == "probable"
    offered = page.locator("#id_procedure option").evaluate_all("os => os.map(o => o.value)")
    assert str(other_procedure.pk) in offered and str(procedure.pk) not in offered
    # The way back to the record (?next=) is kept too.
    assert "next=" in page.url
