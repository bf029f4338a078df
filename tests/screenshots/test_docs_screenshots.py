"""The screenshots of the staff guide, the patient page and the README, taken in Debian's
Chromium against a live server holding the demo cohort (``seed_demo``), logged in as the demo
users ``nurse.aar`` and ``manager``.

Run with ``make screenshots``: it sets ``DOCS_SCREENSHOTS=1`` and the pictures replace those in
``docs/images/`` (commit them). Without it they go to ``var/test-artifacts/docs/`` and git's
copies are left alone. Outside the normal run (``norecursedirs``), like the benchmarks: it
seeds the whole demo cohort, which the normal suite has no need to wait for.

Each picture is checked for what its caption says before it is taken, so a page that changed
shape fails here instead of silently illustrating the wrong thing.
"""

from __future__ import annotations

import datetime
import io
import os
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from PIL import Image
from playwright.sync_api import expect, sync_playwright

from outcomes.followups.links import link_issue
from outcomes.models import FollowUp
from outcomes.tasks import chase_followups
from registry.demo import DEMO_PASSWORD
from registry.models import Patient
from tests.services import scaled

ROOT = Path(__file__).resolve().parents[2]
TARGET = (
    ROOT / "docs" / "images"
    if os.getenv("DOCS_SCREENSHOTS") == "1"
    else Path(os.getenv("TEST_ARTIFACTS_DIR", ROOT / "var" / "test-artifacts")) / "docs"
)
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The demo sites' time zone, so the admin shows no "you are an hour behind" note.
DESKTOP = {
    "viewport": {"width": 1200, "height": 760},
    "locale": "en-GB",
    "timezone_id": "Europe/Copenhagen",
}
PHONE = {
    "viewport": {"width": 390, "height": 760},
    "is_mobile": True,
    "has_touch": True,
    "locale": "da-DK",
    "timezone_id": "Europe/Copenhagen",
}
# The demo's size, as `make run` seeds it; fewer patients make a thinner dashboard.
DEMO_PATIENTS = int(os.getenv("DEMO_PATIENTS", "300"))


def save(page, name: str, *, full_page: bool = False) -> Path:
    """Screenshot the page into TARGET as ``name``.png, as a 256-colour palette PNG (the
    admin's flat colours survive it, and the file is a quarter of the size)."""
    TARGET.mkdir(parents=True, exist_ok=True)
    path = TARGET / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page, animations="disabled", caret="hide")
    with Image.open(path) as shot:
        small = shot.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)
    return path


@pytest.fixture
def browser(monkeypatch):
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is missing: run `make screenshots`"
    # Playwright's sync API runs an event loop in this thread; the database calls between
    # browser steps are synchronous and safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_FLAGS, timeout=scaled(30_000)
        )
        yield browser
        browser.close()


@pytest.fixture
def as_user(browser, live_server):
    """``as_user("nurse.aar")``: a page logged in as that demo user."""
    contexts = []

    def login(username: str):
        context = browser.new_context(**DESKTOP)
        contexts.append(context)
        page = context.new_page()
        page.goto(live_server.url + reverse("admin:login"))
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(live_server.url + reverse("admin:index"))
        return page

    yield login
    for context in contexts:
        context.close()


def demo_patients_to_show() -> dict[str, FollowUp]:
    """Demo follow-ups of Aarhus to show: a 3-month one answered (the patient has a
    complication, and the 12-month follow-up lies ahead), and a 3-month one invited and not
    yet answered, of a patient who agreed to be contacted."""
    today = timezone.localdate()
    alive = Patient.objects.filter(
        site__code="AAR", date_of_death=None, consent_withdrawn_date=None
    )
    followed = (
        FollowUp.objects.filter(
            procedure__patient__in=alive,
            timepoint="month_3",
            state="completed",
            procedure__date__range=(
                today - datetime.timedelta(days=250),
                today - datetime.timedelta(days=120),
            ),
            procedure__patient__complications__isnull=False,
        )
        .select_related("procedure__patient")
        .order_by("procedure__date", "pk")
        .first()
    )
    waiting = (
        FollowUp.objects.filter(
            procedure__patient__in=alive,
            procedure__patient__contact__consent_to_contact=True,
            timepoint="month_3",
            state__in=["invited", "reminded"],
        )
        .select_related("procedure__patient")
        .order_by("pk")
        .first()
    )
    assert followed and waiting, "the demo cohort has no patient to show"
    return {"followed": followed, "waiting": waiting}


# One test: pytest-django empties the database after every test that uses the live server,
# and the demo cohort takes a while to seed.
def test_docs_screenshots(transactional_db, live_server, as_user, browser, settings):
    call_command("seed_demo", patients=DEMO_PATIENTS, no_progress=True, verbosity=0)
    # What `make run`'s worker does first: one sweep (invitations sent, closed windows missed),
    # here without a broker; and the queue folders, so the home page can count the queue.
    for folder in ("celery-broker", "celery-processed", "celery-control"):
        (Path(settings.VAR_DIR) / folder).mkdir(parents=True, exist_ok=True)
    call_command("chase_followups", stdout=io.StringIO())
    chase_followups()  # the beat task: finds nothing more to send, and records the sweep
    shown = demo_patients_to_show()
    base = live_server.url
    nurse = as_user("nurse.aar")
    staff_guide_home_and_record(nurse, base, shown["followed"])
    staff_guide_entering_a_case(nurse, base, shown["followed"])
    staff_guide_answers_and_worklist(nurse, base, shown["waiting"])
    manager = as_user("manager")
    staff_guide_queries(manager, nurse, base, shown["followed"])
    staff_guide_cohort_report(manager, base)
    patient_questionnaire_on_a_phone(browser, base, shown["waiting"])
    names = sorted(path.name for path in TARGET.glob("*.png"))
    assert set(SHOTS) <= set(names), set(SHOTS) - set(names)


