from django.contrib import admin
from django.urls import path

from outcomes.staff.dashboard import status_dashboard
from outcomes.staff.duelist import due_list
from outcomes.staff.record import patient_record

# Behind the admin's login and staff check, like every admin page.
urlpatterns = [
    path("status/", admin.site.admin_view(status_dashboard), name="staff_dashboard"),
    path("due/", admin.site.admin_view(due_list), name="staff_due_list"),
    path("record/<str:registry_id>/", admin.site.admin_view(patient_record), name="staff_record"),
]
