from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from console import views
from console.api.urls import router
from console.auth import ThrottledLoginView

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", ThrottledLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("customers/", views.customer_list, name="customer-list"),
    path("customers/<slug:slug>/", views.customer_detail, name="customer-detail"),
    path("audit/", views.audit_list, name="audit-list"),
    path("", include("alerts.urls")),
    path("", include("traffic.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include((router.urls, "api"))),
]
