from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from api import exports, views

router = SimpleRouter(trailing_slash=False)
router.register("v1/patients", views.PatientViewSet, basename="api_patients")
router.register("v1/procedures", views.ProcedureViewSet, basename="api_procedures")
router.register("v1/levels", views.TreatedLevelViewSet, basename="api_levels")
router.register("v1/complications", views.ComplicationViewSet, basename="api_complications")
router.register("v1/followups", views.FollowUpViewSet, basename="api_followups")
router.register("v1/responses", views.ResponseViewSet, basename="api_responses")
router.register("v1/queries", views.DataQueryViewSet, basename="api_queries")

urlpatterns = [
    *router.urls,
    *(
        path(
            f"v1/exports/{name}",
            views.export_view(export).as_view(),
            name=f"api_export_{name.removesuffix('.csv')}",
        )
        for name, export in exports.EXPORTS.items()
    ),
    path("v1/exports/dictionary.csv", views.DictionaryView.as_view(), name="api_dictionary"),
    path("v1/reports/cohorts", views.CohortReportView.as_view(), name="api_cohort_report"),
    path("schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api_schema"), name="api_docs"),
]
