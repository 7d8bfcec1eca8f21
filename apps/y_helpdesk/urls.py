from django.urls import path

from apps.y_helpdesk import views

app_name = "helpdesk"
urlpatterns = [
    path("", views.ticket_list, name="ticket-list"),
    path("new", views.ticket_form, name="ticket-create"),
    path("<int:pk>", views.ticket_detail, name="ticket-detail"),
    path("<int:pk>/edit", views.ticket_form, name="ticket-edit"),
]
