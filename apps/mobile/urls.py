from django.urls import path

from apps.mobile import views

app_name = "mobile"
urlpatterns = [
    path("ingest", views.ingest, name="ingest"),
    path("downloads/<str:token>", views.download, name="download"),
]
