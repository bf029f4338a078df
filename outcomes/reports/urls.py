from django.urls import path

from outcomes.reports import views as report_views

urlpatterns = [
    path("cohorts/", report_views.cohort_report_page, name="cohort_report"),
    path("sites/", report_views.site_benchmark_page, name="site_benchmark"),
    path("annual/", report_views.annual_report_page, name="annual_report"),
    path(
        "cohorts/charts/<slug:key>.svg",
        report_views.cohort_report_chart,
        name="cohort_report_chart",
    ),
    path("cohorts/patients/", report_views.cohort_report_patients, name="cohort_report_patients"),
]
