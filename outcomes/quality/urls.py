from django.urls import path

from outcomes.quality import views

urlpatterns = [path("", views.data_quality_page, name="data_quality")]