SHOTS = [
    "staff-home.png",
    "record.png",
    "add-procedure.png",
    "add-procedure-levels.png",
    "enter-answers.png",
    "dashboard.png",
    "worklist.png",
    "raise-query.png",
    "answer-query.png",
    "data-quality.png",
    "cohort-report.png",
    "cohort-report-table1.png",
    "patient-start.png",
    "patient-questionnaire.png",
]


def staff_guide_home_and_record(page, base: str, followup: FollowUp) -> None:
    page.goto(base + reverse("admin:index"))
    expect(page.get_by_role("link", name="Record status").first).to_be_visible()
    save(page, "staff-home")
    page.goto(base + reverse("staff_record", args=[followup.procedure.patient.registry_id]))
    expect(page.locator("#record-summary")).to_be_visible()
    expect(page.get_by_text("Completed").first).to_be_visible()
    save(page, "record", full_page=True)


def staff_guide_entering_a_case(page, base: str, followup: FollowUp) -> None:
    page.goto(base + reverse("staff_record", args=[followup.procedure.patient.registry_id]))
    page.get_by_role("link", name="Add a procedure").click()
    day = timezone.localdate() - datetime.timedelta(days=1)
    page.locator("#id_date").fill(day.strftime("%d-%m-%Y"))
    page.locator("#id_technique").select_option("vertebroplasty")
    page.locator("#id_anaesthesia").select_option("local")
    page.locator("#id_image_guidance").select_option("fluoroscopy")
    page.locator("#id_indication").select_option("painful_fracture")
    page.locator("#id_levels-0-level").select_option(label="L1")
    page.locator("#id_levels-0-etiology").select_option("osteoporotic")
    page.locator("#id_levels-0-approach").select_option("bipedicular")
    page.locator("#id_levels-0-cement_volume_ml").fill("4,5")
    page.locator("#id_date").scroll_into_view_if_needed()
    page.mouse.wheel(0, -2000)
    save(page, "add-procedure")
    page.locator("#levels-group").evaluate("group => group.scrollIntoView()")
    save(page, "add-procedure-levels")


def staff_guide_answers_and_worklist(page, base: str, followup: FollowUp) -> None:
    page.goto(base + reverse("staff_record", args=[followup.procedure.patient.registry_id]))
    row = page.locator("tr", has_text=followup.get_timepoint_display())
    row.get_by_role("link", name="Enter answers").click()
    expect(page.locator("#id_vas_pain")).to_be_visible()
    page.get_by_role("link", name="Today").first.click()
    page.locator("#id_vas_pain").fill("35")
    save(page, "enter-answers")

    page.goto(base + reverse("staff_dashboard"))
    expect(page.get_by_role("table").first).to_be_visible()
    save(page, "dashboard")

    page.goto(base + reverse("staff_due_list"))
    expect(page.get_by_role("button", name="Reached").first).to_be_visible()
    page.locator("#worklist").evaluate("heading => heading.scrollIntoView()")
    save(page, "worklist")


def staff_guide_queries(manager, nurse, base: str, followup: FollowUp) -> None:
    procedure_url = reverse("admin:registry_procedure_change", args=[followup.procedure_id])
    manager.goto(base + procedure_url)
    manager.get_by_role("link", name="Raise a query").click()
    manager.locator("#raise-query select").first.select_option("fluoroscopy_time_s")
    manager.locator("#raise-query textarea").fill(
        "The fluoroscopy time is missing. Please check the procedure note."
    )
    save(manager, "raise-query")
    manager.get_by_role("button", name="Raise query").click()
    manager.locator("#record-quality a", has_text="fluoroscopy_time_s").first.click()
    expect(manager.locator("#query-state")).to_have_text("Open")

    nurse.goto(manager.url)
    nurse.locator("#id_answer_text").fill("Checked the note: 94 s, entered on the procedure.")
    save(nurse, "answer-query")

    manager.goto(base + reverse("data_quality"))
    expect(manager.get_by_text("DQ01").first).to_be_visible()
    save(manager, "data-quality")


def staff_guide_cohort_report(page, base: str) -> None:
    page.goto(base + reverse("cohort_report"))
    expect(page.get_by_text("Table 1").first).to_be_visible()
    save(page, "cohort-report")
    page.get_by_text("Table 1").first.evaluate("caption => caption.scrollIntoView()")
    save(page, "cohort-report-table1")


def patient_questionnaire_on_a_phone(browser, base: str, followup: FollowUp) -> None:
    token = link_issue(followup, now=timezone.now())
    followup.save(
        update_fields=["link_nonce", "link_token_hash", "link_issued_at", "link_opened_at"]
    )
    context = browser.new_context(**PHONE)
    try:
        page = context.new_page()
        page.goto(base + reverse("questionnaire", args=[token]))
        expect(page.get_by_role("heading", level=1)).to_contain_text("3 måneder")
        save(page, "patient-start")
        page.get_by_role("link", name="Start").click()
        expect(page.locator("form")).to_be_visible()
        save(page, "patient-questionnaire")
    finally:
        context.close()
