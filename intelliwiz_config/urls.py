from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from apps.core.views import healthz, metrics
from apps.mobile import views as mobile_views
from apps.peoples.views import SignInView
from apps.reports import views as report_views
from intelliwiz_config import views

# The admin wears the product's name, not Django's.
admin.site.site_header = "Intelliwiz administration"
admin.site.site_title = "Intelliwiz admin"
admin.site.index_title = "Records and settings"

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", SignInView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("jobs/", include("apps.activity.urls")),
    path("tickets/", include("apps.y_helpdesk.urls")),
    path("permits/", include("apps.work_order_management.urls")),
    path("graphql", mobile_views.graphql, name="graphql"),
    path("dashboard/", report_views.dashboard, name="dashboard"),
    path("dashboard/mail", report_views.dashboard_mail, name="dashboard-mail"),
    path("reports/", report_views.report_request, name="report-request"),
    path("reports/<uuid:report_uuid>", report_views.report_page, name="report-page"),
    path("reports/<uuid:report_uuid>/status", report_views.report_status, name="report-status"),
    path("reports/<uuid:report_uuid>/send", report_views.report_send, name="report-send"),
    path(
        "reports/<uuid:report_uuid>/download", report_views.report_download, name="report-download"
    ),
    path("reports/pdf", report_views.pdf_request, name="pdf-request"),
    path("reports/pdf/<uuid:job_uuid>", report_views.pdf_page, name="pdf-page"),
    path("reports/pdf/<uuid:job_uuid>/status", report_views.pdf_status, name="pdf-status"),
    path("reports/pdf/<uuid:job_uuid>/download", report_views.pdf_download, name="pdf-download"),
    path("mobile/", include("apps.mobile.urls")),
]
