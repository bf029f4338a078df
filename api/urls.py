from django.contrib.auth.decorators import login_required
from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from api import bulk, codebook, exports, fhir, freezes, statexports, views

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
    *(
        path(
            f"v1/exports/{name.removesuffix('.csv')}.{fmt.suffix}",
            statexports.stat_export_view(export, fmt).as_view(),
            name=f"api_export_{name.removesuffix('.csv')}_{fmt.suffix}",
        )
        for name, export in exports.EXPORTS.items()
        for fmt in statexports.FORMATS.values()
    ),
    *(
        path(
            f"v1/exports/{name.removesuffix('.csv')}.{suffix}",
            codebook.syntax_view(export, suffix).as_view(),
            name=f"api_syntax_{name.removesuffix('.csv')}_{suffix.lower()}",
        )
        for name, export in exports.EXPORTS.items()
        for suffix in codebook.SYNTAX
    ),
    path("v1/freezes", freezes.FreezeListView.as_view(), name="api_freezes"),
    path(
        "v1/freezes/<slug:name>/<str:file_name>",
        freezes.FreezeFileView.as_view(),
        name="api_freeze_file",
    ),
    path("v1/exports/dictionary.csv", views.DictionaryView.as_view(), name="api_dictionary"),
    path("v1/exports/codebook.html", codebook.CodebookView.as_view(), name="api_codebook"),
    path(
        "v1/exports/codebook.docx",
        codebook.CodebookDocxView.as_view(),
        name="api_codebook_docx",
    ),
    path("v1/fhir/metadata", fhir.MetadataView.as_view(), name="fhir_metadata"),
    path("v1/fhir/Questionnaire", fhir.QuestionnaireView.as_view(), name="fhir_questionnaire"),
    path(
        "v1/fhir/Questionnaire/<str:resource_id>",
        fhir.QuestionnaireReadView.as_view(),
        name="fhir_questionnaire_read",
    ),
    path(
        "v1/fhir/QuestionnaireResponse",
        fhir.QuestionnaireResponseView.as_view(),
        name="fhir_questionnaire_response",
    ),
    path(
        "v1/fhir/QuestionnaireResponse/<str:resource_id>",
        fhir.QuestionnaireResponseReadView.as_view(),
        name="fhir_questionnaire_response_read",
    ),
    path("v1/fhir/Patient", fhir.PatientView.as_view(), name="fhir_patient"),
    path(
        "v1/fhir/Patient/<str:resource_id>",
        fhir.PatientReadView.as_view(),
        name="fhir_patient_read",
    ),
    path("v1/fhir/Procedure", fhir.ProcedureView.as_view(), name="fhir_procedure"),
    path(
        "v1/fhir/Procedure/<str:resource_id>",
        fhir.ProcedureReadView.as_view(),
        name="fhir_procedure_read",
    ),
    path("v1/fhir/$export", bulk.ExportKickOffView.as_view(), name="fhir_bulk_export"),
    path(
        "v1/fhir/bulk-status/<uuid:export_id>",
        bulk.ExportStatusView.as_view(),
        name="fhir_bulk_status",
    ),
    path(
        "v1/fhir/bulk-files/<uuid:export_id>/<int:number>.ndjson",
        bulk.ExportFileView.as_view(),
        name="fhir_bulk_file",
    ),
    re_path(r"^v1/fhir/", fhir.NotFoundView.as_view(), name="fhir_not_found"),
    path("v1/reports/cohorts", views.CohortReportView.as_view(), name="api_cohort_report"),
    path("v1/reports/sites", views.SiteBenchmarkView.as_view(), name="api_site_benchmark"),
    # Behind a login (SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"]); OPTIONS answers 405.
    path("schema/", SpectacularAPIView.as_view(metadata_class=None), name="api_schema"),
    path(
        "docs/",
        login_required(
            # The page's script comes from ?script (a file, not inline) under the staff CSP.
            SpectacularSwaggerSplitView.as_view(
                url_name="api_schema", metadata_class=None, template_name="api/swagger_ui.html"
            ),
            login_url="admin:login",
        ),
        name="api_docs",
    ),
]
