from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerSplitView

from console import two_factor, views
from console.api.urls import router
from console.auth import ThrottledLoginView
from console.schema import CachedSchemaView
from reports import views as report_views
from reports.urls import router as reports_router

urlpatterns = [
    path("", report_views.dashboard, name="dashboard"),
    path("login/", ThrottledLoginView.as_view(), name="login"),
    path("login/2fa/", two_factor.two_factor, name="two-factor"),
    path("login/2fa/enrol/<str:token>/", two_factor.two_factor_enrol, name="two-factor-enrol"),
    path("login/2fa/new-device/", two_factor.two_factor_new_device, name="two-factor-new-device"),
    path("account/tokens/", views.api_token_list, name="api-token-list"),
    path("account/tokens/<int:pk>/revoke/", views.api_token_revoke, name="api-token-revoke"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("customers/", views.customer_list, name="customer-list"),
    path("customers/<slug:slug>/", views.customer_detail, name="customer-detail"),
    path("customers/<slug:slug>/dashboard/", report_views.customer_dashboard, name="customer-dashboard"),
    path("audit/", views.audit_list, name="audit-list"),
    path("", include("reports.urls")),
    path("", include("alerts.urls")),
    path("", include("tickets.urls")),
    path("", include("traffic.urls")),
    path("", include("mitigations.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", CachedSchemaView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include((reports_router.urls, "reports-api"))),
    path("api/", include((router.urls, "api"))),
]
