from django.urls import path

from outcomes.consent import views

# The token is the credential: 43 characters of base64url (outcomes.consent.links).
urlpatterns = [
    path("c/<str:token>/", views.consent_page, name="consent"),
    path("c/<str:token>/copy.pdf", views.consent_copy, name="consent_copy"),
    path("c/<str:token>/withdraw/", views.consent_withdraw, name="consent_withdraw"),
]
