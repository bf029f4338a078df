from django.contrib import admin
from django.urls import path

from outcomes.consent import staff as consent
from outcomes.records.views import lock_view, sign_view, unlock_view
from outcomes.staff.dashboard import status_dashboard
from outcomes.staff.duelist import due_list
from outcomes.staff.record import patient_record

# Behind the admin's login and staff check, like every admin page.
urlpatterns = [
    path("status/", admin.site.admin_view(status_dashboard), name="staff_dashboard"),
    path("due/", admin.site.admin_view(due_list), name="staff_due_list"),
    path("record/<str:registry_id>/", admin.site.admin_view(patient_record), name="staff_record"),
    path("record/<str:registry_id>/lock/", admin.site.admin_view(lock_view), name="record_lock"),
    path(
        "record/<str:registry_id>/unlock/<int:lock_id>/",
        admin.site.admin_view(unlock_view),
        name="record_unlock",
    ),
    path("record/<str:registry_id>/sign/", admin.site.admin_view(sign_view), name="record_sign"),
    path(
        "record/<str:registry_id>/consent/link/",
        admin.site.admin_view(consent.send_link),
        name="consent_send_link",
    ),
    path(
        "record/<str:registry_id>/consent/paper/",
        admin.site.admin_view(consent.paper_consent),
        name="consent_paper",
    ),
    path(
        "record/<str:registry_id>/consent/withdraw/",
        admin.site.admin_view(consent.withdraw),
        name="consent_staff_withdraw",
    ),
    path(
        "record/<str:registry_id>/consent/<int:consent_id>/<str:what>/",
        admin.site.admin_view(consent.download),
        name="consent_download",
    ),
    path("consent/", admin.site.admin_view(consent.consent_overview), name="consent_overview"),
]
