"""The staff top bar on a common laptop screen (1366×768), and the data query list under
axe-core, in Chromium.

The top bar holds the registry's name, the language buttons, the staff pages and the user's
tools; at 1366 px they overlapped (a link drawn over another cannot be clicked). The query
list nested the admin's row link around the record's own link: the outer one was left empty
for a screen reader (axe ``link-name``, serious)."""

import itertools

import pytest
from django.urls import reverse

from outcomes.quality.queries import dataquery_raise
from tests.e2e.axe import assert_accessible
from tests.e2e.test_questionnaire_browser import browser, shoot  # noqa: F401
from tests.factories import make_patient, make_procedure, make_site, make_user

LAPTOP = {"viewport": {"width": 1366, "height": 768}}
# Every item a user sees or clicks in the top bar, each its own box.
TOP_BAR_ITEMS = (
    "#site-name a, .language-switch button, .staff-nav a, "
    "#user-tools > strong, #user-tools > a, #user-tools form button, #user-tools button"
)


def _log_in(browser, live_server, user, language):  # noqa: F811
    context = browser.new_context(**LAPTOP, locale={"en": "en-GB", "da": "da-DK"}[language])
    page = context.new_page()
    page.goto(live_server.url + reverse("admin:login"))
    page.locator("#id_username").fill(user.username)
    page.locator("#id_password").fill("pw-for-tests-only")
    page.locator("input[type=submit]").click()
    page.wait_for_url(live_server.url + reverse("admin:index"))
    return context, page


def _overlaps(boxes: list[tuple[str, dict]]) -> list[str]:
    """Every pair of items whose boxes intersect (the items are leaves: none holds another)."""
    found = []
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        width = min(box_a["x"] + box_a["width"], box_b["x"] + box_b["width"]) - max(
            box_a["x"], box_b["x"]
        )
        height = min(box_a["y"] + box_a["height"], box_b["y"] + box_b["height"]) - max(
            box_a["y"], box_b["y"]
        )
        if width > 0.5 and height > 0.5:
            found.append(f"{a!r} overlaps {b!r} by {width:.0f}×{height:.0f} px")
    return found


@pytest.mark.parametrize("language", ["en", "da"])
def test_no_two_items_of_the_top_bar_overlap_at_1366_px(browser, live_server, language):  # noqa: F811
    site = make_site("TOP", name="Aarhus Universitetshospital, Rygkirurgisk Afdeling")
    nurse = make_user("Site staff", site, username="nurse.with.a.long.username")
    context, page = _log_in(browser, live_server, nurse, language)
    for url in (reverse("admin:index"), reverse("staff_dashboard"), reverse("cohort_report")):
        page.goto(live_server.url + url)
        items = page.locator(TOP_BAR_ITEMS)
        boxes = []
        for i in range(items.count()):
            item = items.nth(i)
            box = item.bounding_box()
            if box and box["width"] and box["height"]:
                label = item.evaluate("e => e.tagName + ':' + e.textContent.trim().slice(0, 30)")
                boxes.append((label, box))
        assert len(boxes) >= 8, boxes  # name, two languages, three staff pages, user tools
        assert _overlaps(boxes) == [], f"{url} ({language})"
        # Every item within the screen (a wide report table below may scroll; the bar not).
        outside = [label for label, box in boxes if box["x"] < 0 or box["x"] + box["width"] > 1366]
        assert outside == [], f"{url} ({language}): off the screen"
        shoot(page, f"top-bar-1366-{language}-{url.strip('/').replace('/', '-')}")
    context.close()


def test_data_query_list_has_no_serious_violation_with_and_without_queries(
    browser,  # noqa: F811
    live_server,
):
    site = make_site("QRY", name="Query Centre")
    manager = make_user("Registry manager", username="manager.qry")
    context, page = _log_in(browser, live_server, manager, "en")
    url = live_server.url + reverse("admin:outcomes_dataquery_changelist")
    page.goto(url)
    assert page.locator("#result_list").count() == 0  # none yet
    assert_accessible(page, "data query list, empty")

    procedure = make_procedure(make_patient(site), "osteoporotic")
    query = dataquery_raise(
        user=manager, record=procedure, field_name="date", comment="Date from the OR log?"
    )
    page.goto(url)
    links = page.locator("#result_list tbody a")
    assert links.count() == 1  # the record's own link, no empty row link around it
    assert links.first.inner_text().strip() == query.record_label
    detail = reverse("admin:outcomes_dataquery_detail", args=[query.pk])
    assert links.first.get_attribute("href") == detail
    assert_accessible(page, "data query list, one query")
    context.close()
