"""The staff pages under their Content-Security-Policy in Chromium: the record, the patient
and procedure add pages (the procedure's patient box is select2 autocomplete, fed over XHR)
and the dashboard load with no CSP violation, and the autocomplete still finds and picks a
patient. The attack the policy answers is an injected inline script; the risk of the policy
is a page of our own (or Django's admin) that quietly stops working under it."""

from django.urls import reverse

from tests.e2e.test_questionnaire_browser import browser  # noqa: F401
from tests.e2e.test_staff_browser import nurse_page  # noqa: F401
from tests.factories import make_patient

# Every violation fires this DOM event (https://w3c.github.io/webappsec-csp/#violation-events),
# whatever Chromium prints to its console.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI + " " + e.sourceFile
    + ":" + e.lineNumber);
});
"""


def test_staff_pages_run_under_the_policy_with_no_violation(nurse_page):  # noqa: F811
    page, patient, procedure, base = nurse_page
    other = make_patient(patient.site)
    console = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.add_init_script(RECORD_VIOLATIONS)
    visited = []

    def visit(url: str) -> None:
        response = page.goto(base + url)
        assert response.status == 200, url
        policy = dict(
            (part.strip().split(None, 1) + [""])[:2]
            for part in response.headers["content-security-policy"].split(";")
        )
        assert policy["script-src"] == "'self'", url
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__cspViolations") == [], url
        visited.append(url)

    visit(reverse("staff_record", args=[patient.registry_id]))
    visit(reverse("staff_dashboard"))
    visit(reverse("admin:registry_patient_add"))
    visit(reverse("admin:registry_patient_changelist"))
    visit(reverse("admin:registry_procedure_add"))

    # the autocomplete: typed, answered by the server, picked
    page.locator(".field-patient .select2-container").wait_for()
    page.locator(".field-patient .select2-selection").click()
    page.locator(".select2-search__field").fill(other.registry_id)
    page.locator(".select2-results__option", has_text=other.registry_id).click()
    assert page.locator("#id_patient").input_value() == str(other.pk)
    assert other.registry_id in page.locator(".field-patient .select2-selection").inner_text()
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__cspViolations") == []

    assert len(visited) == 5
    refused = [line for line in console if "Content Security Policy" in line]
    assert refused == [], refused
