from django.urls import path

from outcomes.health import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("healthz/chasing", views.healthz_chasing, name="healthz_chasing"),
]
