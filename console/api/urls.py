"""The one API router. Each app registers its viewsets in its own api/urls.py ``register``."""

from importlib import import_module

from rest_framework.routers import DefaultRouter

from console.api import views

router = DefaultRouter()
router.register("customers", views.CustomerViewSet, basename="customer")
router.register("assets", views.AssetViewSet, basename="asset")
router.register("users", views.UserViewSet, basename="user")
router.register("audit", views.AuditEventViewSet, basename="auditevent")

for app in ("alerts", "tickets", "traffic", "mitigations"):
    try:
        module = import_module(f"{app}.api.urls")
    except ModuleNotFoundError as exc:
        if exc.name not in (f"{app}.api.urls", f"{app}.api"):
            raise
        continue
    module.register(router)
