from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("", include("outcomes.health.urls")),
    path("", include("outcomes.followups.urls")),
    path("admin/reports/", include("outcomes.reports.urls")),
    path("admin/staff/", include("outcomes.staff.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/import/", include("api.admin_urls")),
    path("admin/data-quality/", include("outcomes.quality.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("", include("outcomes.consent.urls")),
    path("", include("outcomes.questionnaire.urls")),
]

handler400 = "registry.project.errors.bad_request"
handler404 = "registry.project.errors.page_not_found"
handler500 = "registry.project.errors.server_error"
