from django.urls import path

from apps.work_order_management import views

app_name = "permits"
urlpatterns = [
    path("", views.permit_list, name="list"),
    path("new", views.permit_create, name="create"),
    path("<int:pk>", views.permit_detail, name="detail"),
    path("steps/<int:step_id>/decide", views.decide_step, name="decide"),
    path("decide/<str:token>", views.decide_by_link, name="decide-link"),
    path("api/permits", views.api_create_permit, name="api-create"),
]
