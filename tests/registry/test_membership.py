"""Site membership decides who sees a site's records: only registry managers grant or remove
it, site leads see the members but cannot change them, and every change is in the audit
trail with the acting user."""

from __future__ import annotations

from django.urls import reverse
from pghistory.models import Events

from registry.models import Site
from tests.factories import make_user


def site_form(site: Site, members: list) -> dict:
    return {
        "code": site.code,
        "name": site.name,
        "time_zone": site.time_zone,
        "contact_email": site.contact_email,
        "country": site.country,
        "eq5d_version": site.eq5d_version,
        "eq5d_value_set": site.eq5d_value_set,
        "members": [user.pk for user in members],
    }


def test_a_site_lead_sees_the_members_but_cannot_add_anyone(client, site_a):
    lead = make_user("Site lead", site_a, username="lead.a")
    outsider = make_user("Auditor", username="outsider")
    client.force_login(lead)
    url = reverse("admin:registry_site_change", args=[site_a.pk])

    page = client.get(url).content.decode()
    assert "lead.a" in page  # listed, read-only
    assert 'name="members"' not in page

    response = client.post(url, site_form(site_a, [lead, outsider]) | {"name": "Aarhus UH"})

    assert response.status_code == 302  # the rest of the site saves
    site_a.refresh_from_db()
    assert site_a.name == "Aarhus UH"
    assert list(site_a.members.all()) == [lead]


def test_a_manager_grants_and_removes_access_and_both_are_audited(client, site_a, manager):
    nurse = make_user("Site staff", username="new.nurse")
    client.force_login(manager)
    url = reverse("admin:registry_site_change", args=[site_a.pk])

    assert client.post(url, site_form(site_a, [nurse])).status_code == 302
    assert list(site_a.members.all()) == [nurse]
    assert client.post(url, site_form(site_a, [])).status_code == 302
    assert not site_a.members.exists()

    events = Events.objects.references(site_a).filter(pgh_model="registry.SiteMemberEvent")
    trail = sorted((e.pgh_label, e.pgh_data["user_id"], e.pgh_context["user"]) for e in events)
    assert trail == [("member.add", nurse.pk, manager.pk), ("member.remove", nurse.pk, manager.pk)]
    history = client.get(reverse("admin:registry_site_history", args=[site_a.pk])).content
    assert history.decode().count("member.") == 2
