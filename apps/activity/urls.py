from django.urls import path

from apps.activity import views

app_name = "activity"
urlpatterns = [
    path("", views.job_list, name="job-list"),
    path("new", views.job_form, name="job-create"),
    path("planned", views.planned_list, name="planned-list"),
    path("<int:pk>", views.job_detail, name="job-detail"),
    path("<int:pk>/edit", views.job_form, name="job-edit"),
]
