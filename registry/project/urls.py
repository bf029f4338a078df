from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/reports/", include("outcomes.reports.urls")),
    path("admin/data-quality/", include("outcomes.quality.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("", include("outcomes.questionnaire.urls")),
]
