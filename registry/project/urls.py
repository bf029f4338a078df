from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from api.import_admin import import_cases_page

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/reports/", include("outcomes.reports.urls")),
    path("admin/import/", import_cases_page, name="import_cases"),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("", include("outcomes.questionnaire.urls")),
]
